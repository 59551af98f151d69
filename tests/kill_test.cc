// Atomic output under a kill: the reinit binary writes a model with external data (three data
// files, one in a subfolder, or one single file) and is killed (SIGKILL mostly, SIGINT and
// SIGTERM too) at random moments, and at each step of putting the output into place
// (REINIT_TEST_KILL_AT). After every kill the output folder must hold either no model (if there
// was none before) or a complete model whose weights are exactly the previous output's or the
// new one's; never a temporary file; and files beyond the model's own only of the names its
// data files take (a generation left by a kill between two renames, reused by the next run).
// A model is read back by hand: the .onnx with protobuf, its data files by their
// external_data entries, not through reinit's loader.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "cli_util.h"
#include "model_builder.h"

namespace reinit_cli_test {
namespace kill_test {
namespace {

constexpr int kIn = 512, kOut = 1024;  // 2 MiB per weight: streamed (TensorStore)

// x -> MatMul w1 -> Relu -> MatMul w2 -> Tanh -> MatMul w3 -> y, weights in three data files
// (w1.bin, sub/w2.bin, w3.bin) beside in/model.onnx.
std::string WriteInput(const fs::path& dir) {
  auto m = reinit_test::ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 512] x) => (float[1, 1024] y) {
  h1 = MatMul (x, w1)
  a1 = Relu (h1)
  h2 = MatMul (a1, w2)
  a2 = Tanh (h2)
  y = MatMul (a2, w3)
})");
  reinit_test::AddFloatInitializer(&m, "w1", {kIn, kOut});
  reinit_test::AddFloatInitializer(&m, "w2", {kOut, kOut / 2});
  reinit_test::AddFloatInitializer(&m, "w3", {kOut / 2, kOut});
  fs::create_directories(dir / "sub");
  const std::map<std::string, std::string> location = {
      {"w1", "w1.bin"}, {"w2", "sub/w2.bin"}, {"w3", "w3.bin"}};
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    const std::string& loc = location.at(t.name());
    WriteFile((dir / loc).string(), t.raw_data());
    t.clear_raw_data();
    t.set_data_location(onnx::TensorProto::EXTERNAL);
    auto* e = t.add_external_data();
    e->set_key("location");
    e->set_value(loc);
  }
  SaveModelFile(m, (dir / "model.onnx").string());
  return (dir / "model.onnx").string();
}

// A model as its weights: initializer name -> bytes, external data followed by hand; nullopt
// when there is no model, or it or a data file it names is missing or short (incomplete).
using Weights = std::map<std::string, std::string>;
std::optional<Weights> ReadWeights(const fs::path& model_path, std::set<std::string>* used) {
  if (!fs::exists(model_path)) return std::nullopt;
  onnx::ModelProto m;
  if (!m.ParseFromString(ReadFile(model_path.string()))) return std::nullopt;
  Weights weights;
  used->insert(model_path.filename().string());
  for (const auto& t : m.graph().initializer()) {
    if (t.data_location() != onnx::TensorProto::EXTERNAL) {
      weights[t.name()] = t.raw_data();
      continue;
    }
    std::string location;
    uint64_t offset = 0, length = 0;
    bool has_length = false;
    for (const auto& kv : t.external_data()) {
      if (kv.key() == "location") location = kv.value();
      if (kv.key() == "offset") offset = std::stoull(kv.value());
      if (kv.key() == "length") length = std::stoull(kv.value()), has_length = true;
    }
    const fs::path file = model_path.parent_path() / location;
    if (!fs::exists(file)) return std::nullopt;
    const std::string bytes = ReadFile(file.string());
    if (!has_length) length = bytes.size() - std::min<uint64_t>(offset, bytes.size());
    if (offset + length > bytes.size()) return std::nullopt;
    weights[t.name()] = bytes.substr(offset, length);
    used->insert(location);
  }
  return weights;
}

// Every regular file below `dir`, relative.
std::set<std::string> FilesBelow(const fs::path& dir) {
  std::set<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files.insert(fs::relative(e.path(), dir).string());
  }
  return files;
}

// Starts reinit with `args` and the extra environment, output to /dev/null; its pid.
pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env_extra) {
  std::vector<std::string> argv_s = {REINIT_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = env_extra;
  for (char** e = environ; *e; ++e) env_s.push_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "posix_spawn: " << std::strerror(rc);
  return pid;
}

// Waits for `pid`; its exit code, or -signal.
int Wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

class Kill : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    input_ = WriteInput(root_ / "in");
    fs::create_directories(root_ / "out");
    output_ = root_ / "out" / "model.onnx";
  }

  std::vector<std::string> Args(int seed) const {
    return {input_,    "-o",     output_.string(),     "--scheme",
            "auto",    "--seed", std::to_string(seed), "--external-data",
            GetParam()};
  }

  // The weights a complete run with `seed` writes (computed once per seed, in its own folder).
  const Weights& Expected(int seed) {
    auto it = expected_.find(seed);
    if (it != expected_.end()) return it->second;
    const fs::path dir = root_ / ("ref" + std::to_string(seed));
    fs::create_directories(dir);
    std::vector<std::string> args = Args(seed);
    args[2] = (dir / "model.onnx").string();
    const RunOutput r = RunReinit(args);
    EXPECT_EQ(r.exit_code, 0) << r;
    std::set<std::string> used;
    auto weights = ReadWeights(dir / "model.onnx", &used);
    EXPECT_TRUE(weights.has_value());
    return expected_[seed] = weights.value_or(Weights{});
  }

  // Checks the output folder after a run with `seed` that may have been killed: no model if
  // there was none and the run did not finish, else the previous weights or the new ones.
  // Besides the model's own files there may be only names its data files take (a file put in
  // place by a run killed before its .onnx was, or a previous generation not yet removed: the
  // next run reuses or removes them) and, after a kill (`killed`), temporary names (the next
  // run removes those of processes that are gone). Updates previous_ to what is there.
  // Returns whether the new output is in place.
  bool CheckOutput(int seed, const std::string& what, bool killed = false) {
    const Weights& expected = Expected(seed);
    std::set<std::string> used;
    const std::optional<Weights> now = ReadWeights(output_, &used);
    bool is_new = false;
    if (!now) {
      EXPECT_FALSE(fs::exists(output_)) << what << ": the output is there but incomplete";
      EXPECT_FALSE(previous_.has_value()) << what << ": the previous output is gone";
    } else {
      is_new = *now == expected;
      EXPECT_TRUE(is_new || (previous_ && *now == *previous_))
          << what << ": the output is neither the previous one nor the new one";
    }
    const std::set<std::string> family =
        GetParam() == "keep" ? std::set<std::string>{"w1.bin",       "w1.1.bin", "sub/w2.bin",
                                                     "sub/w2.1.bin", "w3.bin",   "w3.1.bin"}
                             : std::set<std::string>{"model.onnx.data", "model.onnx.1.data"};
    for (const std::string& file : FilesBelow(root_ / "out")) {
      if (used.count(file) || family.count(file)) continue;
      if (killed && file.find(".tmp.") != std::string::npos) {
        ++temporaries_;
        continue;
      }
      ADD_FAILURE() << what << ": unexpected file " << file;
    }
    previous_ = now;
    return is_new;
  }

  // After a complete run: the model's own files and nothing else.
  void ExpectOnlyTheModel(const std::string& what) {
    std::set<std::string> used;
    ASSERT_TRUE(ReadWeights(output_, &used).has_value()) << what;
    EXPECT_EQ(FilesBelow(root_ / "out"), used) << what;
  }

  // The time a whole run takes, measured.
  std::chrono::microseconds TimeOneRun(int seed) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(Wait(Spawn(Args(seed), {})), 0);
    const auto took = std::chrono::steady_clock::now() - start;
    CheckOutput(seed, "a complete run");
    return std::chrono::duration_cast<std::chrono::microseconds>(took);
  }

  TempDir tmp_;
  const fs::path root_ = tmp_.path();
  std::string input_;
  fs::path output_;
  std::map<int, Weights> expected_;
  std::optional<Weights> previous_;
  int temporaries_ = 0;
};

TEST_P(Kill, AtEveryStepOfPuttingTheOutputInPlace) {
  // Steps 0..n-1: before each of the n files goes into place (the .onnx last); n: before the
  // previous generation is removed. Before the .onnx is in place the previous output must be
  // intact; after, the new one is whole. Run with and without a previous output.
  // Three seeds, so that each run writes weights other than those in place (and a complete
  // run's weights are drawn for reference once per seed, not once per run).
  const size_t files = GetParam() == "keep" ? 4 : 2;  // data files + the .onnx
  const int previous_seed = 100, killed_seed = 101, complete_seed = 102;
  for (bool with_previous : {false, true}) {
    for (size_t step = 0; step <= files; ++step) {
      fs::remove_all(root_ / "out");
      fs::create_directories(root_ / "out");
      previous_.reset();
      if (with_previous) {
        ASSERT_EQ(RunReinit(Args(previous_seed)).exit_code, 0);
        ASSERT_TRUE(CheckOutput(previous_seed, "the previous output"));
      }
      const int seed = killed_seed;
      const int rc = Wait(Spawn(Args(seed), {"REINIT_TEST_KILL_AT=" + std::to_string(step)}));
      EXPECT_EQ(rc, -SIGKILL) << "step " << step;
      const std::string what = "killed at step " + std::to_string(step) +
                               (with_previous ? " over a previous output" : "");
      const std::optional<Weights> before = previous_;
      const bool is_new = CheckOutput(seed, what, /*killed=*/true);
      EXPECT_EQ(is_new, step == files) << what;
      if (!is_new) {
        EXPECT_EQ(previous_, before) << what;
      }
      // The next complete run cleans up whatever generation the kill left.
      ASSERT_EQ(RunReinit(Args(complete_seed)).exit_code, 0);
      EXPECT_TRUE(CheckOutput(complete_seed, what + ", then a complete run"));
      ExpectOnlyTheModel(what + ", then a complete run");
    }
  }
}

TEST_P(Kill, AtRandomMoments) {
  // Kills at moments drawn uniformly over 1.3 times a whole run, most by SIGKILL; each run
  // writes over what the previous one left, so every state is met: no output yet, a previous
  // output, a generation left over. Each run draws with one of two seeds, the one whose
  // weights are not in place, so that the new weights and the previous ones always differ.
  int in_place = 1;
  const auto run_time = TimeOneRun(in_place);
  std::mt19937 random(12345);
  std::uniform_int_distribution<int64_t> delay(0, run_time.count() * 13 / 10);
  int replaced = 0, kept = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const int seed = in_place == 1000 ? 1001 : 1000;
    const int signal = trial % 5 == 3 ? SIGINT : trial % 5 == 4 ? SIGTERM : SIGKILL;
    const pid_t pid = Spawn(Args(seed), {});
    std::this_thread::sleep_for(std::chrono::microseconds(delay(random)));
    kill(pid, signal);
    const int rc = Wait(pid);
    EXPECT_TRUE(rc == 0 || rc == -signal) << "trial " << trial << ": exit " << rc;
    if (CheckOutput(seed, "trial " + std::to_string(trial) + ", signal " + std::to_string(signal),
                    /*killed=*/true)) {
      ++replaced;
      in_place = seed;
    } else {
      ++kept;
    }
  }
  ASSERT_EQ(RunReinit(Args(7)).exit_code, 0);
  EXPECT_TRUE(CheckOutput(7, "a complete run after the kills"));
  ExpectOnlyTheModel("a complete run after the kills");
  // Both outcomes occur: the kills fell before and after the switch.
  EXPECT_GT(replaced, 0);
  EXPECT_GT(kept, 0);
  std::cout << "run " << run_time.count() << " us; outputs replaced " << replaced << ", kept "
            << kept << "; temporary names left by a kill " << temporaries_ << "\n";
}

INSTANTIATE_TEST_SUITE_P(Modes, Kill, ::testing::Values("keep", "single"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kill_test
}  // namespace reinit_cli_test

// Helpers for the end-to-end CLI tests: run the reinit binary capturing its exit code, stdout
// and stderr; fresh temporary directories; whole-file reads and writes; reading back models and
// plans; and decoding a tensor's values independently of the library's tensor_codec, so a
// codec bug cannot hide itself in these tests.
#pragma once

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "plan.pb.h"

extern char** environ;

namespace reinit_cli_test {

namespace fs = std::filesystem;

struct RunOutput {
  int exit_code = -1;  // -1 when the process did not exit normally (e.g. a signal)
  std::string out;
  std::string err;
};

inline std::ostream& operator<<(std::ostream& os, const RunOutput& r) {
  return os << "exit " << r.exit_code << "\n--- stdout ---\n"
            << r.out << "--- stderr ---\n"
            << r.err;
}

// Runs REINIT_BINARY with `args` in directory `cwd` (empty: the current one).
inline RunOutput RunReinit(const std::vector<std::string>& args, const std::string& cwd = "") {
  RunOutput result;
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return result;
  }
  std::vector<std::string> argv_s = {REINIT_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    close(out_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[0]);
    close(err_pipe[1]);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A fresh directory under $TMPDIR (or /tmp), removed with its contents at the end of scope.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/reinit_cli_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string SourcePath(const std::string& relative) {
  return std::string(REINIT_SOURCE_DIR) + "/" + relative;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// Copies a file of models/ into `dir`, returning the new path.
inline std::string CopyModel(const std::string& name, const TempDir& dir,
                             const std::string& as = "") {
  const std::string target = dir / (as.empty() ? name : as);
  fs::copy_file(SourcePath("models/" + name), target, fs::copy_options::overwrite_existing);
  return target;
}

// The sorted file names in `dir` (not recursive).
inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Files named like the atomic writer's temporaries ("*.tmp.*").
inline std::vector<std::string> TempFilesIn(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& name : ListDir(dir)) {
    if (name.find(".tmp.") != std::string::npos) found.push_back(name);
  }
  return found;
}

inline onnx::ModelProto ParseModel(const std::string& bytes) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes)) << "not a ModelProto";
  return model;
}

inline onnx::ModelProto LoadModelFile(const std::string& path) {
  return ParseModel(ReadFile(path));
}

inline void SaveModelFile(const onnx::ModelProto& model, const std::string& path) {
  std::string bytes;
  ASSERT_TRUE(model.SerializeToString(&bytes));
  WriteFile(path, bytes);
}

inline const onnx::TensorProto* FindInitializer(const onnx::ModelProto& model,
                                                const std::string& name) {
  for (const auto& t : model.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

inline std::string Metadata(const onnx::ModelProto& model, const std::string& key) {
  for (const auto& p : model.metadata_props()) {
    if (p.key() == key) return p.value();
  }
  return "<absent>";
}

inline reinit::proto::Plan ParsePlan(const std::string& json) {
  reinit::proto::Plan plan;
  auto status = google::protobuf::util::JsonStringToMessage(json, &plan);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return plan;
}

inline std::string PlanJson(const reinit::proto::Plan& plan) {
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(plan, &json, opts).ok());
  return json;
}

// `reinit inspect MODEL --json EXTRA...`, parsed.
inline reinit::proto::Plan Inspect(const std::string& model,
                                   const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"inspect", model, "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const RunOutput r = RunReinit(args);
  EXPECT_EQ(r.exit_code, 0) << r;
  return ParsePlan(r.out);
}

inline const reinit::proto::Layer* FindLayer(const reinit::proto::Plan& plan,
                                             const std::string& name) {
  for (const auto& l : plan.layers()) {
    if (l.name() == name) return &l;
  }
  return nullptr;
}

// The names of the tensors a plan rewrites: planned layers' weights, biases and other
// parameters, unless "keep".
inline std::vector<std::string> RewrittenTensors(const reinit::proto::Plan& plan) {
  std::vector<std::string> names;
  for (const auto& l : plan.layers()) {
    if (!l.skipped().empty()) continue;
    if (l.weight().scheme() != "keep") names.push_back(l.weight().name());
    if (l.has_bias() && l.bias().scheme() != "keep") names.push_back(l.bias().name());
    for (const auto& p : l.params()) {
      if (p.scheme() != "keep") names.push_back(p.name());
    }
  }
  return names;
}

// Which field holds the tensor's values.
inline std::string StorageOf(const onnx::TensorProto& t) {
  if (t.has_raw_data()) return "raw_data";
  if (t.float_data_size() > 0) return "float_data";
  if (t.double_data_size() > 0) return "double_data";
  if (t.int32_data_size() > 0) return "int32_data";
  return "none";
}

inline double HalfToDouble(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -24);
  } else if (exp == 31) {
    v = mant ? std::nan("") : INFINITY;
  } else {
    v = std::ldexp(mant + 1024, exp - 25);
  }
  return sign ? -v : v;
}

inline double Bfloat16ToDouble(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

// The values of a FLOAT, DOUBLE, FLOAT16 or BFLOAT16 tensor (raw_data little-endian, or the
// typed field), decoded here without the library.
inline std::vector<double> Values(const onnx::TensorProto& t) {
  std::vector<double> v;
  const std::string& raw = t.raw_data();
  auto load = [&](size_t i, auto zero) {
    decltype(zero) x;
    std::memcpy(&x, raw.data() + i * sizeof x, sizeof x);
    return x;
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (t.has_raw_data()) {
        for (size_t i = 0; i < raw.size() / 4; ++i) v.push_back(load(i, 0.0f));
      } else {
        v.assign(t.float_data().begin(), t.float_data().end());
      }
      break;
    case onnx::TensorProto::DOUBLE:
      if (t.has_raw_data()) {
        for (size_t i = 0; i < raw.size() / 8; ++i) v.push_back(load(i, 0.0));
      } else {
        v.assign(t.double_data().begin(), t.double_data().end());
      }
      break;
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16: {
      auto convert = t.data_type() == onnx::TensorProto::FLOAT16 ? HalfToDouble : Bfloat16ToDouble;
      if (t.has_raw_data()) {
        for (size_t i = 0; i < raw.size() / 2; ++i) v.push_back(convert(load(i, uint16_t{0})));
      } else {
        for (int32_t bits : t.int32_data()) v.push_back(convert(static_cast<uint16_t>(bits)));
      }
      break;
    }
    default:
      ADD_FAILURE() << "Values: unsupported data type " << t.data_type() << " of " << t.name();
  }
  return v;
}

struct Moments {
  double mean = 0;
  double std = 0;  // sample standard deviation (n - 1)
};

inline Moments MomentsOf(const std::vector<double>& v) {
  Moments m;
  if (v.size() < 2) return m;
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - m.mean) * (x - m.mean);
  m.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  return m;
}

}  // namespace reinit_cli_test

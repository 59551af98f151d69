// The fuzz target: the input's bytes are a .onnx file, run through the library's public stages
// as the tool runs them — load -> plan -> apply -> validate -> save — and the output read back.
// Every input runs twice: once with every tensor in memory and once streamed (TensorStore, with
// a small threshold so that fuzz-sized tensors are deferred), with options (scheme, seed, fan
// convention, overrides, where the output's data goes, threads) derived from a hash of the
// input. A Status error is a normal outcome; a crash, a sanitizer report, a leak, an exception
// escaping the library, a timeout or running out of memory is a finding. Two properties are
// checked as well, and a violation aborts: an output that SaveModel wrote loads again, and when
// both runs write a model, the two are the same model (docs/guarantees.md: streaming changes no
// byte of what is written).
//
// Files live in a private folder created once per process, on /dev/shm (memory) where it
// exists: the input is written there as m/model.onnx, beside data files that external-data
// locations can name (weights.bin, sub/more.bin, a symbolic link escaping the folder, a folder),
// and the output goes to m/ or to o/ and is removed after each run. See fuzz/README.md.
#include <google/protobuf/stubs/logging.h>
#include <onnx/onnx_pb.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "init/apply.h"
#include "io/external_data.h"
#include "io/model_io.h"
#include "io/tensor_store.h"
#include "parallel.h"
#include "plan/plan.h"
#include "plan/registry.h"
#include "signal/report.h"

namespace {

namespace fs = std::filesystem;
using reinit::Status;

// Tensors of at least this many bytes are deferred in the streamed run.
constexpr uint64_t kStreamMinBytes = 256;
// Inputs declaring giant tensors must be refused, not allocated.
constexpr uint64_t kMaxMemory = uint64_t{64} << 20;

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "model_fuzzer: cannot write %s\n", path.c_str());
    std::abort();
  }
}

// The private folder: m/ holds the model and the data files it may name, o/ an output folder.
struct Workspace {
  fs::path root, model_dir, model, out_dir;
  std::vector<fs::path> fixed;  // what m/ holds between runs

  Workspace() {
    const char* env = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    const fs::path base = env ? env : "/tmp";
    RemoveStale(base);
    std::string templ = (base / ("reinit-fuzz." + std::to_string(getpid()) + ".XXXXXX")).string();
    if (!mkdtemp(templ.data())) {
      std::perror("model_fuzzer: mkdtemp");
      std::abort();
    }
    root = templ;
    model_dir = root / "m";
    out_dir = root / "o";
    model = model_dir / "model.onnx";
    fs::create_directories(model_dir / "sub" / "deeper");
    fs::create_directories(out_dir);
    // Data files: little-endian floats i / 1024, so that weights read from them are finite.
    auto floats = [](size_t count, float scale) {
      std::string bytes(count * 4, '\0');
      for (size_t i = 0; i < count; ++i) {
        const float v = static_cast<float>(i) * scale;
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      }
      return bytes;
    };
    WriteFile(model_dir / "weights.bin", floats(1024, 1.0f / 1024));  // 4 KiB
    WriteFile(model_dir / "sub" / "more.bin", floats(256, -1.0f / 256));
    WriteFile(root / "outside.bin", floats(64, 1.0f));
    fs::create_symlink("../outside.bin", model_dir / "escape.bin");
    WriteFile(model, "");
    for (const auto& e : fs::recursive_directory_iterator(model_dir)) fixed.push_back(e.path());
  }

  // The folders of processes that ended without removing theirs (a crash, a kill): named
  // reinit-fuzz.<pid>.XXXXXX, their pid no longer running.
  static void RemoveStale(const fs::path& base) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("reinit-fuzz.", 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + 12, nullptr, 10);
      if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        fs::remove_all(e.path(), ec);
      }
    }
  }

  ~Workspace() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  // Removes whatever a run left: the outputs in m/ and everything in o/.
  void Clean() {
    std::error_code ec;
    std::vector<fs::path> extra;
    for (const auto& e : fs::recursive_directory_iterator(model_dir, ec)) {
      if (std::find(fixed.begin(), fixed.end(), e.path()) == fixed.end()) extra.push_back(e.path());
    }
    for (const auto& p : extra) fs::remove_all(p, ec);
    for (const auto& e : fs::directory_iterator(out_dir, ec)) fs::remove_all(e.path(), ec);
  }
};

Workspace& TheWorkspace() {
  static Workspace* workspace = [] {
    // protobuf logs parse failures on its own; the library turns them into Status values.
    google::protobuf::SetLogHandler(nullptr);
    auto* w = new Workspace;
    std::atexit([] { delete &TheWorkspace(); });
    return w;
  }();
  return *workspace;
}

// Splits the input's hash into the choices of a run.
class Choices {
 public:
  Choices(const uint8_t* data, size_t size) {
    uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
    for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 0x100000001b3ULL;
    bits_ = h ^ (h >> 29);
  }
  // A value in [0, n).
  uint64_t Next(uint64_t n) {
    const uint64_t v = bits_ % n;
    bits_ = bits_ / n ^ (bits_ * 0x9e3779b97f4a7c15ULL);
    return v;
  }
  bool Flip() { return Next(2) == 1; }

 private:
  uint64_t bits_;
};

struct Config {
  reinit::PlanOptions plan;
  reinit::SaveOptions save;
  bool output_beside = false;    // output in the input's folder (kKeep derives the names)
  bool reread_plan = false;      // apply the plan as read back from its JSON
  bool save_invalid = false;     // save a model that fails validation (--skip-check)
  bool in_memory_store = false;  // the in-memory run passes a store that defers nothing
  int threads = 1;
};

Config MakeConfig(Choices* c) {
  Config config;
  const std::vector<std::string> names = reinit::SchemeNames();
  // auto half of the time, any scheme otherwise.
  config.plan.scheme = c->Flip() ? "auto" : names[c->Next(names.size())];
  config.plan.seed = c->Next(4);
  config.plan.fan_convention =
      c->Flip() ? reinit::FanConvention::kTorch : reinit::FanConvention::kOnnx;
  config.plan.he_mode = c->Flip() ? reinit::FanMode::kFanOut : reinit::FanMode::kFanIn;
  config.plan.keep_bias = c->Next(4) == 0;
  config.plan.keep_norms = c->Next(4) == 0;
  config.plan.forget_bias = c->Next(4) == 0 ? 1.0 : 0.0;
  if (c->Next(4) == 0) {
    static const char* const kGlobs[] = {"*", "*w*", "*/*", "fc*"};
    config.plan.overrides.push_back({kGlobs[c->Next(4)], names[c->Next(names.size())]});
  }
  static const reinit::ExternalDataMode kModes[] = {reinit::ExternalDataMode::kKeep,
                                                    reinit::ExternalDataMode::kSingle,
                                                    reinit::ExternalDataMode::kInline};
  config.save.mode = kModes[c->Next(3)];
  config.save.single_min_bytes = c->Flip() ? 1024 : 64;
  config.save.alignment = c->Flip() ? 4096 : 64;
  config.output_beside = c->Flip();
  config.reread_plan = c->Flip();
  config.save_invalid = c->Flip();
  config.in_memory_store = c->Flip();
  config.threads = c->Next(4) == 0 ? 2 : 1;
  return config;
}

// REINIT_FUZZ_VERBOSE=1: each run's options and the stage that refused the input, on stderr
// (for seeing what a corpus reaches; off while fuzzing).
bool Verbose() {
  static const bool verbose = [] {
    const char* v = std::getenv("REINIT_FUZZ_VERBOSE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return verbose;
}

// nullopt after printing why, if verbose.
std::nullopt_t Refused(const char* stage, const Status& status) {
  if (Verbose()) std::fprintf(stderr, "  %s: %s\n", stage, status.message().c_str());
  return std::nullopt;
}

[[noreturn]] void Violation(const std::string& what) {
  std::fprintf(stderr, "model_fuzzer: %s\n", what.c_str());
  std::abort();
}

// One run as the tool does it; the model written, read back whole (external data included), or
// nothing if any stage refused the input.
std::optional<onnx::ModelProto> Run(const Workspace& w, const Config& config, bool streamed) {
  reinit::ExternalSources sources;
  reinit::TensorStore store;
  store.set_min_bytes(streamed ? kStreamMinBytes : UINT64_MAX);
  reinit::TensorStore* const store_used = streamed || config.in_memory_store ? &store : nullptr;
  if (Verbose()) {
    std::fprintf(stderr, " %s run: scheme %s, mode %d, beside %d, reread %d\n",
                 streamed ? "streamed" : "in-memory", config.plan.scheme.c_str(),
                 static_cast<int>(config.save.mode), config.output_beside, config.reread_plan);
  }
  auto model = reinit::LoadModel(w.model, &sources, store_used);
  if (!model.ok()) return Refused("load", model.status());
  const fs::path output = (config.output_beside ? w.model_dir : w.out_dir) / "out.onnx";
  if (Status s = reinit::CheckSaveable(&*model, output, sources, config.save, store_used);
      !s.ok()) {
    return Refused("check saveable", s);
  }
  auto plan = reinit::MakePlan(*model, config.plan);
  if (!plan.ok()) return Refused("plan", plan.status());
  (void)reinit::FormatPlan(*plan, /*verbose=*/true);
  auto reread = reinit::ReadPlan(reinit::PlanToJson(*plan), "plan.json", *model);
  if (!reread.ok() && !config.reread_plan) Refused("(unused) read plan", reread.status());
  if (config.reread_plan) {
    if (!reread.ok()) return Refused("read plan", reread.status());
    plan = std::move(reread);
  }
  if (Status s = reinit::ApplyPlan(*plan, &*model, store_used, kMaxMemory); !s.ok()) {
    return Refused("apply", s);
  }
  std::vector<std::string> warnings;
  const Status valid = reinit::ValidateModel(*model, "the model", &warnings);
  if (!valid.ok() && !config.save_invalid) return Refused("validate", valid);
  std::vector<std::string> data_files;
  if (Status s = reinit::SaveModel(&*model, output, sources, config.save, &data_files, store_used);
      !s.ok()) {
    return Refused("save", s);
  }
  if (Verbose()) std::fprintf(stderr, "  written: %zu data files\n", data_files.size());
  auto written = reinit::LoadModel(output);
  if (!written.ok()) {
    Violation("the model written cannot be read back: " + written.status().message());
  }
  return std::move(written).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Workspace& w = TheWorkspace();
  Choices choices(data, size);
  const Config config = MakeConfig(&choices);
  reinit::SetThreadCount(config.threads);
  WriteFile(w.model, std::string(reinterpret_cast<const char*>(data), size));
  const auto in_memory = Run(w, config, /*streamed=*/false);
  w.Clean();
  const auto streamed = Run(w, config, /*streamed=*/true);
  w.Clean();
  if (in_memory && streamed) {
    std::string a, b;
    if (!in_memory->SerializeToString(&a) || !streamed->SerializeToString(&b) || a != b) {
      Violation("the streamed run wrote another model than the in-memory run");
    }
  }
  return 0;
}

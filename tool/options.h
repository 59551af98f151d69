// The command line as a plain struct, and the CLI11 app that fills it. Parsing only: no
// library calls, no printing.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace reinit_tool {

struct CliOptions {
  enum class Command { kReinit, kInspect, kSchemes, kExport };
  Command command = Command::kReinit;
  std::string model;
  std::string output;
  bool in_place = false;
  bool dry_run = false;
  bool json = false;
  bool skip_check = false;
  std::string external_data = "keep";  // keep | single | inline
  int threads = 0;                     // 0: every core
  bool quiet = false;                  // no progress bar
  bool fsync = false;                  // flush the output to disk before it appears
  uint64_t max_memory = 0;             // bytes; 0: half the machine's memory
  std::string plan_file;
  std::string scheme = "auto";
  uint64_t seed = 0;
  std::vector<std::string> layers;  // GLOB=SCHEME
  std::string bias = "zero";
  std::string norms = "reset";
  double forget_bias = 0;
  std::string fan_convention = "onnx";
  std::string mode = "fan_in";
  double std = 0;        // 0: the scheme's default
  std::string residual;  // "": the scheme's own
  bool zero_init_residual = false;
  double range = 0.05;
  std::string report;  // --report FILE.svg
  // --scheme lsuv
  double lsuv_tolerance = 0.1;
  int lsuv_iterations = 10;
  std::vector<std::string> data;  // FILE.npy or NAME=FILE.npy
  // inspect --propagate (and --report)
  bool propagate = false;
  int64_t batch = 0;                // 0: 8, or 32 for --scheme lsuv
  std::vector<std::string> inputs;  // NAME=SHAPE
  // export
  std::string names = "onnx";  // onnx | torch | keras
  std::string format;          // "": from the output's extension
  bool as_is = false;
};

// Builds the app; after app.parse(), call Finish() to set `command`.
class Cli {
 public:
  Cli();
  CLI::App& app() { return app_; }
  // Called after a successful parse.
  CliOptions Finish();

 private:
  CLI::App app_;
  CLI::App* inspect_ = nullptr;
  CLI::App* schemes_ = nullptr;
  CLI::App* export_ = nullptr;
  CliOptions options_;
};

}  // namespace reinit_tool

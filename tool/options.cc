#include "options.h"

#include <charconv>

#include "option_values.h"

namespace reinit_tool {

namespace {

// CLI11 turns "-1" into 2^64 - 1 and saturates numbers past 2^64 - 1 when it fills a uint64_t;
// a seed must be a decimal number that fits, so that the seed printed is the seed given.
std::string CheckSeed(std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return "seed must be a whole number from 0 to 18446744073709551615, not '" + text + "'";
  }
  return "";
}

// Options that shape the plan, shared by the main command and `inspect`.
void AddPlanOptions(CLI::App* app, CliOptions* o) {
  app->add_option("--scheme", o->scheme, "Scheme for every layer (see `reinit schemes`)")
      ->capture_default_str();
  app->add_option("--seed", o->seed, "Random seed; same seed, same bytes")
      ->check(CLI::Validator(CheckSeed, ""))
      ->capture_default_str();
  app->add_option("--layer", o->layers,
                  "GLOB=SCHEME for layers whose name or weight name matches (repeatable, later "
                  "wins)")
      ->type_name("GLOB=SCHEME");
  app->add_option("--bias", o->bias, "What to do with biases")
      ->check(CLI::IsMember({"zero", "keep"}))
      ->capture_default_str();
  app->add_option("--fan-convention", o->fan_convention,
                  "onnx: what the forward pass sums over; torch: PyTorch's "
                  "_calculate_fan_in_and_fan_out")
      ->check(CLI::IsMember({"onnx", "torch"}))
      ->capture_default_str();
  app->add_option("--mode", o->mode, "Which fan the he-* schemes divide by")
      ->check(CLI::IsMember({"fan_in", "fan_out"}))
      ->capture_default_str();
  app->add_option("--std", o->std,
                  "Standard deviation of the naive `normal` scheme (default 0.01) and of the "
                  "gpt2 and bert recipes (default 0.02)")
      ->check(CLI::PositiveNumber);
  app->add_option("--residual", o->residual,
                  "The depth rule for residual streams: auto (by each stream's normalization: "
                  "fixup without norms, scaled for pre-norm, none otherwise), none, scaled "
                  "(branch outputs x 1/sqrt(L)), fixup, zero (default: auto for --scheme auto, "
                  "the recipe's own for fixup/gpt2/deepnet, none for the other schemes)")
      ->check(CLI::IsMember({"auto", "none", "scaled", "fixup", "zero"}));
  app->add_flag("--zero-init-residual", o->zero_init_residual,
                "Set the scale of the last norm of every residual branch to 0 (torchvision's "
                "zero_init_residual, Goyal 2017)");
  app->add_option("--norms", o->norms,
                  "Normalization layers: reset (scale 1, shift 0, running mean 0, var 1) or keep")
      ->check(CLI::IsMember({"reset", "keep"}))
      ->capture_default_str();
  app->add_option("--forget-bias", o->forget_bias,
                  "LSTM forget-gate bias (Keras' unit_forget_bias is 1; keras-default sets 1)")
      ->capture_default_str();
  app->add_option("--range", o->range, "Half-width of the naive `uniform` scheme")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

// The random inputs of --propagate and --report.
void AddPropagateOptions(CLI::App* app, CliOptions* o) {
  app->add_option("--batch", o->batch,
                  "--propagate, --report, --scheme lsuv: the random inputs' samples: the size of a "
                  "symbolic batch dim, or, where the export fixed a smaller one, batches of it "
                  "until this many (default 8; 32 for lsuv)")
      ->check(CLI::Range(int64_t{1}, reinit::kMaxBatch));
  app->add_option("--input", o->inputs,
                  "--propagate, --report: NAME=D0,D1,... the shape of an input (for symbolic "
                  "dims)")
      ->type_name("NAME=SHAPE");
}

// A plan file fixes all of these; accepting them beside --plan would silently ignore them.
// (Checked here rather than with Option::excludes, which clutters every line of --help.)
void ExcludeWithPlan(CLI::App* app, CLI::Option* plan) {
  app->parse_complete_callback([app, plan] {
    if (plan->count() == 0) return;
    for (const auto& row : reinit::PlanOptionRows()) {
      const std::string name = "--" + std::string(row.flag);
      if (app->get_option(name)->count() > 0) {
        throw CLI::ValidationError("--plan", std::string("cannot be combined with ") + name +
                                                 ": the plan file sets it (edit the plan instead)");
      }
    }
  });
}

// -q, which every command takes (a script can pass it to any of them); only the main command
// shows a progress bar.
void AddQuiet(CLI::App* app, CliOptions* o) {
  app->add_flag("-q,--quiet", o->quiet, "No progress bar on stderr");
}

// --threads, which the commands that draw weights take (the main command and export).
void AddThreads(CLI::App* app, CliOptions* o) {
  app->add_option("--threads", o->threads,
                  "Threads that draw and write the weights (0: one per core); the output is the "
                  "same bytes for every value")
      ->check(CLI::Range(0, reinit::kMaxThreads))
      ->capture_default_str();
}

// The main command's own options: where the model goes and how it is written; returns --plan.
CLI::Option* AddRunOptions(CLI::App* app, CliOptions* o) {
  app->add_option("model", o->model, "The .onnx model to re-initialize");
  app->add_option("-o,--output", o->output,
                  "Output path (default: MODEL with .onnx replaced by .reinit.onnx)");
  app->add_flag("--in-place", o->in_place, "Overwrite the input model");
  app->add_flag("--dry-run", o->dry_run, "Print the plan; write nothing");
  CLI::Option* plan = app->add_option(
      "--plan", o->plan_file, "Apply a plan written by `reinit inspect --json` (and edited)");
  app->add_flag("--skip-check", o->skip_check,
                "Do not run the ONNX checker and shape inference on the result");
  app->add_option(
         "--external-data", o->external_data,
         "Where the weights go: keep (tensors external in the input stay external), "
         "single (every initializer of 1 KiB or more in one OUTPUT.data file, 4096-aligned), "
         "inline (everything in the .onnx; at most 2 GiB)")
      ->check(CLI::IsMember({"keep", "single", "inline"}))
      ->capture_default_str();
  AddThreads(app, o);
  AddQuiet(app, o);
  app->add_option("--max-memory", o->max_memory,
                  "Refuse a tensor that would need more memory than SIZE to draw whole "
                  "(orthogonal, views, kept blocks, ConstantOfShape), e.g. 16G (default: half "
                  "of this machine's memory)")
      ->transform(CLI::AsSizeValue(false))
      ->type_name("SIZE");
  app->add_flag("--fsync", o->fsync,
                "Flush the output to the disk before renaming it into place, so that it also "
                "survives a power failure (slower)");
  return plan;
}

// --report and the options of --scheme lsuv.
void AddReportOptions(CLI::App* app, CliOptions* o) {
  app->add_option("--report", o->report,
                  "Also propagate random inputs under zero, normal, xavier, he, lecun, "
                  "orthogonal and the chosen scheme, print the per-layer std table, and draw it "
                  "as FILE (an SVG chart)")
      ->type_name("FILE.svg");
  app->add_option("--lsuv-tolerance", o->lsuv_tolerance,
                  "--scheme lsuv: stop scaling a layer when |Var(output) - 1| is below this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--lsuv-iterations", o->lsuv_iterations,
                  "--scheme lsuv: at most this many scalings per layer")
      ->check(CLI::Range(1, reinit::kMaxLsuvIterations))
      ->capture_default_str();
  app->add_option("--data", o->data,
                  "--scheme lsuv: measure on these samples instead of random inputs: FILE.npy "
                  "for the model's only input, or NAME=FILE.npy (repeatable)")
      ->type_name("[NAME=]FILE.npy");
}

// `reinit inspect`.
CLI::App* AddInspectCommand(CLI::App* app, CliOptions* o) {
  CLI::App* inspect =
      app->add_subcommand("inspect", "Print per-layer recommendations; write nothing");
  inspect->add_option("model", o->model, "The .onnx model")->required();
  inspect->add_flag("--json", o->json, "Print the plan as JSON (input for --plan)");
  AddQuiet(inspect, o);
  inspect->add_flag("--propagate", o->propagate,
                    "Run a batch of random inputs through the model as it is and print each "
                    "layer's output mean and std before and after its activation");
  AddPropagateOptions(inspect, o);
  AddPlanOptions(inspect, o);
  return inspect;
}

// `reinit export`.
CLI::App* AddExportCommand(CLI::App* app, CliOptions* o) {
  CLI::App* export_command = app->add_subcommand(
      "export",
      "Re-initialize in memory as the main command would, and write the parameters to a "
      "safetensors or .npz file (with a FILE.json sidecar) under ONNX, PyTorch or Keras names");
  export_command->add_option("model", o->model, "The .onnx model")->required();
  AddQuiet(export_command, o);
  AddThreads(export_command, o);
  export_command->add_option("-o,--output", o->output, "FILE.safetensors or FILE.npz")->required();
  export_command
      ->add_option("--names", o->names,
                   "onnx: initializer names; torch: PyTorch state_dict keys and layouts; "
                   "keras: Keras weight names and layouts (tf2onnx models)")
      ->capture_default_str();
  export_command->add_option("--format", o->format,
                             "safetensors or npz (default: from the output's extension)");
  export_command->add_flag("--as-is", o->as_is,
                           "Export the model's values as they are, without re-initializing");
  CLI::Option* export_plan = export_command->add_option(
      "--plan", o->plan_file, "Apply a plan written by `reinit inspect --json` (and edited)");
  export_command
      ->add_option("--max-memory", o->max_memory,
                   "Refuse a tensor that would need more memory than SIZE to draw whole")
      ->transform(CLI::AsSizeValue(false))
      ->type_name("SIZE");
  AddPlanOptions(export_command, o);
  ExcludeWithPlan(export_command, export_plan);
  return export_command;
}

}  // namespace

Cli::Cli() : app_("reinit: give an ONNX model freshly initialized weights, layer by layer") {
  app_.set_version_flag("--version", std::string("reinit ") + REINIT_VERSION);
  app_.require_subcommand(0, 1);
  CLI::Option* plan = AddRunOptions(&app_, &options_);
  AddReportOptions(&app_, &options_);
  AddPropagateOptions(&app_, &options_);
  AddPlanOptions(&app_, &options_);
  ExcludeWithPlan(&app_, plan);
  inspect_ = AddInspectCommand(&app_, &options_);
  schemes_ = app_.add_subcommand("schemes", "List every scheme with its formula");
  AddQuiet(schemes_, &options_);
  export_ = AddExportCommand(&app_, &options_);
}

CliOptions Cli::Finish() {
  options_.command = inspect_->parsed()   ? CliOptions::Command::kInspect
                     : schemes_->parsed() ? CliOptions::Command::kSchemes
                     : export_->parsed()  ? CliOptions::Command::kExport
                                          : CliOptions::Command::kReinit;
  return options_;
}

}  // namespace reinit_tool

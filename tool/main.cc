// reinit: the command-line driver. Parses options into a struct, calls the library, prints
// results, and prints every error in one place as "reinit: error: ..." (exit 1; 2 for usage).
#include <google/protobuf/stubs/logging.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "io/model_io.h"
#include "option_values.h"
#include "options.h"
#include "plan/plan.h"
#include "progress.h"
#include "reinit.h"
#include "signal/report.h"

namespace {

using reinit::Status;
using reinit::StatusCode;
using reinit_tool::CliOptions;

int Fail(const Status& status) {
  std::cerr << "reinit: error: " << status.message() << "\n";
  return status.code() == StatusCode::kUsage ? 2 : 1;
}

// The values were checked by the parser (options.cc) where CLI11 can; the conversions and the
// forms it cannot check are the library's planning option table (src/plan_options.h), shared
// with the Python module: one line here per flag, naming the variable CLI11 filled.
reinit::StatusOr<reinit::PlanOptions> ToPlanOptions(const CliOptions& o) {
  const std::pair<std::string_view, reinit::OptionValue> given[] = {
      {"scheme", o.scheme},
      {"seed", o.seed},
      {"layer", o.layers},
      {"bias", o.bias},
      {"norms", o.norms},
      {"forget-bias", o.forget_bias},
      {"fan-convention", o.fan_convention},
      {"mode", o.mode},
      {"std", o.std},
      {"range", o.range},
      {"residual", o.residual},
      {"zero-init-residual", o.zero_init_residual},
  };
  reinit::PlanOptions p;
  for (const auto& [flag, value] : given) {
    REINIT_RETURN_IF_ERROR(reinit::SetPlanOption(flag, value, &p));
  }
  return p;
}

// --input NAME=D0,D1,... (repeatable), --batch, --seed.
reinit::StatusOr<reinit::PropagateOptions> ToPropagateOptions(const CliOptions& o) {
  reinit::PropagateOptions p;
  p.batch = o.batch > 0 ? o.batch : reinit::DefaultBatch(o.scheme);
  p.seed = o.seed;
  for (const auto& spec : o.inputs) {
    auto shape = reinit::ParseInputShape(spec);
    if (!shape.ok()) return shape.status();
    p.input_shapes[shape->first] = std::move(shape->second);
  }
  return p;
}

void PrintWarnings(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) std::cerr << "reinit: warning: " << w << "\n";
}

int Export(const CliOptions& o, const reinit::PlanOptions& plan_options) {
  auto names = reinit::ParseNameStyle(o.names);
  if (!names.ok()) return Fail(names.status());
  reinit::ExportFileOptions e;
  e.input = o.model;
  e.output = o.output;
  e.format = o.format;
  e.names = *names;
  e.as_is = o.as_is;
  e.plan_file = o.plan_file;
  e.plan = plan_options;
  e.max_memory = o.max_memory;
  e.threads = o.threads;
  auto result = reinit::ExportFile(e);
  if (!result.ok()) return Fail(result.status());
  if (!o.as_is) std::cout << reinit::FormatPlan(result->plan, /*verbose=*/false);
  PrintWarnings(result->warnings);
  std::cout << "wrote " << result->output << " (" << result->tensors << " tensors, " << o.names
            << " names) and " << result->sidecar << " (" << result->unmapped << " unmapped)\n";
  return 0;
}

// `reinit inspect`: the plan (as text or JSON), or with --propagate the signal through the model.
int Inspect(const CliOptions& o, const reinit::PlanOptions& plan_options) {
  if (o.propagate) {
    auto options = ToPropagateOptions(o);
    if (!options.ok()) return Fail(options.status());
    auto result = reinit::PropagateFile(o.model, plan_options, *options);
    if (!result.ok()) return Fail(result.status());
    std::cout << reinit::FormatSignal(result->signal, o.seed);
    PrintWarnings({result->plan.warnings().begin(), result->plan.warnings().end()});
    return 0;
  }
  auto plan = reinit::InspectFile(o.model, plan_options);
  if (!plan.ok()) return Fail(plan.status());
  if (o.json) {
    std::cout << reinit::PlanToJson(*plan);
  } else {
    std::cout << reinit::FormatPlan(*plan, /*verbose=*/true);
  }
  PrintWarnings({plan->warnings().begin(), plan->warnings().end()});
  return 0;
}

// --report: the comparison of schemes, run before anything is written, so that a model the
// executor cannot run fails first; nullopt without --report.
reinit::StatusOr<std::optional<reinit::Comparison>> CompareForReport(
    const CliOptions& o, const reinit::PlanOptions& plan_options) {
  if (o.report.empty()) return std::optional<reinit::Comparison>();
  if (!o.plan_file.empty() || o.dry_run) {
    return reinit::UsageError(std::string("--report cannot be combined with ") +
                              (o.dry_run ? "--dry-run (it writes a file)" : "--plan"));
  }
  auto options = ToPropagateOptions(o);
  if (!options.ok()) return options.status();
  auto compared = reinit::CompareFile(o.model, plan_options, *options);
  if (!compared.ok()) return compared.status();
  return std::optional<reinit::Comparison>(std::move(*compared));
}

// The main command's options for the library (all but the progress callback).
reinit::StatusOr<reinit::RunOptions> ToRunOptions(const CliOptions& o,
                                                  const reinit::PlanOptions& plan_options) {
  reinit::RunOptions run;
  run.input = o.model;
  run.output = o.output;
  run.in_place = o.in_place;
  run.dry_run = o.dry_run;
  run.skip_check = o.skip_check;
  run.plan_file = o.plan_file;
  run.plan = plan_options;
  run.threads = o.threads;
  run.save.fsync = o.fsync;
  run.max_memory = o.max_memory;
  run.lsuv.tolerance = o.lsuv_tolerance;
  run.lsuv.max_iterations = o.lsuv_iterations;
  auto inputs = ToPropagateOptions(o);
  if (!inputs.ok()) return inputs.status();
  run.inputs = std::move(*inputs);
  for (const auto& spec : o.data) {
    auto [name, file] = reinit::ParseDataSpec(spec);
    run.data[name] = file;
  }
  auto external = reinit::ParseExternalDataMode(o.external_data);
  if (!external.ok()) return external.status();
  run.save.mode = *external;
  return run;
}

// ReinitFile with a progress bar on stderr (unless --quiet or stderr is no terminal), cleared
// before anything else is printed.
reinit::StatusOr<reinit::RunResult> ReinitWithProgress(reinit::RunOptions run, bool quiet) {
  // REINIT_PROGRESS_AFTER_MS: how long a run goes before the bar appears (tests set 0).
  const char* after = std::getenv("REINIT_PROGRESS_AFTER_MS");
  auto bar = std::make_unique<reinit_tool::ProgressBar>(
      stderr, !quiet && isatty(STDERR_FILENO),
      std::chrono::milliseconds(after ? std::atoi(after) : 500));
  run.progress = [&bar](uint64_t done, uint64_t total) { bar->Update(done, total); };
  auto result = reinit::ReinitFile(run);
  bar.reset();
  return result;
}

void PrintWritten(const reinit::RunResult& result) {
  if (result.written) {
    std::cout << "wrote " << result.output;
    for (size_t i = 0; i < result.data_files.size(); ++i) {
      std::cout << (i == 0 ? " with external data " : ", ") << result.data_files[i];
    }
    std::cout << "\n";
  } else {
    std::cout << "dry run: nothing written (would write " << result.output << ")\n";
  }
}

// --report's table, and its chart written as the report file.
reinit::Status WriteReport(const CliOptions& o, const reinit::Comparison& comparison) {
  std::cout << "\n" << reinit::FormatComparison(comparison);
  const std::string title =
      "Signal through " + o.model + " by initialization (seed " + std::to_string(o.seed) + ")";
  REINIT_RETURN_IF_ERROR(
      reinit::WriteFileAtomic(o.report, reinit::ComparisonSvg(comparison, title)));
  std::cout << "wrote " << o.report << "\n";
  return reinit::Status::Ok();
}

// The main command: re-initialize the model (and with --report, compare the schemes).
int Reinit(const CliOptions& o, const reinit::PlanOptions& plan_options) {
  if (o.model.empty()) {
    return Fail(reinit::UsageError("no model given; run 'reinit --help'"));
  }
  auto comparison = CompareForReport(o, plan_options);
  if (!comparison.ok()) return Fail(comparison.status());
  auto run = ToRunOptions(o, plan_options);
  if (!run.ok()) return Fail(run.status());
  auto result = ReinitWithProgress(std::move(*run), o.quiet);
  if (!result.ok()) return Fail(result.status());
  std::cout << reinit::FormatPlan(result->plan, /*verbose=*/o.dry_run);
  PrintWarnings(result->warnings);
  PrintWritten(*result);
  if (*comparison) {
    const reinit::Status s = WriteReport(o, **comparison);
    if (!s.ok()) return Fail(s);
  }
  return 0;
}

int Run(const CliOptions& o) {
  if (o.command == CliOptions::Command::kSchemes) {
    std::cout << reinit::FormatSchemes();
    return 0;
  }
  auto plan_options = ToPlanOptions(o);
  if (!plan_options.ok()) return Fail(plan_options.status());
  if (o.command == CliOptions::Command::kExport) return Export(o, *plan_options);
  if (o.command == CliOptions::Command::kInspect) return Inspect(o, *plan_options);
  return Reinit(o, *plan_options);
}

}  // namespace

int main(int argc, char** argv) {
  // protobuf would log some failures (a message over 2 GiB) on its own; the library turns every
  // one into a Status, printed below, so its log lines would only repeat them.
  google::protobuf::SetLogHandler(nullptr);
  reinit_tool::Cli cli;
  try {
    cli.app().parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.app().exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return cli.app().exit(e);
  } catch (const CLI::CallForVersion& e) {
    return cli.app().exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "reinit: error: " << e.what() << "\nrun 'reinit --help' for usage\n";
    return 2;
  }
  try {
    return Run(cli.Finish());
  } catch (const std::exception& e) {
    // The library reports failures as Status; this is the last line against a bug.
    std::cerr << "reinit: error: internal error: " << e.what() << "\n";
    return 1;
  }
}

#include "reinit.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "init/apply.h"
#include "io/model_io.h"
#include "parallel.h"

namespace reinit {

namespace {

// Same file, even through another spelling of its path.
bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open plan '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

uint64_t DefaultMaxMemory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return uint64_t{8} << 30;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 2;
}

std::string DefaultOutputPath(const std::string& input) {
  const size_t slash = input.find_last_of('/');
  const size_t dot = input.find_last_of('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash) &&
      input.substr(dot) == ".onnx") {
    return input.substr(0, dot) + ".reinit.onnx";
  }
  return input + ".reinit.onnx";
}

StatusOr<RunResult> ReinitFile(const RunOptions& options) {
  RunResult result;
  if (options.in_place && !options.output.empty()) {
    return UsageError("--in-place and -o/--output cannot be used together");
  }
  result.output = options.in_place         ? options.input
                  : options.output.empty() ? DefaultOutputPath(options.input)
                                           : options.output;
  if (!options.in_place &&
      (result.output == options.input || SameFile(result.output, options.input))) {
    return UsageError("output '" + result.output +
                      "' is the input model; pass --in-place to overwrite it");
  }
  if (options.plan_file.empty()) REINIT_RETURN_IF_ERROR(CheckPlanOptions(options.plan));
  SetThreadCount(options.threads);
  ExternalSources sources;
  TensorStore store;
  // LSUV runs the model: every weight in memory.
  const bool lsuv = options.plan_file.empty() && UsesLsuv(options.plan);
  store.set_min_bytes(lsuv ? UINT64_MAX : options.stream_min_bytes);
  auto model = LoadModel(options.input, &sources, &store);
  if (!model.ok()) return model.status();
  const uint64_t limit = options.max_memory ? options.max_memory : DefaultMaxMemory();
  // Apply changes no tensor's size or storage, so what cannot be written now cannot be then.
  if (!options.dry_run) {
    REINIT_RETURN_IF_ERROR(
        CheckSaveable(&model.value(), result.output, sources, options.save, &store));
  }
  if (!options.plan_file.empty()) {
    auto text = ReadText(options.plan_file);
    if (!text.ok()) return text.status();
    auto plan = ReadPlan(*text, options.plan_file, *model, limit);
    if (!plan.ok()) return plan.status();
    result.plan = std::move(plan).value();
  } else {
    PlanOptions plan_options = options.plan;
    plan_options.max_memory = limit;
    auto plan = MakePlan(*model, plan_options);
    if (!plan.ok()) return plan.status().WithContext("'" + options.input + "'");
    result.plan = std::move(plan).value();
  }
  result.plan.set_model(options.input);
  for (const auto& w : result.plan.warnings()) result.warnings.push_back(w);
  if (options.dry_run) return result;

  // The input's own verdict, to tell its defects from reinit's (apply changes weight values,
  // materializes stripped weights and unties merged copies; nothing the checker judges).
  Status input_verdict;
  if (!options.skip_check) {
    std::vector<std::string> ignored;
    input_verdict = ValidateModel(*model, "the model", &ignored);
  }

  if (options.progress) {
    const uint64_t total = store.TotalBytes();
    store.SetProgress([done = uint64_t{0}, total, &options](uint64_t bytes) mutable {
      done += bytes;
      options.progress(done, total);
    });
  }
  REINIT_RETURN_IF_ERROR(
      ApplyPlan(result.plan, &model.value(), &store, limit).WithContext("'" + options.input + "'"));
  if (HasLsuvLayers(result.plan)) {
    auto executor = exec::Executor::Create(*model);
    if (!executor.ok()) return executor.status().WithContext("'" + options.input + "'");
    StatusOr<std::vector<Feeds>> feeds = std::vector<Feeds>{};
    if (options.data.empty()) {
      feeds = RandomBatches(**executor, options.inputs);
    } else if (auto data = DataInputs(**executor, options.data); data.ok()) {
      feeds = std::vector<Feeds>{std::move(*data)};
    } else {
      feeds = data.status();
    }
    if (!feeds.ok()) return feeds.status().WithContext("'" + options.input + "'");
    executor->reset();
    const int before = result.plan.warnings_size();
    REINIT_RETURN_IF_ERROR(RunLsuv(*feeds, options.lsuv, &model.value(), &result.plan)
                               .WithContext("'" + options.input + "'"));
    for (int k = before; k < result.plan.warnings_size(); ++k) {
      result.warnings.push_back(result.plan.warnings(k));
    }
  }
  if (!options.skip_check) {
    // Apply changes only the values of float initializers, never a shape, a type or a node:
    // a model that fails here had the problem before reinit touched it.
    Status valid = ValidateModel(*model, "the model", &result.warnings);
    if (!valid.ok() && !input_verdict.ok() && valid.message() == input_verdict.message()) {
      result.warnings.push_back("'" + options.input + "': " + valid.message() +
                                " — the input has exactly this defect, so it is the input's "
                                "own, not reinit's: written anyway");
    } else if (!valid.ok()) {
      const std::string why = input_verdict.ok()
                                  ? " (the input passes: this is reinit's doing, please report it; "
                                    "pass --skip-check to write anyway)"
                                  : " (the input fails otherwise: " + input_verdict.message() +
                                        "; pass --skip-check to write anyway)";
      return Status(valid.code(), valid.message() + why).WithContext("'" + options.input + "'");
    }
  }
  REINIT_RETURN_IF_ERROR(
      SaveModel(&model.value(), result.output, sources, options.save, &result.data_files, &store));
  result.written = true;
  return result;
}

StatusOr<proto::Plan> InspectFile(const std::string& path, const PlanOptions& options) {
  REINIT_RETURN_IF_ERROR(CheckPlanOptions(options));
  TensorStore store;  // the weights' bytes are never read
  auto model = LoadModel(path, nullptr, &store);
  if (!model.ok()) return model.status();
  PlanOptions with_limit = options;
  if (with_limit.max_memory == 0) with_limit.max_memory = DefaultMaxMemory();
  auto plan = MakePlan(*model, with_limit);
  if (!plan.ok()) return plan.status().WithContext("'" + path + "'");
  plan->set_model(path);
  return plan;
}

StatusOr<Comparison> CompareFile(const std::string& path, const PlanOptions& plan_options,
                                 const PropagateOptions& options) {
  REINIT_RETURN_IF_ERROR(CheckPlanOptions(plan_options));
  auto model = LoadModel(path);
  if (!model.ok()) return model.status();
  auto comparison = CompareSchemes(*model, plan_options, options);
  if (!comparison.ok()) return comparison.status().WithContext("'" + path + "'");
  return comparison;
}

StatusOr<Propagation> PropagateFile(const std::string& path, const PlanOptions& plan_options,
                                    const PropagateOptions& options) {
  REINIT_RETURN_IF_ERROR(CheckPlanOptions(plan_options));
  TensorStore store;
  auto model = LoadModel(path, nullptr, &store);
  if (!model.ok()) return model.status();
  Propagation result;
  auto plan = MakePlan(*model, plan_options);
  if (!plan.ok()) return plan.status().WithContext("'" + path + "'");
  result.plan = std::move(*plan);
  result.plan.set_model(path);
  auto executor = exec::Executor::Create(*model, &store);
  if (!executor.ok()) return executor.status().WithContext("'" + path + "'");
  auto feeds = RandomBatches(**executor, options);
  if (!feeds.ok()) return feeds.status().WithContext("'" + path + "'");
  auto signal = Propagate(**executor, result.plan, *feeds);
  if (!signal.ok()) return signal.status().WithContext("'" + path + "'");
  result.signal = std::move(*signal);
  return result;
}

StatusOr<ExportFileResult> ExportFile(const ExportFileOptions& options) {
  ExportFileResult result;
  if (options.output.empty()) {
    return UsageError("export needs -o FILE.safetensors or -o FILE.npz");
  }
  auto format = ChooseExportFormat(options.output, options.format);
  if (!format.ok()) return format.status();
  result.output = options.output;
  result.sidecar = options.sidecar.empty() ? options.output + ".json" : options.sidecar;
  for (const std::string* out : {&result.output, &result.sidecar}) {
    if (*out == options.input || SameFile(*out, options.input)) {
      return UsageError("output '" + *out + "' is the input model");
    }
  }
  if (options.plan_file.empty()) {
    REINIT_RETURN_IF_ERROR(CheckPlanOptions(options.plan));
    if (UsesLsuv(options.plan)) {
      return UsageError(
          "export does not run LSUV (it needs the model run on data): write the "
          "model with `reinit MODEL --scheme lsuv -o OUT.onnx`, then `reinit export "
          "OUT.onnx --as-is`");
    }
  }
  auto model = LoadModel(options.input);
  if (!model.ok()) return model.status();
  const uint64_t limit = options.max_memory ? options.max_memory : DefaultMaxMemory();
  if (!options.plan_file.empty()) {
    auto text = ReadText(options.plan_file);
    if (!text.ok()) return text.status();
    auto plan = ReadPlan(*text, options.plan_file, *model, limit);
    if (!plan.ok()) return plan.status();
    result.plan = std::move(plan).value();
  } else {
    PlanOptions plan_options = options.plan;
    plan_options.max_memory = limit;
    auto plan = MakePlan(*model, plan_options);
    if (!plan.ok()) return plan.status().WithContext("'" + options.input + "'");
    result.plan = std::move(plan).value();
  }
  result.plan.set_model(options.input);
  for (const auto& w : result.plan.warnings()) result.warnings.push_back(w);
  ExportOptions export_options;
  export_options.names = options.names;
  export_options.format = *format;
  export_options.as_is = options.as_is;
  export_options.model_path = options.input;
  auto exported = ExportParameters(*model, result.plan, export_options);
  if (!exported.ok()) return exported.status().WithContext("'" + options.input + "'");
  for (const auto& w : exported->mapping.warnings) result.warnings.push_back(w);
  auto bytes = EncodeExport(*exported, *format);
  if (!bytes.ok()) return bytes.status().WithContext("'" + result.output + "'");
  result.tensors = exported->tensors.size();
  result.unmapped = exported->mapping.unmapped.size();
  REINIT_RETURN_IF_ERROR(WriteFilesAtomic(
      {{result.output, std::move(*bytes)}, {result.sidecar, std::move(exported->sidecar)}}));
  return result;
}

}  // namespace reinit

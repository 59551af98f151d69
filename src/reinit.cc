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

bool HasPlan(const RunOptions& options) {
  return !options.plan_file.empty() || options.plan_json.has_value();
}

uint64_t MemoryLimit(const RunOptions& options) {
  return options.max_memory ? options.max_memory : DefaultMaxMemory();
}

// The run's plan, into result->plan (and its warnings): the plan given, read back and checked
// against the model, or a new one.
Status PlanRun(const onnx::ModelProto& model, const RunOptions& options, RunResult* result) {
  StatusOr<proto::Plan> plan = proto::Plan();
  if (HasPlan(options)) {
    auto text =
        options.plan_json ? StatusOr<std::string>(*options.plan_json) : ReadText(options.plan_file);
    if (!text.ok()) return text.status();
    const std::string name = options.plan_file.empty() ? "<plan>" : options.plan_file;
    plan = ReadPlan(*text, name, model, MemoryLimit(options));
  } else {
    PlanOptions plan_options = options.plan;
    plan_options.max_memory = MemoryLimit(options);
    plan = MakePlan(model, plan_options);
    if (!plan.ok()) return plan.status().WithContext("'" + options.input + "'");
  }
  if (!plan.ok()) return plan.status();
  result->plan = std::move(plan).value();
  result->plan.set_model(options.input);
  for (const auto& w : result->plan.warnings()) result->warnings.push_back(w);
  return Status::Ok();
}

// LSUV's batch: random inputs, or the .npy files of --data.
StatusOr<std::vector<Feeds>> LsuvBatches(const exec::Executor& executor,
                                         const RunOptions& options) {
  if (options.data.empty()) return RandomBatches(executor, options.inputs);
  auto data = DataInputs(executor, options.data);
  if (!data.ok()) return data.status();
  return std::vector<Feeds>{std::move(*data)};
}

// --scheme lsuv, after apply: each layer scaled on the model's own output.
Status RunLsuvStage(const RunOptions& options, onnx::ModelProto* model, RunResult* result) {
  auto executor = exec::Executor::Create(*model);
  if (!executor.ok()) return executor.status();
  auto feeds = LsuvBatches(**executor, options);
  if (!feeds.ok()) return feeds.status();
  executor->reset();
  const int before = result->plan.warnings_size();
  REINIT_RETURN_IF_ERROR(RunLsuv(*feeds, options.lsuv, model, &result->plan));
  for (int k = before; k < result->plan.warnings_size(); ++k) {
    result->warnings.push_back(result->plan.warnings(k));
  }
  return Status::Ok();
}

// The result must pass the checks that the input passes (`input_verdict`, the input's own).
Status CheckResult(const RunOptions& options, const onnx::ModelProto& model,
                   const Status& input_verdict, RunResult* result) {
  // Apply changes only the values of float initializers, never a shape, a type or a node:
  // a model that fails here had the problem before reinit touched it.
  Status valid = ValidateModel(model, "the model", &result->warnings);
  if (!valid.ok() && !input_verdict.ok() && valid.message() == input_verdict.message()) {
    result->warnings.push_back("'" + options.input + "': " + valid.message() +
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
  return Status::Ok();
}

// Everything between the plan and the save: apply, LSUV, the checks.
Status ApplyRun(const RunOptions& options, onnx::ModelProto* model, TensorStore* store,
                RunResult* result) {
  // The input's own verdict, to tell its defects from reinit's (apply changes weight values,
  // materializes stripped weights and unties merged copies; nothing the checker judges).
  Status input_verdict;
  if (!options.skip_check) {
    std::vector<std::string> ignored;
    input_verdict = ValidateModel(*model, "the model", &ignored);
  }
  const std::string context = "'" + options.input + "'";
  REINIT_RETURN_IF_ERROR(
      ApplyPlan(result->plan, model, store, MemoryLimit(options)).WithContext(context));
  if (HasLsuvLayers(result->plan)) {
    REINIT_RETURN_IF_ERROR(RunLsuvStage(options, model, result).WithContext(context));
  }
  if (options.skip_check) return Status::Ok();
  return CheckResult(options, *model, input_verdict, result);
}

// The signal of random inputs through `model` (its weights in memory or in `store`), measured
// on the layers of `plan`.
StatusOr<Propagation> PropagateModel(const onnx::ModelProto& model, TensorStore* store,
                                     const std::string& name, proto::Plan plan,
                                     const PropagateOptions& options) {
  Propagation result;
  result.plan = std::move(plan);
  auto executor = exec::Executor::Create(model, store);
  if (!executor.ok()) return executor.status().WithContext("'" + name + "'");
  auto feeds = RandomBatches(**executor, options);
  if (!feeds.ok()) return feeds.status().WithContext("'" + name + "'");
  auto signal = Propagate(**executor, result.plan, *feeds);
  if (!signal.ok()) return signal.status().WithContext("'" + name + "'");
  result.signal = std::move(*signal);
  return result;
}

// inspect --propagate: the model as it is, its layers those of a plan made with `plan_options`.
StatusOr<Propagation> PlanAndPropagate(const onnx::ModelProto& model, TensorStore* store,
                                       const std::string& name, const PlanOptions& plan_options,
                                       const PropagateOptions& options) {
  auto plan = MakePlan(model, plan_options);
  if (!plan.ok()) return plan.status().WithContext("'" + name + "'");
  plan->set_model(name);
  return PropagateModel(model, store, name, std::move(*plan), options);
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
  if (!HasPlan(options)) REINIT_RETURN_IF_ERROR(CheckPlanOptions(options.plan));
  SetThreadCount(options.threads);
  ExternalSources sources;
  TensorStore store;
  // LSUV runs the model: every weight in memory.
  const bool lsuv = !HasPlan(options) && UsesLsuv(options.plan);
  store.set_min_bytes(lsuv ? UINT64_MAX : options.stream_min_bytes);
  auto model = LoadModel(options.input, &sources, &store);
  if (!model.ok()) return model.status();
  // Apply changes no tensor's size or storage, so what cannot be written now cannot be then.
  if (!options.dry_run) {
    REINIT_RETURN_IF_ERROR(
        CheckSaveable(&model.value(), result.output, sources, options.save, &store));
  }
  REINIT_RETURN_IF_ERROR(PlanRun(*model, options, &result));
  if (options.dry_run) return result;
  if (options.progress) {
    const uint64_t total = store.TotalBytes();
    store.SetProgress([done = uint64_t{0}, total, &options](uint64_t bytes) mutable {
      done += bytes;
      options.progress(done, total);
    });
  }
  REINIT_RETURN_IF_ERROR(ApplyRun(options, &model.value(), &store, &result));
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
  return PlanAndPropagate(*model, &store, path, plan_options, options);
}

StatusOr<proto::Plan> InspectBytes(const ModelBytes& model, const PlanOptions& options) {
  REINIT_RETURN_IF_ERROR(CheckPlanOptions(options));
  auto parsed = ParseModel(model.data, model.name);
  if (!parsed.ok()) return parsed.status();
  PlanOptions with_limit = options;
  if (with_limit.max_memory == 0) with_limit.max_memory = DefaultMaxMemory();
  auto plan = MakePlan(*parsed, with_limit);
  if (!plan.ok()) return plan.status().WithContext("'" + model.name + "'");
  plan->set_model(model.name);
  return plan;
}

StatusOr<RunResult> ReinitBytes(const ModelBytes& model, const RunOptions& options,
                                std::string* out) {
  RunOptions named = options;
  named.input = model.name;
  if (!HasPlan(named)) REINIT_RETURN_IF_ERROR(CheckPlanOptions(named.plan));
  SetThreadCount(named.threads);
  auto parsed = ParseModel(model.data, model.name);
  if (!parsed.ok()) return parsed.status();
  RunResult result;
  result.output = model.name;
  REINIT_RETURN_IF_ERROR(PlanRun(*parsed, named, &result));
  REINIT_RETURN_IF_ERROR(ApplyRun(named, &parsed.value(), nullptr, &result));
  if (parsed->ByteSizeLong() > kProtobufLimit || !parsed->SerializeToString(out)) {
    return ModelError("'" + model.name +
                      "': the re-initialized model is over 2 GiB, more than protobuf can "
                      "serialize: give the model's path to write its weights as external data");
  }
  result.written = true;
  return result;
}

StatusOr<Propagation> PropagateBytes(const ModelBytes& model, const PlanOptions& plan_options,
                                     const PropagateOptions& options) {
  REINIT_RETURN_IF_ERROR(CheckPlanOptions(plan_options));
  auto parsed = ParseModel(model.data, model.name);
  if (!parsed.ok()) return parsed.status();
  return PlanAndPropagate(*parsed, nullptr, model.name, plan_options, options);
}

StatusOr<Propagation> PropagateReinitialized(const RunOptions& options, const ModelBytes* bytes) {
  RunOptions run = options;
  run.skip_check = true;  // nothing is written
  if (bytes) run.input = bytes->name;
  if (!HasPlan(run)) REINIT_RETURN_IF_ERROR(CheckPlanOptions(run.plan));
  SetThreadCount(run.threads);
  auto model = bytes ? ParseModel(bytes->data, bytes->name) : LoadModel(run.input);
  if (!model.ok()) return model.status();
  RunResult result;
  REINIT_RETURN_IF_ERROR(PlanRun(*model, run, &result));
  REINIT_RETURN_IF_ERROR(ApplyRun(run, &model.value(), nullptr, &result));
  return PropagateModel(*model, nullptr, run.input, std::move(result.plan), run.inputs);
}

namespace {

// The checks ExportFile makes before reading the model: options, and an output that is not it.
Status CheckExportOptions(const ExportFileOptions& options, bool to_file) {
  if (to_file && options.output.empty()) {
    return UsageError("export needs -o FILE.safetensors or -o FILE.npz");
  }
  if (to_file) {
    const std::string sidecar =
        options.sidecar.empty() ? options.output + ".json" : options.sidecar;
    for (const std::string* out : {&options.output, &sidecar}) {
      if (!options.input.empty() && (*out == options.input || SameFile(*out, options.input))) {
        return UsageError("output '" + *out + "' is the input model");
      }
    }
  }
  if (!options.plan_file.empty() || options.plan_json) return Status::Ok();
  REINIT_RETURN_IF_ERROR(CheckPlanOptions(options.plan));
  if (UsesLsuv(options.plan)) {
    return UsageError(
        "export does not run LSUV (it needs the model run on data): write the "
        "model with `reinit MODEL --scheme lsuv -o OUT.onnx`, then `reinit export "
        "OUT.onnx --as-is`");
  }
  return Status::Ok();
}

// The plan an export applies: read (options.plan_json or plan_file) or made.
StatusOr<proto::Plan> ExportPlan(const onnx::ModelProto& model, const ExportFileOptions& options,
                                 const std::string& name) {
  const uint64_t limit = options.max_memory ? options.max_memory : DefaultMaxMemory();
  if (options.plan_json || !options.plan_file.empty()) {
    auto text =
        options.plan_json ? StatusOr<std::string>(*options.plan_json) : ReadText(options.plan_file);
    if (!text.ok()) return text.status();
    const std::string what = options.plan_json ? std::string("<plan>") : options.plan_file;
    return ReadPlan(*text, what, model, limit);
  }
  PlanOptions plan_options = options.plan;
  plan_options.max_memory = limit;
  auto plan = MakePlan(model, plan_options);
  if (!plan.ok()) return plan.status().WithContext("'" + name + "'");
  return plan;
}

}  // namespace

namespace {

StatusOr<ExportRun> ExportLoaded(const onnx::ModelProto& model, const ExportFileOptions& options,
                                 const std::string& name) {
  ExportRun run;
  auto format = options.output.empty() && options.format.empty()
                    ? StatusOr<ExportFormat>(ExportFormat::kSafetensors)
                    : ChooseExportFormat(options.output, options.format);
  if (!format.ok()) return format.status();
  run.format = *format;
  auto plan = ExportPlan(model, options, name);
  if (!plan.ok()) return plan.status();
  run.summary.plan = std::move(plan).value();
  run.summary.plan.set_model(name);
  for (const auto& w : run.summary.plan.warnings()) run.summary.warnings.push_back(w);
  ExportOptions export_options;
  export_options.names = options.names;
  export_options.format = run.format;
  export_options.as_is = options.as_is;
  export_options.model_path = name;
  auto exported = ExportParameters(model, run.summary.plan, export_options);
  if (!exported.ok()) return exported.status().WithContext("'" + name + "'");
  run.exported = std::move(exported).value();
  for (const auto& w : run.exported.mapping.warnings) run.summary.warnings.push_back(w);
  run.summary.tensors = run.exported.tensors.size();
  run.summary.unmapped = run.exported.mapping.unmapped.size();
  return run;
}

Status WriteExport(ExportRun* run, const ExportFileOptions& options) {
  run->summary.output = options.output;
  run->summary.sidecar = options.sidecar.empty() ? options.output + ".json" : options.sidecar;
  auto bytes = EncodeExport(run->exported, run->format);
  if (!bytes.ok()) return bytes.status().WithContext("'" + run->summary.output + "'");
  return WriteFilesAtomic(
      {{run->summary.output, std::move(*bytes)}, {run->summary.sidecar, run->exported.sidecar}});
}

}  // namespace

namespace {

// The export's stages around the model `load` gives (`name` in messages): the checks, the
// plan and the names, and the files when options.output is set.
StatusOr<ExportRun> RunExport(const ExportFileOptions& options, const std::string& name,
                              const std::function<StatusOr<onnx::ModelProto>()>& load) {
  const bool to_file = !options.output.empty();
  REINIT_RETURN_IF_ERROR(CheckExportOptions(options, to_file));
  if (to_file) REINIT_RETURN_IF_ERROR(ChooseExportFormat(options.output, options.format).status());
  SetThreadCount(options.threads);
  auto model = load();
  if (!model.ok()) return model.status();
  auto run = ExportLoaded(*model, options, name);
  if (!run.ok()) return run.status();
  if (to_file) REINIT_RETURN_IF_ERROR(WriteExport(&run.value(), options));
  return run;
}

}  // namespace

StatusOr<ExportRun> ExportPath(const ExportFileOptions& options) {
  return RunExport(options, options.input, [&] { return LoadModel(options.input); });
}

StatusOr<ExportFileResult> ExportFile(const ExportFileOptions& options) {
  if (options.output.empty()) return UsageError("export needs -o FILE.safetensors or -o FILE.npz");
  auto run = ExportPath(options);
  if (!run.ok()) return run.status();
  return std::move(run->summary);
}

StatusOr<ExportRun> ExportBytes(const ModelBytes& model, const ExportFileOptions& options) {
  return RunExport(options, model.name, [&] { return ParseModel(model.data, model.name); });
}

}  // namespace reinit

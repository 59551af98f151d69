// The path-based entry points the tool calls: load -> plan -> apply -> validate -> save for a
// file, and load -> plan for inspection. Value-in/value-out stages live in plan.h, apply.h and
// model_io.h; this unit only strings them together and decides where the output goes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "export/export.h"
#include "io/external_data.h"
#include "io/tensor_store.h"
#include "plan.pb.h"
#include "plan/plan.h"
#include "signal/compare.h"
#include "signal/lsuv.h"
#include "signal/propagate.h"
#include "status.h"

namespace reinit {

struct RunOptions {
  std::string input;
  std::string output;       // empty: DefaultOutputPath(input)
  bool in_place = false;    // write over the input
  bool dry_run = false;     // plan only, write nothing
  bool skip_check = false;  // do not run the checker and shape inference on the result
  std::string plan_file;    // apply this plan (from `inspect --json`) instead of planning
  // The plan's text itself, instead of plan_file's (the Python module); plan_file, if set,
  // names it in messages, else "<plan>".
  std::optional<std::string> plan_json;
  PlanOptions plan;
  int threads = 0;   // workers for drawing and writing (0: one per core); never changes the bytes
  SaveOptions save;  // where external data goes (--external-data), size limits
  // Told, as the weights are drawn and written, how many bytes of how many are done.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Weights of at least this many bytes are streamed from the input to the output, never held
  // in memory whole (TensorStore); UINT64_MAX: none, every tensor is read into memory.
  uint64_t stream_min_bytes = TensorStore::kDefaultMinBytes;
  // The most memory a tensor drawn whole may take (see ApplyPlan); 0: half the machine's.
  uint64_t max_memory = 0;
  // --scheme lsuv: its tolerance and iterations, and the batch it measures on: random inputs
  // (shapes, seed) unless `data` names .npy files (input name -> path; "" for the only input).
  LsuvOptions lsuv;
  PropagateOptions inputs;
  std::map<std::string, std::string> data;
};

// Half the machine's physical memory: the default --max-memory.
uint64_t DefaultMaxMemory();

struct RunResult {
  proto::Plan plan;
  std::vector<std::string> warnings;
  std::string output;                   // where the model was (or would be) written
  std::vector<std::string> data_files;  // external data files written beside it
  bool written = false;
};

// "dir/model.onnx" -> "dir/model.reinit.onnx".
std::string DefaultOutputPath(const std::string& input);

StatusOr<RunResult> ReinitFile(const RunOptions& options);

StatusOr<proto::Plan> InspectFile(const std::string& path, const PlanOptions& options);

// --report: the scheme comparison on the input model (read whole into memory).
StatusOr<Comparison> CompareFile(const std::string& path, const PlanOptions& plan_options,
                                 const PropagateOptions& options);

struct Propagation {
  proto::Plan plan;
  Signal signal;
};

// inspect --propagate: the plan (for the layers and their activations) and the signal of random
// inputs through the model as it is, on the reference executor.
StatusOr<Propagation> PropagateFile(const std::string& path, const PlanOptions& plan_options,
                                    const PropagateOptions& options);

// A model given in memory, serialized (the Python module's bytes and onnx.ModelProto): `name`
// stands for its path in messages and in the plan's `model`. Every tensor is in memory, so
// nothing is streamed; a tensor stored in external data is refused (see ParseModel).
struct ModelBytes {
  std::string_view data;
  std::string name = "<bytes>";
};

// InspectFile on a model in memory.
StatusOr<proto::Plan> InspectBytes(const ModelBytes& model, const PlanOptions& options);

// ReinitFile on a model in memory (options.input, output, in_place, dry_run, save and
// stream_min_bytes are not used): the same plan, draws, LSUV and checks, the new model
// serialized into `out`. The same bytes as ReinitFile's output file wherever that holds no
// streamed tensor (none of 1 MiB or more); otherwise the same model.
StatusOr<RunResult> ReinitBytes(const ModelBytes& model, const RunOptions& options,
                                std::string* out);

// PropagateFile on a model in memory.
StatusOr<Propagation> PropagateBytes(const ModelBytes& model, const PlanOptions& plan_options,
                                     const PropagateOptions& options);

// The signal of random inputs (options.inputs) through the model re-initialized in memory first
// by `options` (its plan options or plan, LSUV's options): the model at options.input, or
// `bytes` if given. Nothing is written, and the re-initialized model is not checked.
StatusOr<Propagation> PropagateReinitialized(const RunOptions& options,
                                             const ModelBytes* bytes = nullptr);

// reinit export: plan (or read the plan file) and apply in memory exactly as ReinitFile would,
// then write the parameters under framework names (export/export.h) to `output` and the
// sidecar to `sidecar`, both or neither. The whole model is read into memory.
struct ExportFileOptions {
  std::string input;
  std::string output;   // FILE.safetensors or FILE.npz
  std::string format;   // "safetensors", "npz", or "": from the output's extension
  std::string sidecar;  // "": output + ".json"
  NameStyle names = NameStyle::kOnnx;
  bool as_is = false;                    // the model's values as they are
  std::string plan_file;                 // apply this plan instead of planning
  std::optional<std::string> plan_json;  // or this one, given as text (the Python module)
  PlanOptions plan;
  uint64_t max_memory = 0;  // 0: half the machine's
  int threads = 0;          // workers for drawing (0: one per core); never changes the bytes
};

struct ExportFileResult {
  proto::Plan plan;
  std::string output;
  std::string sidecar;
  size_t tensors = 0;
  size_t unmapped = 0;
  std::vector<std::string> warnings;
};

StatusOr<ExportFileResult> ExportFile(const ExportFileOptions& options);

// An export's stages, for callers that keep the tensors in memory (the Python module).
struct ExportRun {
  ExportFileResult summary;
  ExportResult exported;
  ExportFormat format = ExportFormat::kSafetensors;
};

// ExportFile's checks, planning and naming with the tensors kept (the Python module): the files
// are written too when options.output is set; otherwise options.format chooses the format
// ("": safetensors).
StatusOr<ExportRun> ExportPath(const ExportFileOptions& options);

// ExportFile on a model in memory: the tensors, and also the files when options.output is set.
StatusOr<ExportRun> ExportBytes(const ModelBytes& model, const ExportFileOptions& options);

}  // namespace reinit

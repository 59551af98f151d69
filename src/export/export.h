// The export stage: a model's parameters, as a plan re-initializes them (or as they are), under
// a framework's names and layouts (export/names.h), as tensors ready for a safetensors or .npz
// file, and the sidecar that says where each came from. Value in, value out: the model is not
// changed (the plan is applied to a copy) and nothing is written; reinit.h's ExportFile is the
// path-based wrapper.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <string>
#include <vector>

#include "export/names.h"
#include "export/tensor.h"
#include "plan.pb.h"
#include "status.h"

namespace reinit {

enum class ExportFormat { kSafetensors, kNpz };

const char* ExportFormatName(ExportFormat format);  // "safetensors", "npz"
// safetensors' "format" metadata, the framework tag the loaders read: "pt" for torch names (what
// Hugging Face transformers' loader accepts for a PyTorch state dict), "tf" for Keras names,
// "onnx" for ONNX names.
const char* LoaderFormat(NameStyle names);

// --format if given ("safetensors" or "npz"), else from the path's extension; usage errors
// otherwise.
StatusOr<ExportFormat> ChooseExportFormat(const std::string& path, const std::string& format);

struct ExportOptions {
  NameStyle names = NameStyle::kOnnx;
  ExportFormat format = ExportFormat::kSafetensors;
  // The model's values as they are: the plan is not applied (it only names layers and roles).
  bool as_is = false;
  std::string model_path;  // what the sidecar and the metadata call the model
};

struct ExportResult {
  std::vector<ExportedTensor> tensors;
  // safetensors' __metadata__: reinit's version, scheme, seed, names, format, as_is.
  std::map<std::string, std::string> metadata;
  // The sidecar JSON (docs/export.md): one entry per exported tensor, and what could
  // not be named, with why.
  std::string sidecar;
  NameMapping mapping;
};

// Applies `plan` to a copy of `model` (unless options.as_is) and names its float tensors. The
// model must hold its tensors' bytes (LoadModel without a TensorStore). Errors name the tensor.
StatusOr<ExportResult> ExportParameters(const onnx::ModelProto& model, const proto::Plan& plan,
                                        const ExportOptions& options);

// The file's bytes in options.format.
StatusOr<std::string> EncodeExport(const ExportResult& result, ExportFormat format);

}  // namespace reinit

// Model IO: reading a .onnx file into a ModelProto, validating a model with the onnx checker
// and shape inference, and writing a model so that it appears atomically (a temporary file in
// the same folder, flushed, then renamed over the target). Exceptions from protobuf and onnx
// stop here and become Status values that name the file.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "status.h"

namespace reinit {

StatusOr<onnx::ModelProto> LoadModel(const std::string& path);

// The onnx checker on the model and strict shape inference on a copy without the float
// weights' data (they do not affect shapes). A model newer than this onnx library knows
// (IR > 8 or an ai.onnx opset > 17) is not checked; a warning says so instead.
Status ValidateModel(const onnx::ModelProto& model, const std::string& what,
                     std::vector<std::string>* warnings);

// Serializes and writes atomically; on failure nothing is left at `path` that was not there.
Status SaveModelAtomic(const onnx::ModelProto& model, const std::string& path);

}  // namespace reinit

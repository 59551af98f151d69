// Model IO: reading a .onnx file into a ModelProto, validating a model with the onnx checker
// and shape inference, and writing a model so that it appears atomically (a temporary file in
// the same folder, flushed, then renamed over the target). Exceptions from protobuf and onnx
// stop here and become Status values that name the file.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "status.h"

namespace reinit {

StatusOr<onnx::ModelProto> LoadModel(const std::string& path);

// The onnx checker on the model and strict shape inference on a copy without the float
// weights' data (they do not affect shapes). A model newer than this onnx library knows
// (IR > 8 or an ai.onnx opset > 17) is not checked; a warning says so instead.
Status ValidateModel(const onnx::ModelProto& model, const std::string& what,
                     std::vector<std::string>* warnings);

// A copy of the model for shape questions: graph structure, value infos and integer tensors,
// with the floating-point initializers' data left out (shapes do not depend on it).
onnx::ModelProto ShapeOnlyCopy(const onnx::ModelProto& model);

// Tensor name -> dims (-1 where unknown) for every tensor whose shape is declared or can be
// inferred by ONNX shape inference; best effort, never fails.
std::unordered_map<std::string, std::vector<int64_t>> StaticShapes(const onnx::ModelProto& model);

// Serializes and writes atomically; on failure nothing is left at `path` that was not there.
Status SaveModelAtomic(const onnx::ModelProto& model, const std::string& path);

}  // namespace reinit

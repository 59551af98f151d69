// Guards around the onnx library's shape inference. Some inference functions of Debian's onnx
// (1.12) trust that a node's inputs agree with each other and read past the end of a shape
// when they do not (Conv and ConvTranspose whose weight has another rank than their input),
// which takes the process down on a hostile or corrupt model. The registry below hands out
// onnx's own schemas, except that for those ops the inference function first checks what the
// original would trust and, where it does not hold, fails as onnx's inference functions do
// (an onnx::InferenceError, which every caller of InferShapes catches). Found by fuzzing
// (fuzz/); each guard names the crash it prevents.
#pragma once

#include <onnx/defs/schema.h>

namespace reinit {

// onnx's schema registry, guarded; pass it to onnx::shape_inference::InferShapes.
const onnx::ISchemaRegistry* GuardedSchemaRegistry();

}  // namespace reinit

// Calls of model-local functions (ModelProto.functions): which function a node calls, and the
// function's body bound to one call, as a graph the later stages can walk like any subgraph.
#pragma once

#include <onnx/onnx_pb.h>

namespace reinit {

// The model-local function `node` calls (same name and domain), or null.
const onnx::FunctionProto* LocalFunction(const onnx::ModelProto& model,
                                         const onnx::NodeProto& node);

// A function's body as a graph for one call: its formal inputs renamed to the call's
// arguments (so a weight passed in resolves to the caller's constant) and attribute
// references replaced by the call's attribute values.
onnx::GraphProto BindCall(const onnx::FunctionProto& fn, const onnx::NodeProto& call);

}  // namespace reinit

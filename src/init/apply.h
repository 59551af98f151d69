// The apply stage — the only stage that changes the model: draws each planned tensor's new
// values from its own counter-based stream (seed, tensor name), writes them in the tensor's own
// data type and storage field, and records the tool version, scheme and seed in
// metadata_props. Tensors the plan does not rewrite are not touched.
#pragma once

#include <onnx/onnx_pb.h>

#include "io/tensor_store.h"
#include "plan.pb.h"
#include "plan/drawable.h"
#include "status.h"

namespace reinit {

// Tensors deferred in `store` (see TensorStore) get producers, drawn when they are saved,
// unless their old values are needed (kept blocks, partial views, requantization): those are
// read into memory first.
//
// A tensor that must be drawn whole in memory (orthogonal, a view, kept blocks,
// requantization, ConstantOfShape) may take at most `max_memory` bytes doing so (see
// CheckMemory in plan/drawable.h); past that the error names it and --max-memory.
Status ApplyPlan(const proto::Plan& plan, onnx::ModelProto* model, TensorStore* store = nullptr,
                 uint64_t max_memory = kNoMemoryLimit);

}  // namespace reinit

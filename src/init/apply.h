// The apply stage — the only stage that changes the model: draws each planned tensor's new
// values from its own counter-based stream (seed, tensor name), writes them in the tensor's own
// data type and storage field, and records the tool version, scheme and seed in
// metadata_props. Tensors the plan does not rewrite are not touched.
#pragma once

#include <onnx/onnx_pb.h>

#include "io/tensor_store.h"
#include "plan.pb.h"
#include "status.h"

namespace reinit {

// Tensors deferred in `store` (see TensorStore) get producers, drawn when they are saved,
// unless their old values are needed (kept blocks, partial views, requantization): those are
// read into memory first.
//
// A tensor that must be drawn whole in memory (orthogonal, a view, kept blocks,
// requantization, ConstantOfShape) may take at most `max_memory` bytes doing so (see
// CheckMemory in apply.cc); past that the error names it and --max-memory.
inline constexpr uint64_t kNoMemoryLimit = UINT64_MAX;
Status ApplyPlan(const proto::Plan& plan, onnx::ModelProto* model, TensorStore* store = nullptr,
                 uint64_t max_memory = kNoMemoryLimit);

// What ApplyPlan will find about `init`, drawn into `tensor` (the stored tensor, or the
// description of a ConstantOfShape output): ok when it is streamed or fits in `max_memory`
// drawn whole; otherwise the error ApplyPlan would give. The plan stage asks it first, so that
// apply never refuses what the plan lists.
Status CheckDrawable(const proto::TensorInit& init, const onnx::TensorProto& tensor,
                     uint64_t max_memory);

}  // namespace reinit

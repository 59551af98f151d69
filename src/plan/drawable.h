// What the apply stage can draw within --max-memory: the plan stage asks before it lists a
// tensor, so that apply never refuses what a plan lists, and apply checks the same way.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>

#include "plan.pb.h"
#include "status.h"

namespace reinit {

inline constexpr uint64_t kNoMemoryLimit = UINT64_MAX;

// Refuses a tensor that would have to be held in memory whole (orthogonal draws, views, kept
// blocks, requantization, ConstantOfShape) if that would take more than `limit` bytes: a model
// that declares absurd sizes fails at once instead of exhausting the machine's memory. About
// four copies of the tensor are alive at the peak (old values, values drawn, the matrix an
// orthogonal draw works in, the encoded bytes), each 4 bytes an element (8 for DOUBLE).
Status CheckMemory(const onnx::TensorProto& tensor, uint64_t limit);

// What ApplyPlan will find about `init`, drawn into `tensor` (the stored tensor, or the
// description of a ConstantOfShape output): ok when it is streamed or fits in `max_memory`
// drawn whole; otherwise the error ApplyPlan would give. The plan stage asks it first, so that
// apply never refuses what the plan lists.
Status CheckDrawable(const proto::TensorInit& init, const onnx::TensorProto& tensor,
                     uint64_t max_memory);

}  // namespace reinit

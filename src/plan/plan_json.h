// The Plan's JSON form: written by `inspect --json` (protobuf's JSON mapping), and read back
// after the user edited it (--plan), checked against the model and its std and bound
// recomputed from the edited scheme, fans and gain.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

#include "plan.pb.h"
#include "status.h"

namespace reinit {

// Reads a plan written by `inspect --json` (possibly edited) and checks it against the model:
// every layer it names must exist with the same weight; schemes must exist. std and bound are
// recomputed from scheme, fans and gain (edit those, or use scheme normal/uniform to set std or
// bound directly). Model layers the plan does not name are kept unchanged.
StatusOr<proto::Plan> ReadPlan(const std::string& json, const std::string& plan_path,
                               const onnx::ModelProto& model, uint64_t max_memory = 0);

std::string PlanToJson(const proto::Plan& plan);

}  // namespace reinit

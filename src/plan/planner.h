// The planner: walks a model's graph and the graphs inside it — If branches, Loop and Scan
// bodies, the bodies of model-local functions at each call — one scope per graph, and plans
// each scope's layers (layer_plan.h, recurrent_plan.h), ties and sharing (sharing.h) and
// residual streams (residual.h) into the Plan.
#pragma once

#include <onnx/onnx_pb.h>

#include "plan.pb.h"
#include "plan/plan.h"
#include "status.h"

namespace reinit {

// Plans every layer of `model` into `plan`, whose settings (std, range, mode) are set.
Status PlanModel(const onnx::ModelProto& model, const PlanOptions& options, proto::Plan* plan);

}  // namespace reinit

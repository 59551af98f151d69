// LSUV, layer-sequential unit-variance initialization (Mishkin & Matas, "All you need is a good
// init", ICLR 2016): after an orthogonal pre-initialization (the plan's "lsuv" layers), each
// such layer in the order they run is scaled, W <- W / sqrt(Var(B)) where B is the layer's
// output on a batch, until |Var(B) - 1| < tolerance or `max_iterations` scalings; biases stay
// zero. Layers before it already have their final weights when a layer is measured, as in the
// paper.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <string>

#include "plan.pb.h"
#include "plan/plan.h"
#include "signal/executor/tensor.h"
#include "status.h"

namespace reinit {

struct LsuvOptions {
  double tolerance = 0.1;
  int max_iterations = 10;
};

// `model` holds the orthogonal weights ApplyPlan drew (in memory); its weights are scaled in
// place, and each LSUV layer's lsuv field in `plan` records the final variance, the scalings
// and the total factor. A layer whose output variance is 0 (nothing reaches it) cannot be
// scaled: it is left as drawn and the plan gets a warning.
// Each layer's variance is measured over all of `batches` (RandomBatches: enough of them to
// reach --batch samples where the export fixed a small batch).
Status RunLsuv(const std::vector<std::map<std::string, exec::Tensor>>& batches,
               const LsuvOptions& options, onnx::ModelProto* model, proto::Plan* plan);

// Whether the plan has layers for LSUV to scale.
bool HasLsuvLayers(const proto::Plan& plan);

// Whether planning with these options can give LSUV layers (--scheme lsuv or a --layer glob
// set to it): the model is then read whole into memory.
bool UsesLsuv(const PlanOptions& options);

}  // namespace reinit

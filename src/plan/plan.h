// The Plan stage: from a loaded model and the user's options, decide for every layer what will
// happen to its weight and bias — fans, activation, scheme, gain, std or bound — before anything
// is changed. The stage's public front: the options, MakePlan, and the Plan's JSON form
// (plan_json.h). The planner itself is planner.h, one layer's planning layer_plan.h.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "graph/fans.h"
#include "plan.pb.h"
#include "plan/plan_json.h"
#include "plan/registry.h"
#include "status.h"

namespace reinit {

struct LayerOverride {
  std::string glob;  // fnmatch pattern, matched against the layer's and the weight's names
  std::string scheme;
  bool operator==(const LayerOverride&) const = default;
};

struct PlanOptions {
  std::string scheme = "auto";
  uint64_t seed = 0;
  FanConvention fan_convention = FanConvention::kOnnx;
  FanMode he_mode = FanMode::kFanIn;
  bool keep_bias = false;
  double naive_std = 0;  // --std; 0: the scheme's default (0.02 for gpt2 and bert, else 0.01)
  double naive_range = 0.05;
  bool keep_norms = false;  // --norms keep: normalization scales, shifts and statistics kept
  double forget_bias = 0;   // --forget-bias: the LSTM forget gate's bias
  std::vector<LayerOverride> overrides;  // applied in order: a later match wins
  // --residual: the depth rule for every residual stream (plan/residual.h); "": the
  // scheme's own (auto for auto, fixup for fixup, scaled for gpt2, none for the others).
  std::string residual;
  bool zero_init_residual = false;  // --zero-init-residual: γ = 0 on each branch's last norm
  // --max-memory: a tensor that must be drawn whole in more memory than this is refused at
  // planning (apply would refuse it: it never refuses what a plan lists); 0: no limit.
  uint64_t max_memory = 0;
  bool operator==(const PlanOptions&) const = default;
};

// The std the naive and recipe normal draws use: --std, or the scheme's default.
double EffectiveStd(const PlanOptions& options);

// Checks the options that need no model (scheme names, --std, --range): usage errors.
Status CheckPlanOptions(const PlanOptions& options);

// Errors name the layer and the tensor ("layer 'conv1' (Conv), weight 'w': ...").
StatusOr<proto::Plan> MakePlan(const onnx::ModelProto& model, const PlanOptions& options);

}  // namespace reinit

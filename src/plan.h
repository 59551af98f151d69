// The Plan stage: from a loaded model and the user's options, decide for every layer what will
// happen to its weight and bias — fans, activation, scheme, gain, std or bound — before anything
// is changed. Also the Plan's JSON form (protobuf's JSON mapping) and the reading back of a
// plan the user edited.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "graph/fans.h"
#include "init/schemes/registry.h"
#include "plan.pb.h"
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
  // --residual: the depth rule for every residual stream (init/schemes/residual.h); "": the
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

// Reads a plan written by `inspect --json` (possibly edited) and checks it against the model:
// every layer it names must exist with the same weight; schemes must exist. std and bound are
// recomputed from scheme, fans and gain (edit those, or use scheme normal/uniform to set std or
// bound directly). Model layers the plan does not name are kept unchanged.
StatusOr<proto::Plan> ReadPlan(const std::string& json, const std::string& plan_path,
                               const onnx::ModelProto& model, uint64_t max_memory = 0);

std::string PlanToJson(const proto::Plan& plan);

}  // namespace reinit

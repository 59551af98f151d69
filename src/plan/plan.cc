#include "plan/plan.h"

#include "plan/planner.h"
#include "plan/residual.h"

namespace reinit {

double EffectiveStd(const PlanOptions& options) {
  if (options.naive_std > 0) return options.naive_std;
  const std::string& s = options.scheme;
  return s == "gpt2" || s == "bert" || s == "bert-truncated" ? 0.02 : 0.01;
}

Status CheckPlanOptions(const PlanOptions& options) {
  if (!(options.naive_std >= 0)) return UsageError("--std must be positive");
  REINIT_RETURN_IF_ERROR(CheckResidual(options.residual));
  if (options.scheme == "lsuv" && !options.residual.empty() && options.residual != "none") {
    return UsageError(
        "--scheme lsuv scales every layer to unit output variance itself; it takes "
        "no --residual rule (only none)");
  }
  if (!(options.naive_range > 0)) return UsageError("--range must be positive");
  if (auto s = FindScheme(options.scheme); !s.ok()) return s.status();
  for (const auto& o : options.overrides) {
    if (auto s = FindScheme(o.scheme); !s.ok()) {
      return s.status().WithContext("--layer '" + o.glob + "=" + o.scheme + "'");
    }
  }
  return Status::Ok();
}

StatusOr<proto::Plan> MakePlan(const onnx::ModelProto& model, const PlanOptions& options) {
  REINIT_RETURN_IF_ERROR(CheckPlanOptions(options));
  proto::Plan plan;
  plan.set_scheme(options.scheme);
  plan.set_seed(options.seed);
  plan.set_fan_convention(options.fan_convention == FanConvention::kTorch ? "torch" : "onnx");
  plan.set_mode(std::string(FanModeName(options.he_mode)));
  plan.set_bias(options.keep_bias ? "keep" : "zero");
  plan.set_norms(options.keep_norms ? "keep" : "reset");
  plan.set_forget_bias(options.forget_bias);
  plan.set_std(EffectiveStd(options));
  plan.set_residual(options.residual);
  plan.set_zero_init_residual(options.zero_init_residual);
  plan.set_range(options.naive_range);
  plan.set_tool_version(REINIT_VERSION);
  if (!model.has_graph()) return ModelError("the model has no graph");
  REINIT_RETURN_IF_ERROR(PlanModel(model, options, &plan));
  return plan;
}

}  // namespace reinit

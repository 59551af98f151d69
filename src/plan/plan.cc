#include "plan/plan.h"

#include "plan/plan_options.h"
#include "plan/planner.h"
#include "plan/residual.h"

namespace reinit {

double EffectiveStd(const PlanOptions& options) {
  return options.naive_std > 0 ? options.naive_std : DefaultStd(options.scheme);
}

Status CheckPlanOptions(const PlanOptions& options) {
  if (!(options.naive_std >= 0)) return UsageError("--std must be positive");
  REINIT_RETURN_IF_ERROR(CheckResidual(options.residual, options.scheme));
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
  WritePlanOptions(options, &plan);
  plan.set_tool_version(REINIT_VERSION);
  if (!model.has_graph()) return ModelError("the model has no graph");
  REINIT_RETURN_IF_ERROR(PlanModel(model, options, &plan));
  return plan;
}

}  // namespace reinit

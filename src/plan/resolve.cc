#include "plan/resolve.h"

#include "plan/registry.h"

namespace reinit {

DrawFans FansOf(const proto::Layer& layer) { return {layer.fan_in(), layer.fan_out()}; }

Status Resolve(const std::string& name, DrawFans fans, double gain, const proto::Plan& plan,
               proto::TensorInit* init) {
  auto scheme = FindScheme(name);
  if (!scheme.ok()) return scheme.status();
  SchemeInputs in;
  in.fan_in = init->fan_in() > 0 ? init->fan_in() : fans.fan_in;
  in.fan_out = init->fan_out() > 0 ? init->fan_out() : fans.fan_out;
  in.gain = gain;
  in.he_mode = plan.mode() == "fan_out" ? FanMode::kFanOut : FanMode::kFanIn;
  // A naive draw's std or bound in the tensor is its final one (set by hand, or by the residual
  // rule); otherwise the residual rule's factor multiplies what the scheme computes.
  const bool normal = name == "normal" || name == "truncated-normal";
  const bool given = (normal && init->std() > 0) || (name == "uniform" && init->bound() > 0);
  in.naive_std = normal && init->std() > 0 ? init->std() : plan.std();
  in.naive_range = init->bound() > 0 && name == "uniform" ? init->bound() : plan.range();
  auto params = ComputeParameters(**scheme, in);
  if (!params.ok()) return params.status();
  const double scale = init->scale() > 0 && !given ? init->scale() : 1;
  init->set_scheme(name);
  init->set_gain(params->gain);
  init->set_std(params->std * scale);
  init->set_bound(params->bound * scale);
  return Status::Ok();
}

Status DrawAs(const FrameworkDraw& d, DrawFans fans, const proto::Plan& plan,
              proto::TensorInit* t) {
  t->set_fan_in(d.fan_in);
  t->set_fan_out(d.fan_out);
  t->set_std(d.std);
  t->set_bound(d.bound);
  return Resolve(d.scheme, fans, 1.0, plan, t);
}

}  // namespace reinit

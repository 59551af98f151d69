#include "plan/plan_json.h"

#include <google/protobuf/util/json_util.h>

#include <unordered_map>
#include <unordered_set>

#include "graph/layers.h"
#include "plan/auto_policy.h"
#include "plan/plan.h"
#include "plan/plan_options.h"
#include "plan/residual.h"
#include "plan/resolve.h"

namespace reinit {

namespace {

// The planning options the edited plan was made with (fan convention, mode, std, range, bias,
// norms, forget bias, residual rule), checked.
StatusOr<PlanOptions> OptionsOfPlan(const proto::Plan& edited, const std::string& where,
                                    uint64_t max_memory) {
  PlanOptions options;
  if (auto s = ReadPlanOptions(edited, &options); !s.ok()) {
    return ModelError(where + ": " + std::string(s.message()));
  }
  options.max_memory = max_memory;
  if (auto s = CheckResidual(options.residual); !s.ok()) {
    return ModelError(where + ": " + std::string(s.message()));
  }
  return options;
}

// Per-block tensors: blocks are matched by name; each may change scheme or gain.
Status ReconcileBlocks(const proto::TensorInit& w, const proto::Plan& plan, proto::TensorInit* t) {
  if (w.scheme() != "per-block" && !w.scheme().empty()) {
    return ModelError("'" + t->name() + "' is drawn per block; edit its blocks");
  }
  for (const auto& wb : w.blocks()) {
    proto::Block* tb = nullptr;
    for (auto& b : *t->mutable_blocks()) {
      if (b.name() == wb.name()) tb = &b;
    }
    if (!tb) return ModelError("'" + t->name() + "' has no block '" + wb.name() + "'");
    if (wb.scheme().empty()) continue;
    if (wb.scheme() == "keep" || wb.scheme() == "constant") {
      tb->set_scheme(wb.scheme());
      tb->set_value(wb.value());
      continue;
    }
    const DrawFans fans = {wb.fan_in() > 0 ? wb.fan_in() : tb->fan_in(),
                           wb.fan_out() > 0 ? wb.fan_out() : tb->fan_out()};
    proto::TensorInit drawn;
    drawn.set_std(wb.std());
    drawn.set_bound(wb.bound());
    REINIT_RETURN_IF_ERROR(
        Resolve(wb.scheme(), fans, wb.gain() > 0 ? wb.gain() : tb->gain(), plan, &drawn)
            .WithContext("block '" + wb.name() + "'"));
    tb->set_scheme(drawn.scheme());
    tb->set_gain(drawn.gain());
    tb->set_std(drawn.std());
    tb->set_bound(drawn.bound());
  }
  return Status::Ok();
}

// One tensor of a layer as the edited plan `w` asks, onto the freshly planned `t`.
Status ReconcileTensor(const proto::TensorInit& w, bool is_weight, const proto::Plan& plan,
                       const proto::Layer& layer, proto::TensorInit* t) {
  if (!w.name().empty() && w.name() != t->name()) {
    return ModelError("tensor '" + w.name() + "' is not the layer's '" + t->name() + "'");
  }
  const std::string& scheme = w.scheme();
  if (scheme.empty()) return Status::Ok();  // not edited: as freshly planned
  if (scheme == "keep") {
    t->set_scheme("keep");
    t->clear_blocks();
    return Status::Ok();
  }
  if (!t->blocks().empty() || !w.blocks().empty()) return ReconcileBlocks(w, plan, t);
  if (scheme == "constant") {
    t->set_scheme("constant");
    t->set_value(w.value());
    return Status::Ok();
  }
  if (!is_weight && scheme != "zero") {
    return ModelError("'" + t->name() + "' takes zero, constant or keep, not '" + scheme + "'");
  }
  const LayerKind kind = LayerKindFromName(layer.kind());
  std::string concrete = scheme;
  if (scheme == "auto") {
    concrete = std::string(ChooseAuto(layer.activation().kind(), kind, layer.depth()).scheme);
  }
  if (kind == LayerKind::kNorm && concrete != "zero") {
    return ModelError("a normalization's scale takes zero, constant or keep, not '" + concrete +
                      "'");
  }
  t->set_std(w.std());
  t->set_bound(w.bound());
  t->set_scale(w.scale());  // the plan's residual factor, as written
  const double gain = w.gain() > 0 ? w.gain() : t->gain();
  return Resolve(concrete, FansOf(layer), gain, plan, t);
}

// The edits of one layer `want` onto its freshly planned entry; `ctx` names it in errors.
Status ReconcileLayer(const proto::Layer& want, const std::string& ctx, const proto::Plan& plan,
                      proto::Layer* layer) {
  if (!want.weight().name().empty() && want.weight().name() != layer->weight().name()) {
    return ModelError(ctx + ": weight '" + want.weight().name() + "' is not the layer's weight '" +
                      layer->weight().name() + "'");
  }
  if (want.fan_in() > 0) layer->set_fan_in(want.fan_in());
  if (want.fan_out() > 0) layer->set_fan_out(want.fan_out());
  const auto& wanted = want.weight().scheme();
  if (!layer->skipped().empty()) {
    if (!wanted.empty() && wanted != "keep" && wanted != layer->weight().scheme()) {
      return ModelError(ctx + ": cannot be initialized: " + layer->skipped());
    }
    return Status::Ok();
  }
  Status s = ReconcileTensor(want.weight(), true, plan, *layer, layer->mutable_weight());
  if (s.ok() && want.has_bias()) {
    if (!layer->has_bias()) return ModelError(ctx + ": the layer has no bias");
    s = ReconcileTensor(want.bias(), false, plan, *layer, layer->mutable_bias());
  }
  for (const auto& wp : want.params()) {
    if (!s.ok()) break;
    proto::TensorInit* tp = nullptr;
    for (auto& p : *layer->mutable_params()) {
      if (p.name() == wp.name()) tp = &p;
    }
    if (!tp) return ModelError(ctx + ": the layer has no parameter '" + wp.name() + "'");
    s = ReconcileTensor(wp, tp->role() == "recurrence", plan, *layer, tp);
  }
  if (!s.ok()) return Status(StatusCode::kModel, s.message()).WithContext(ctx);
  if (!wanted.empty()) layer->set_reason("--plan: " + wanted);
  return Status::Ok();
}

// Layers the plan does not name stay as they are.
void KeepUnnamed(const std::unordered_set<std::string>& named, proto::Plan* plan) {
  for (auto& layer : *plan->mutable_layers()) {
    if (named.count(layer.name()) || !layer.skipped().empty()) continue;
    layer.mutable_weight()->set_scheme("keep");
    layer.mutable_weight()->clear_blocks();
    if (layer.has_bias()) {
      layer.mutable_bias()->set_scheme("keep");
      layer.mutable_bias()->clear_blocks();
    }
    for (auto& p : *layer.mutable_params()) {
      p.set_scheme("keep");
      p.clear_blocks();
    }
    layer.set_reason("not in the plan: kept");
  }
}

}  // namespace

std::string PlanToJson(const proto::Plan& plan) {
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = false;
  (void)google::protobuf::util::MessageToJsonString(plan, &json, opts);
  return json;
}

StatusOr<proto::Plan> ReadPlan(const std::string& json, const std::string& plan_path,
                               const onnx::ModelProto& model, uint64_t max_memory) {
  const std::string where = "plan '" + plan_path + "'";
  proto::Plan edited;
  auto parsed = google::protobuf::util::JsonStringToMessage(json, &edited);
  if (!parsed.ok()) {
    return ModelError(where + ": not a reinit plan: " + std::string(parsed.message()));
  }
  auto options = OptionsOfPlan(edited, where, max_memory);
  if (!options.ok()) return options.status();
  auto fresh_or = MakePlan(model, *options);
  if (!fresh_or.ok()) return fresh_or.status();
  proto::Plan plan = std::move(fresh_or).value();
  plan.set_scheme(edited.scheme().empty() ? "plan" : edited.scheme());

  std::unordered_map<std::string, proto::Layer*> by_name;
  for (auto& l : *plan.mutable_layers()) by_name.emplace(l.name(), &l);
  std::unordered_set<std::string> named;
  for (const auto& want : edited.layers()) {
    auto it = by_name.find(want.name());
    if (it == by_name.end()) {
      return ModelError(where + ": layer '" + want.name() + "' does not exist in the model");
    }
    if (!named.insert(want.name()).second) {
      return ModelError(where + ": layer '" + want.name() + "' is listed twice");
    }
    REINIT_RETURN_IF_ERROR(
        ReconcileLayer(want, where + ": layer '" + want.name() + "'", plan, it->second));
  }
  KeepUnnamed(named, &plan);
  return plan;
}

}  // namespace reinit

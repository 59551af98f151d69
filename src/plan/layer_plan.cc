#include "plan/layer_plan.h"

#include <fnmatch.h>

#include "graph/activation.h"
#include "graph/fixed.h"
#include "graph/recurrent.h"
#include "io/codes.h"
#include "io/model_io.h"
#include "io/tensor_codec.h"
#include "io/tensor_store.h"
#include "plan/auto_policy.h"
#include "plan/drawable.h"
#include "plan/framework_defaults.h"
#include "plan/gains.h"
#include "plan/recurrent_plan.h"
#include "plan/registry.h"
#include "plan/resolve.h"
#include "plan/sharing.h"

namespace reinit {

namespace {

// `name` is the tensor as the graph names it: a Constant node's output, whose value may carry
// another name of its own (spox keeps the torch name there).
void DescribeTensor(const std::string& name, const onnx::TensorProto& t, proto::TensorInit* init) {
  init->set_name(name);
  for (int64_t d : t.dims()) init->add_shape(d);
  init->set_data_type(DataTypeName(t.data_type()));
}

bool GlobMatches(const std::string& glob, const std::string& name) {
  return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
}

// The stored data must match the dims; a tensor still to be generated has none yet.
Status CheckData(const PlanContext& ctx, const std::string& name, const onnx::TensorProto& t) {
  // Deferred bytes had their length checked against the dims when loaded.
  if (IsGenerated(ctx, name) || IsDeferred(t)) return Status::Ok();
  if (CodeBits(t.data_type()) != 0) return CheckCodes(t);
  return CheckStoredSize(t);
}

// A tensor apply would refuse to draw whole (--max-memory) is refused here, with apply's
// reason, before anything is written: what a plan lists, apply carries out.
Status CheckTooLarge(const PlanContext& ctx, const Layer& found, const proto::Layer& layer) {
  if (ctx.options->max_memory == 0 || !layer.skipped().empty()) return Status::Ok();
  std::vector<std::pair<const proto::TensorInit*, std::string>> tensors = {
      {&layer.weight(), found.weight_copy_of}};
  if (layer.has_bias()) tensors.push_back({&layer.bias(), found.bias_copy_of});
  for (const auto& p : layer.params()) tensors.push_back({&p, ""});
  for (const auto& [t, copy_of] : tensors) {
    Status s = CheckDrawable(*t, Stored(ctx, t->name(), copy_of), ctx.options->max_memory);
    if (!s.ok()) return s.WithContext(LayerContext(layer) + ", tensor '" + t->name() + "'");
  }
  return Status::Ok();
}

// The layer's other parameters (running statistics, R, peepholes, parts), kept until their
// layer's kind plans them.
void DescribeParams(const PlanContext& ctx, const Layer& found, proto::Layer* layer) {
  for (const Param& param : found.params) {
    proto::TensorInit* p = layer->add_params();
    p->set_name(param.name);
    if (found.skipped.empty()) {
      DescribeTensor(param.name, Stored(ctx, param.name, ""), p);
      // A ConstantOfShape output (a stripped running mean, say) becomes an initializer too.
      if (IsGenerated(ctx, param.name)) p->set_materialize("ConstantOfShape");
      SetView(param.view, p);
    } else if (const auto* t = ctx.index->ConstantTensor(param.name)) {
      DescribeTensor(param.name, *t, p);
    }
    p->set_role(ParamRoleName(param.role));
    p->set_scheme("keep");
  }
}

// A layer that cannot be planned: why.
Status PlanSkipped(const PlanContext& ctx, const Layer& found, proto::Layer* layer) {
  // A --layer naming this very layer or weight asks for what cannot be done; a glob that
  // merely matches it does not.
  for (const auto& o : ctx.options->overrides) {
    if (o.scheme != "keep" && (o.glob == found.name || o.glob == found.weight)) {
      return ModelError("--layer '" + o.glob + "=" + o.scheme + "': " + found.name + " (" +
                        found.op + ", " + found.weight +
                        ") cannot be initialized: " + found.skipped);
    }
  }
  layer->set_skipped(found.skipped);
  // A loose tensor that is a window: say so.
  if (const auto* t = found.node < 0 ? ctx.index->ConstantTensor(found.weight) : nullptr) {
    if (auto fixed = FixedTensorKind(*t, found.weight, ShapeOf(*t), -1)) {
      layer->set_skipped("kept: fixed " + *fixed);
    }
  }
  return Status::Ok();
}

// The weight's and the bias's descriptions, their stored data checked.
Status DescribeWeightAndBias(const PlanContext& ctx, const Layer& found, proto::Layer* layer) {
  const onnx::TensorProto& weight = Stored(ctx, found.weight, found.weight_copy_of);
  proto::TensorInit* w = layer->mutable_weight();
  DescribeTensor(found.weight, weight, w);
  w->set_name(found.weight);
  w->set_copy_of(found.weight_copy_of);
  if (IsGenerated(ctx, found.weight)) w->set_materialize("ConstantOfShape");
  if (const auto& dq = found.weight_view.dequantize) {
    w->set_quant_scale(dq->scale);
    w->set_quant_zero_point(dq->zero_point);
    w->set_quant_axis(dq->axis);
    if (dq->block_size > 0) w->set_quant_block_size(dq->block_size);
  }
  REINIT_RETURN_IF_ERROR(CheckData(ctx, found.weight, weight).WithContext(LayerContext(*layer)));
  if (!found.bias.empty()) {
    const onnx::TensorProto& bias = Stored(ctx, found.bias, found.bias_copy_of);
    REINIT_RETURN_IF_ERROR(CheckData(ctx, found.bias, bias).WithContext(LayerContext(*layer)));
    proto::TensorInit* b = layer->mutable_bias();
    DescribeTensor(found.bias, bias, b);
    b->set_name(found.bias);
    b->set_copy_of(found.bias_copy_of);
    if (IsGenerated(ctx, found.bias)) b->set_materialize("ConstantOfShape");
    b->set_scheme(ctx.options->keep_bias ? "keep" : "zero");
  }
  for (const auto& p : found.params) {
    REINIT_RETURN_IF_ERROR(
        CheckData(ctx, p.name, Stored(ctx, p.name, "")).WithContext(LayerContext(*layer)));
  }
  return Status::Ok();
}

// A weight that is a signal-processing constant (graph/fixed.h) is kept with its layer,
// unless a --layer glob names the layer or the weight.
bool KeepFixed(const PlanContext& ctx, const Layer& found, int output_axis, proto::Layer* layer) {
  for (const auto& o : ctx.options->overrides) {
    if (GlobMatches(o.glob, found.name) || GlobMatches(o.glob, found.weight)) return false;
  }
  const onnx::TensorProto& t = Stored(ctx, found.weight, found.weight_copy_of);
  const bool stored_layout = found.weight_view.steps.empty() && !IsGenerated(ctx, found.weight);
  auto fixed = FixedTensorKind(t, found.weight, stored_layout ? ShapeOf(t) : std::vector<int64_t>{},
                               stored_layout ? output_axis : -1);
  if (!fixed) return false;
  layer->set_skipped("kept: fixed " + *fixed);
  layer->mutable_weight()->set_scheme("keep");
  if (layer->has_bias()) layer->mutable_bias()->set_scheme("keep");
  return true;
}

// A framework's default draws for the weight and the bias.
Status PlanFrameworkWeight(const PlanContext& ctx, const Layer& found, Framework framework,
                           proto::Layer* layer) {
  const auto& node = ctx.index->node(found.node);
  const auto shape = ViewShape(ctx, found);
  FrameworkDraw w = FrameworkWeight(framework, *found.rule, node, shape);
  layer->set_reason(w.why);
  REINIT_RETURN_IF_ERROR(DrawAs(w, FansOf(*layer), *ctx.settings, layer->mutable_weight())
                             .WithContext(LayerContext(*layer)));
  if (!layer->has_bias() || ctx.options->keep_bias) return Status::Ok();
  return DrawAs(FrameworkBias(framework, *found.rule, node, shape), FansOf(*layer), *ctx.settings,
                layer->mutable_bias())
      .WithContext(LayerContext(*layer));
}

// The activation after a dense, conv or embedding layer (and its depth).
void SetActivation(const PlanContext& ctx, const Layer& found, LayerKind kind,
                   proto::Layer* layer) {
  if (kind == LayerKind::kEmbedding) {
    layer->mutable_activation()->set_kind("linear");
    layer->mutable_activation()->add_path("an embedding lookup has no activation of its own");
  } else {
    layer->set_depth(ctx.depths->at(found.node));
    *layer->mutable_activation() =
        DetectActivation(*ctx.index, *ctx.layer_nodes, found.output, found.path);
  }
}

// Dense, conv and embedding layers: one weight drawn as a whole.
Status PlanWeight(const PlanContext& ctx, const Layer& found, proto::Layer* layer) {
  layer->set_output(found.output);
  auto fans = LayerFans(ctx, found, layer);
  if (!fans.ok()) return fans.status();
  const LayerKind kind = KindOf(found.rule->layout);
  layer->mutable_weight()->set_role(kind == LayerKind::kEmbedding ? "table" : "weight");
  if (layer->has_bias()) layer->mutable_bias()->set_role("bias");
  if (kind != LayerKind::kEmbedding && KeepFixed(ctx, found, fans->output_axis, layer)) {
    return Status::Ok();
  }
  SetActivation(ctx, found, kind, layer);
  const auto& act = layer->activation();
  auto gain = CachedGain(ctx, act.kind(), act.param());
  if (!gain.ok()) return gain.status().WithContext(LayerContext(*layer));
  std::string reason;
  std::string scheme = Requested(ctx, found, &reason);
  if (auto framework = FrameworkFor(scheme)) {
    return PlanFrameworkWeight(ctx, found, *framework, layer);
  }
  double weight_gain = *gain;
  if (auto draw = ChooseForLayer(scheme, act.kind(), kind, layer->depth())) {
    reason = std::move(draw->reason);
    scheme = std::move(draw->scheme);
    if (draw->unit_gain) weight_gain = 1;
    if (draw->lsuv) layer->mutable_lsuv();  // the LSUV stage scales it to unit variance
  }
  layer->set_reason(reason);
  return Resolve(scheme, FansOf(*layer), weight_gain, *ctx.settings, layer->mutable_weight())
      .WithContext(LayerContext(*layer));
}

// Normalization: scale 1, shift 0, running mean 0, running variance 1 (--norms reset), or
// kept; a --layer glob may set the scale to zero (zero-γ residual branches).
Status PlanNorm(const PlanContext& ctx, const Layer& found, proto::Layer* layer) {
  layer->set_output(found.output);
  layer->mutable_activation()->set_kind("linear");
  layer->mutable_activation()->add_path("a normalization is not followed up");
  std::string reason;
  std::string scheme = Requested(ctx, found, &reason);
  const bool keep = ctx.options->keep_norms;
  proto::TensorInit* scale = layer->mutable_weight();
  scale->set_role("scale");
  if (layer->has_bias()) layer->mutable_bias()->set_role("shift");
  if (scheme == "zero") {
    scale->set_scheme("zero");
    layer->set_reason(reason + ": scale 0");
  } else if (keep) {
    scale->set_scheme("keep");
    layer->set_reason("--norms keep");
  } else {
    scale->set_scheme("constant");
    scale->set_value(1);
    layer->set_reason("normalization reset: scale 1, shift 0, running mean 0, running var 1");
  }
  if (layer->has_bias()) layer->mutable_bias()->set_scheme(keep ? "keep" : "zero");
  for (auto& p : *layer->mutable_params()) {
    if (keep) continue;
    if (p.role() == "running_mean") p.set_scheme("zero");
    if (p.role() == "running_var") {
      p.set_scheme("constant");
      p.set_value(1);
    }
  }
  return Status::Ok();
}

}  // namespace

std::string LayerContext(const proto::Layer& layer) {
  return "layer '" + layer.name() + "' (" + layer.op() + "), weight '" + layer.weight().name() +
         "'";
}

const onnx::TensorProto& Stored(const PlanContext& ctx, const std::string& name,
                                const std::string& copy_of) {
  const std::string& n = copy_of.empty() ? name : copy_of;
  if (const auto* t = ctx.index->ConstantTensor(n)) return *t;
  // A ConstantOfShape output: its description, kept alive in the caches.
  auto& kept = ctx.caches->generated[n];
  if (!kept) kept = ResolveConstant(*ctx.index, n)->generated;
  return *kept;
}

bool IsGenerated(const PlanContext& ctx, const std::string& name) {
  return ctx.caches->generated.count(name) > 0;
}

std::string Requested(const PlanContext& ctx, const Layer& found, std::string* reason) {
  const PlanOptions& options = *ctx.options;
  std::string scheme = options.scheme;
  *reason = "--scheme " + options.scheme;
  for (size_t i = 0; i < options.overrides.size(); ++i) {
    const auto& o = options.overrides[i];
    if (GlobMatches(o.glob, found.name) || GlobMatches(o.glob, found.weight)) {
      scheme = o.scheme;
      *reason = "--layer " + o.glob + "=" + o.scheme;
      ctx.caches->override_used[i] = true;
    }
  }
  return scheme;
}

StatusOr<double> CachedGain(const PlanContext& ctx, const std::string& kind, double param) {
  auto key = std::make_pair(kind, param);
  auto& cache = ctx.caches->gains;
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto gain = GainFor(kind, param);
    if (!gain.ok()) return gain.status();
    it = cache.emplace(key, gain->gain).first;
  }
  return it->second;
}

std::vector<int64_t> ViewShape(const PlanContext& ctx, const Layer& found) {
  if (HasParamRole(found, ParamRole::kWeightPart)) {
    // One [1, G·H, C] part per direction (the weight's view is the first): the layer sees
    // [D, G·H, C].
    auto shape = found.weight_view.shape;
    shape[0] = WeightPartCount(found);
    return shape;
  }
  if (!found.weight_view.shape.empty()) return found.weight_view.shape;
  return ShapeOf(Stored(ctx, found.weight, found.weight_copy_of));
}

StatusOr<Fans> LayerFans(const PlanContext& ctx, const Layer& found, proto::Layer* layer) {
  const auto& node = ctx.index->node(found.node);
  const auto shape = ViewShape(ctx, found);
  auto fans = ComputeFans(*found.rule, node, shape, ctx.options->fan_convention);
  if (!fans.ok()) return fans.status().WithContext(LayerContext(*layer));
  if (auto it = ctx.shapes->find(node.input(0)); it != ctx.shapes->end() && it->second.size() > 1) {
    Status s = CheckInputChannels(*found.rule, node, shape, it->second[1]);
    if (!s.ok()) return s.WithContext(LayerContext(*layer));
  }
  layer->set_fan_in(fans->in);
  layer->set_fan_out(fans->out);
  layer->mutable_weight()->set_output_axis(fans->output_axis);
  SetView(found.weight_view, layer->mutable_weight());
  return fans;
}

void SetView(const ConstantView& view, proto::TensorInit* t) {
  t->clear_view();
  t->clear_view_shape();
  if (view.steps.empty()) return;
  for (int64_t d : view.shape) t->add_view_shape(d);
  for (const auto& step : view.steps) {
    proto::ViewStep* v = t->add_view();
    for (int64_t p : step.perm) v->add_perm(p);
    for (int64_t d : step.shape) v->add_shape(d);
    if (step.axis >= 0) {
      v->set_axis(step.axis);
      for (int64_t k : step.indices) v->add_indices(k);
    }
  }
}

StatusOr<proto::Layer> PlanLayer(const Layer& found, const PlanContext& ctx) {
  proto::Layer layer;
  layer.set_name(found.name);
  layer.set_op(found.op);
  if (found.rule) layer.set_kind(KindName(KindOf(found.rule->layout)));
  if (!found.weight.empty()) layer.mutable_weight()->set_name(found.weight);
  DescribeParams(ctx, found, &layer);
  if (!found.skipped.empty()) {
    REINIT_RETURN_IF_ERROR(PlanSkipped(ctx, found, &layer));
    return layer;
  }
  REINIT_RETURN_IF_ERROR(DescribeWeightAndBias(ctx, found, &layer));
  switch (KindOf(found.rule->layout)) {
    case LayerKind::kNorm:
      REINIT_RETURN_IF_ERROR(PlanNorm(ctx, found, &layer));
      break;
    case LayerKind::kRecurrent:
      REINIT_RETURN_IF_ERROR(PlanRecurrent(ctx, found, &layer));
      break;
    default:
      REINIT_RETURN_IF_ERROR(PlanWeight(ctx, found, &layer));
      break;
  }
  KeepSharedIfSame(layer.mutable_weight());
  if (layer.has_bias()) KeepSharedIfSame(layer.mutable_bias());
  REINIT_RETURN_IF_ERROR(CheckTooLarge(ctx, found, layer));
  return layer;
}

}  // namespace reinit

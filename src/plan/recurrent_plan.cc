#include "plan/recurrent_plan.h"

#include "graph/activation.h"
#include "graph/recurrent.h"
#include "plan/auto_policy.h"
#include "plan/framework_defaults.h"
#include "plan/resolve.h"

namespace reinit {

namespace {

// A recurrent layer's geometry and gates, and what each of its parts gets at which grain.
struct RecurrentLayout {
  int64_t dirs = 0, input = 0, per_dir = 0, hidden = 0;
  std::vector<Gate> gates;
  bool framework = false;  // drawn as a framework does: no per-gate activation gains
  RecurrentDraws draws;
};

// What each part gets: the framework's draws, or auto's (and the named schemes') per gate.
RecurrentDraws ChooseRecurrentDraws(const PlanContext& ctx, const std::string& requested,
                                    const std::string& reason, const RecurrentLayout& r) {
  const auto framework = FrameworkFor(requested);
  const bool torch = ctx.options->fan_convention == FanConvention::kTorch;
  const double block_out = torch ? static_cast<double>(r.per_dir * r.hidden) : r.hidden;
  RecurrentDraws draws;
  if (framework) {
    draws = FrameworkRecurrent(*framework, r.input, r.hidden, r.per_dir);
  } else {
    draws.grain = RecurrentGrain::kGate;
    const bool is_auto = ChoosesPerLayer(requested);
    AutoChoice in = ChooseAutoRecurrent(false), rec = ChooseAutoRecurrent(true);
    draws.input = {is_auto ? std::string(in.scheme) : requested,
                   double(r.input),
                   block_out,
                   0,
                   0,
                   is_auto ? in.reason : reason};
    draws.recurrence = {is_auto ? std::string(rec.scheme) : requested,
                        double(r.hidden),
                        block_out,
                        0,
                        0,
                        is_auto ? rec.reason : reason};
    draws.bias = {"zero", 0, 0, 0, 0, "bias 0"};
    draws.forget_bias = ctx.options->forget_bias;
  }
  if (ctx.options->forget_bias != 0) draws.forget_bias = ctx.options->forget_bias;
  return draws;
}

// One block of W or R: its place, fans and drawing parameters.
Status PlanGateBlock(const PlanContext& ctx, const RecurrentLayout& r, const Gate& g,
                     const FrameworkDraw& d, bool recurrence, int64_t d_index, proto::Block* b) {
  const RecurrentGrain grain = r.draws.grain;
  const int64_t cols = recurrence ? r.hidden : r.input;
  const int64_t rows = grain == RecurrentGrain::kGate ? r.hidden : r.per_dir * r.hidden;
  const int64_t gate = grain == RecurrentGrain::kGate ? g.index : 0;
  b->set_name(grain == RecurrentGrain::kGate ? g.direction + "." + g.name : g.direction);
  b->set_offset((d_index * r.per_dir * r.hidden + gate * r.hidden) * cols);
  b->set_rows(rows);
  b->set_cols(cols);
  b->set_fan_in(d.fan_in);
  b->set_fan_out(d.fan_out);
  double gain = 1;
  if (!r.framework) {
    b->set_activation(g.activation);
    auto g_gain = CachedGain(ctx, g.activation, 0);
    if (!g_gain.ok()) return g_gain.status();
    // Recurrent orthogonal blocks keep gain 1: a larger gain compounds over time steps.
    gain = recurrence && d.scheme == "orthogonal" ? 1.0 : *g_gain;
  }
  proto::TensorInit drawn;
  drawn.set_std(d.std);
  drawn.set_bound(d.bound);
  REINIT_RETURN_IF_ERROR(
      Resolve(d.scheme, DrawFans{b->fan_in(), b->fan_out()}, gain, *ctx.settings, &drawn));
  b->set_scheme(drawn.scheme());
  b->set_gain(drawn.gain());
  b->set_std(drawn.std());
  b->set_bound(drawn.bound());
  return Status::Ok();
}

// W (recurrence = false) or R (true), block by block at the chosen grain.
// `only`: the tensor holds just that direction (a per-direction part), else all of them.
Status PlanGateTensor(const PlanContext& ctx, const RecurrentLayout& r, const proto::Layer& layer,
                      proto::TensorInit* t, const FrameworkDraw& d, bool recurrence, int64_t only) {
  if (r.draws.grain == RecurrentGrain::kTensor) return DrawAs(d, FansOf(layer), *ctx.settings, t);
  t->set_scheme("per-block");
  for (const Gate& g : r.gates) {
    if (r.draws.grain == RecurrentGrain::kDirection && g.index != 0) continue;
    int64_t d_index = g.direction == "reverse" && r.dirs == 2 ? 1 : 0;
    if (only >= 0) {
      if (d_index != only) continue;
      d_index = 0;
    }
    REINIT_RETURN_IF_ERROR(PlanGateBlock(ctx, r, g, d, recurrence, d_index, t->add_blocks()));
  }
  return Status::Ok();
}

// W, then the parameters: R, the per-direction parts, peepholes.
Status PlanRecurrentTensors(const PlanContext& ctx, const Layer& found, const RecurrentLayout& r,
                            proto::Layer* layer) {
  const RecurrentDraws& draws = r.draws;
  layer->mutable_weight()->set_role("weight");
  const bool parts = HasParamRole(found, ParamRole::kWeightPart);
  REINIT_RETURN_IF_ERROR(
      PlanGateTensor(ctx, r, *layer, layer->mutable_weight(), draws.input, false, parts ? 0 : -1)
          .WithContext(LayerContext(*layer)));
  const bool r_parts = HasParamRole(found, ParamRole::kRecurrencePart);
  for (size_t i = 0; i < found.params.size(); ++i) {
    const Param& param = found.params[i];
    proto::TensorInit& p = *layer->mutable_params(static_cast<int>(i));
    Status s;
    if (param.role == ParamRole::kWeightPart) {
      s = PlanGateTensor(ctx, r, *layer, &p, draws.input, false, param.part);
    } else if (param.role == ParamRole::kRecurrencePart) {
      s = PlanGateTensor(ctx, r, *layer, &p, draws.recurrence, true, param.part);
    } else if (param.role == ParamRole::kRecurrence) {
      s = PlanGateTensor(ctx, r, *layer, &p, draws.recurrence, true, r_parts ? 0 : -1);
    } else if (param.role == ParamRole::kPeephole) {
      p.set_scheme("zero");
    } else if (param.role == ParamRole::kBiasPart) {
      p.set_scheme(ctx.options->keep_bias ? "keep" : "zero");
      if (draws.bias.scheme != "zero" || draws.forget_bias != 0) {
        ctx.warnings->Add("layer '" + layer->name() + "': its bias is assembled from " +
                          "several tensors; they are " + p.scheme() +
                          " and the bias scheme and --forget-bias are not applied to '" + p.name() +
                          "'");
      }
    }
    REINIT_RETURN_IF_ERROR(s.WithContext(LayerContext(*layer)));
  }
  return Status::Ok();
}

// B [D, 8H] holds, per direction, input biases i, o, f, c then recurrent ones: the forget
// gate's input bias carries the value (input + recurrent = forget bias); the rest is drawn
// as the bias draw says, in blocks around it.
void PlanForgetBias(const RecurrentLayout& r, proto::TensorInit* b) {
  const std::string rest = b->scheme();
  const int64_t hidden = r.hidden;
  b->set_scheme("per-block");
  for (int64_t d = 0; d < r.dirs; ++d) {
    const std::string dir = r.dirs == 2 ? (d == 0 ? "forward" : "reverse") : r.gates[0].direction;
    const int64_t base = d * 2 * r.per_dir * hidden;
    auto block = [&](const std::string& name, int64_t from, int64_t to, const std::string& scheme,
                     double value) {
      proto::Block* x = b->add_blocks();
      x->set_name(dir + "." + name);
      x->set_offset(base + from);
      x->set_rows(to - from);
      x->set_cols(1);
      x->set_scheme(scheme);
      x->set_value(value);
      x->set_bound(b->bound());
      x->set_std(b->std());
    };
    block("io.input", 0, kLstmForgetGate * hidden, rest, 0);
    block("f.input", kLstmForgetGate * hidden, (kLstmForgetGate + 1) * hidden, "constant",
          r.draws.forget_bias);
    block("c.input_and_recurrent", (kLstmForgetGate + 1) * hidden, 2 * r.per_dir * hidden, rest, 0);
  }
}

}  // namespace

Status PlanRecurrent(const PlanContext& ctx, const Layer& found, proto::Layer* layer) {
  auto fans = LayerFans(ctx, found, layer);
  if (!fans.ok()) return fans.status();
  const auto& node = ctx.index->node(found.node);
  const auto w_shape = ViewShape(ctx, found);
  RecurrentLayout r;
  r.dirs = w_shape[0];
  r.input = w_shape[2];
  r.per_dir = GateCount(found.rule->layout);
  r.hidden = w_shape[1] / r.per_dir;
  auto gates = RecurrentGates(node, found.rule->layout, r.dirs);
  if (!gates.ok()) return gates.status().WithContext(LayerContext(*layer));
  r.gates = std::move(gates).value();
  layer->set_depth(ctx.depths->at(found.node));
  layer->set_output(found.output);
  *layer->mutable_activation() =
      DetectActivation(*ctx.index, *ctx.layer_nodes, found.output, found.path);
  std::string reason;
  const std::string requested = Requested(ctx, found, &reason);
  r.framework = FrameworkFor(requested).has_value();
  r.draws = ChooseRecurrentDraws(ctx, requested, reason, r);
  layer->set_reason(r.draws.input.why);
  REINIT_RETURN_IF_ERROR(PlanRecurrentTensors(ctx, found, r, layer));
  if (!layer->has_bias() || ctx.options->keep_bias) return Status::Ok();
  proto::TensorInit* b = layer->mutable_bias();
  b->set_role("bias");
  REINIT_RETURN_IF_ERROR(
      DrawAs(r.draws.bias, FansOf(*layer), *ctx.settings, b).WithContext(LayerContext(*layer)));
  if (found.rule->layout != WeightLayout::kLstm || r.draws.forget_bias == 0) return Status::Ok();
  PlanForgetBias(r, b);
  return Status::Ok();
}

}  // namespace reinit

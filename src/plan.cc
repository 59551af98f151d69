#include "plan.h"

#include <fnmatch.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "graph/activation.h"
#include "graph/fixed.h"
#include "graph/graph_index.h"
#include "graph/layers.h"
#include "graph/recurrent.h"
#include "graph/structure.h"
#include "init/apply.h"
#include "init/gains.h"
#include "init/schemes/auto_policy.h"
#include "init/schemes/framework_defaults.h"
#include "init/schemes/residual.h"
#include "io/model_io.h"
#include "io/quantize.h"
#include "io/tensor_codec.h"
#include "io/tensor_store.h"
#include "plan_options.h"

namespace reinit {

namespace {

std::string LayerContext(const proto::Layer& layer) {
  return "layer '" + layer.name() + "' (" + layer.op() + "), weight '" + layer.weight().name() +
         "'";
}

// Longest chain of layers through each layer node: layers up to and including it, plus layers
// after it.
std::unordered_map<int, int> LayerDepths(const GraphIndex& index, const std::vector<int>& order,
                                         const std::unordered_set<int>& layer_nodes) {
  const int n = index.node_count();
  std::vector<int> up(n, 0), down(n, 0);
  for (int i : order) {
    int best = 0;
    for (const auto& in : index.node(i).input()) {
      int p = in.empty() ? -1 : index.Producer(in);
      if (p >= 0) best = std::max(best, up[p]);
    }
    up[i] = best + (layer_nodes.count(i) ? 1 : 0);
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    int best = 0;
    for (const auto& out : index.node(*it).output()) {
      for (int c : index.Consumers(out)) best = std::max(best, down[c]);
    }
    down[*it] = best + (layer_nodes.count(*it) ? 1 : 0);
  }
  std::unordered_map<int, int> depth;
  for (int i : layer_nodes) depth[i] = up[i] + down[i] - 1;
  return depth;
}

// Fills gain/std/bound of `init` for the concrete scheme `name`.
Status Resolve(const std::string& name, const proto::Layer& layer, double gain,
               const proto::Plan& plan, proto::TensorInit* init) {
  auto scheme = FindScheme(name);
  if (!scheme.ok()) return scheme.status();
  SchemeInputs in;
  in.fan_in = init->fan_in() > 0 ? init->fan_in() : layer.fan_in();
  in.fan_out = init->fan_out() > 0 ? init->fan_out() : layer.fan_out();
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

// `name` is the tensor as the graph names it: a Constant node's output, whose value may carry
// another name of its own (spox keeps the torch name there).
void DescribeTensor(const std::string& name, const onnx::TensorProto& t, proto::TensorInit* init) {
  init->set_name(name);
  for (int64_t d : t.dims()) init->add_shape(d);
  init->set_data_type(DataTypeName(t.data_type()));
}

// "std 0.125", "bound 0.2", "gain 1.4" or "= 1": a tensor's drawing parameter, for notes.
std::string ParameterText(const proto::TensorInit& t) {
  char buf[64];
  if (t.scheme() == "orthogonal") {
    std::snprintf(buf, sizeof buf, "gain %.4g", t.gain());
  } else if (t.scheme() == "constant") {
    std::snprintf(buf, sizeof buf, "= %.4g", t.value());
  } else if (t.std() > 0) {
    std::snprintf(buf, sizeof buf, "std %.4g", t.std());
  } else if (t.bound() > 0) {
    std::snprintf(buf, sizeof buf, "bound %.4g", t.bound());
  } else {
    buf[0] = 0;
  }
  return buf;
}

bool Matches(const std::string& glob, const std::string& name) {
  return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
}

}  // namespace

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

namespace {

// Plans one layer at a time; one method per layer kind.
class Planner {
 public:
  Planner(const onnx::ModelProto& model, const PlanOptions& options, proto::Plan* plan)
      : model_(model), options_(options), plan_(plan) {}

  Status Run() {
    shapes_ = StaticShapes(model_);
    override_used_.assign(options_.overrides.size(), false);
    REINIT_RETURN_IF_ERROR(PlanGraph(model_.graph(), nullptr, ""));
    for (size_t i = 0; i < options_.overrides.size(); ++i) {
      if (!override_used_[i]) {
        plan_->add_warnings("--layer '" + options_.overrides[i].glob + "=" +
                            options_.overrides[i].scheme + "' matched no layer");
      }
    }
    return Status::Ok();
  }

 private:
  // Plans the layers of `graph`, then of the subgraphs its nodes hold (If branches, Loop and
  // Scan bodies), whose layer names are prefixed with "<node>/<attribute>/". A subgraph may
  // use the enclosing graphs' initializers; a weight used in several scopes is planned once.
  Status PlanGraph(const onnx::GraphProto& graph, const GraphIndex* outer,
                   const std::string& prefix) {
    const GraphIndex index(graph, outer);
    auto order = index.TopologicalOrder();
    if (!order.ok()) {
      return prefix.empty() ? order.status() : order.status().WithContext("subgraph " + prefix);
    }
    const GraphIndex* saved_index = index_;
    auto saved_nodes = std::move(layer_nodes_);
    auto saved_depths = std::move(depths_);
    index_ = &index;
    std::vector<Layer> layers = FindLayers(index, &owners_);
    layer_nodes_ = WalkBoundaries(layers);
    depths_ = LayerDepths(index, *order, layer_nodes_);
    const Structure structure = FindStructure(index, layers, *order);
    std::unordered_map<int, int> entry_of;  // layer node -> its index in the plan
    Status status;
    std::vector<Layer> loose;  // planned last: a subgraph or function body may own them
    for (Layer& found : layers) {
      if (found.node < 0) {
        loose.push_back(std::move(found));
        continue;
      }
      for (const auto* t : {&found.weight, &found.bias}) claimed_.insert(*t);
      for (const auto& p : found.params) claimed_.insert(p);
      found.name = prefix + found.name;
      if (!found.shared_owner.empty() && prefixed_owner_.count(found.shared_owner)) {
        found.shared_owner = prefixed_owner_[found.shared_owner];
      }
      if (found.skipped.empty()) prefixed_owner_[found.name.substr(prefix.size())] = found.name;
      status = PlanLayer(found);
      if (!status.ok()) break;
      entry_of[found.node] = plan_->layers_size() - 1;
    }
    if (status.ok()) ApplyStructure(index, structure, entry_of, prefix);
    for (int i = 0; status.ok() && i < graph.node_size(); ++i) {
      for (const auto& attr : graph.node(i).attribute()) {
        if (!attr.has_g()) continue;
        status = PlanGraph(attr.g(), &index, prefix + index.NodeName(i) + "/" + attr.name() + "/");
        if (!status.ok()) break;
      }
      // A call of a model-local function: its body, bound to this call's arguments.
      const onnx::FunctionProto* fn = LocalFunction(graph.node(i));
      if (status.ok() && fn && prefix.size() < 4096) {
        const onnx::GraphProto body = BindCall(*fn, graph.node(i));
        status = PlanGraph(body, &index, prefix + index.NodeName(i) + "/");
      }
    }
    for (Layer& found : loose) {
      if (!status.ok()) break;
      if (claimed_.count(found.weight)) continue;
      found.name = prefix + found.name;
      status = PlanLayer(found);
    }
    index_ = saved_index;
    layer_nodes_ = std::move(saved_nodes);
    depths_ = std::move(saved_depths);
    return status;
  }

 private:
  // The residual streams of this graph into the plan, each planned layer's place, and the
  // depth rule applied to the layers' draws.
  void ApplyStructure(const GraphIndex& index, const Structure& structure,
                      const std::unordered_map<int, int>& entry_of, const std::string& prefix) {
    ResidualInputs in;
    in.index = &index;
    in.structure = &structure;
    in.prefix = prefix;
    for (const auto& [node, entry] : entry_of) in.layer_of[node] = plan_->mutable_layers(entry);
    in.requested = options_.residual;
    in.scheme = options_.scheme;
    in.zero_init_residual = options_.zero_init_residual;
    ApplyResidual(in, plan_);
  }

  Status PlanLayer(const Layer& found) {
    proto::Layer* layer = plan_->add_layers();
    layer->set_name(found.name);
    layer->set_op(found.op);
    if (found.rule) layer->set_kind(KindName(KindOf(found.rule->layout)));
    if (!found.weight.empty()) layer->mutable_weight()->set_name(found.weight);
    for (size_t i = 0; i < found.params.size(); ++i) {
      proto::TensorInit* p = layer->add_params();
      p->set_name(found.params[i]);
      if (found.skipped.empty()) {
        DescribeTensor(found.params[i], Stored(found.params[i], ""), p);
        // A ConstantOfShape output (a stripped running mean, say) becomes an initializer too.
        if (generated_.count(found.params[i])) p->set_materialize("ConstantOfShape");
        if (i < found.param_views.size()) SetView(found.param_views[i], p);
      } else if (const auto* t = index_->ConstantTensor(found.params[i])) {
        DescribeTensor(found.params[i], *t, p);
      }
      p->set_role(i < found.param_roles.size() ? found.param_roles[i] : "parameter");
      p->set_scheme("keep");
    }
    if (!found.shared_owner.empty()) return NoteSharing(found, layer);
    if (!found.skipped.empty()) {
      // A --layer naming this very layer or weight asks for what cannot be done; a glob that
      // merely matches it does not.
      for (size_t i = 0; i < options_.overrides.size(); ++i) {
        const auto& o = options_.overrides[i];
        if (o.scheme != "keep" && (o.glob == found.name || o.glob == found.weight)) {
          return ModelError("--layer '" + o.glob + "=" + o.scheme + "': " + found.name + " (" +
                            found.op + ", " + found.weight +
                            ") cannot be initialized: " + found.skipped);
        }
      }
      layer->set_skipped(found.skipped);
      // A loose tensor that is a window: say so.
      if (const auto* t = found.node < 0 ? index_->ConstantTensor(found.weight) : nullptr) {
        if (auto fixed = FixedTensorKind(*t, found.weight, ShapeOf(*t), -1)) {
          layer->set_skipped("kept: fixed " + *fixed);
        }
      }
      return Status::Ok();
    }
    const onnx::TensorProto& weight = Stored(found.weight, found.weight_copy_of);
    DescribeTensor(found.weight, weight, layer->mutable_weight());
    layer->mutable_weight()->set_name(found.weight);
    layer->mutable_weight()->set_copy_of(found.weight_copy_of);
    if (generated_.count(found.weight)) layer->mutable_weight()->set_materialize("ConstantOfShape");
    if (const auto& dq = found.weight_view.dequantize) {
      layer->mutable_weight()->set_quant_scale(dq->scale);
      layer->mutable_weight()->set_quant_zero_point(dq->zero_point);
      layer->mutable_weight()->set_quant_axis(dq->axis);
    }
    REINIT_RETURN_IF_ERROR(CheckData(found.weight, weight).WithContext(LayerContext(*layer)));
    if (!found.bias.empty()) {
      const onnx::TensorProto& bias = Stored(found.bias, found.bias_copy_of);
      REINIT_RETURN_IF_ERROR(CheckData(found.bias, bias).WithContext(LayerContext(*layer)));
      DescribeTensor(found.bias, bias, layer->mutable_bias());
      layer->mutable_bias()->set_name(found.bias);
      layer->mutable_bias()->set_copy_of(found.bias_copy_of);
      if (generated_.count(found.bias)) layer->mutable_bias()->set_materialize("ConstantOfShape");
      layer->mutable_bias()->set_scheme(options_.keep_bias ? "keep" : "zero");
    }
    for (const auto& name : found.params) {
      REINIT_RETURN_IF_ERROR(CheckData(name, Stored(name, "")).WithContext(LayerContext(*layer)));
    }
    Status planned;
    switch (KindOf(found.rule->layout)) {
      case LayerKind::kNorm:
        planned = PlanNorm(found, layer);
        break;
      case LayerKind::kRecurrent:
        planned = PlanRecurrent(found, layer);
        break;
      default:
        planned = PlanWeight(found, layer);
        break;
    }
    REINIT_RETURN_IF_ERROR(planned);
    KeepSharedIfSame(layer->mutable_weight());
    if (layer->has_bias()) KeepSharedIfSame(layer->mutable_bias());
    return CheckTooLarge(found, *layer);
  }

  // A tensor apply would refuse to draw whole (--max-memory) is refused here, with apply's
  // reason, before anything is written: what a plan lists, apply carries out.
  Status CheckTooLarge(const Layer& found, const proto::Layer& layer) {
    if (options_.max_memory == 0 || !layer.skipped().empty()) return Status::Ok();
    std::vector<std::pair<const proto::TensorInit*, std::string>> tensors = {
        {&layer.weight(), found.weight_copy_of}};
    if (layer.has_bias()) tensors.push_back({&layer.bias(), found.bias_copy_of});
    for (const auto& p : layer.params()) tensors.push_back({&p, ""});
    for (const auto& [t, copy_of] : tensors) {
      Status s = CheckDrawable(*t, Stored(t->name(), copy_of), options_.max_memory);
      if (!s.ok()) return s.WithContext(LayerContext(layer) + ", tensor '" + t->name() + "'");
    }
    return Status::Ok();
  }

  // Records how the layer sees `t` (nothing when it sees the stored layout).
  static void SetView(const ConstantView& view, proto::TensorInit* t) {
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

  // A tensor merged with an equal-valued one by the exporter needs a copy of its own only when
  // it is drawn at random; zero, a constant or kept values may stay merged.
  static void KeepSharedIfSame(proto::TensorInit* t) {
    if (t->copy_of().empty()) return;
    const std::string& s = t->scheme();
    bool random = s != "zero" && s != "constant" && s != "keep";
    if (s == "per-block") {
      random = false;
      for (const auto& b : t->blocks()) {
        random |= b.scheme() != "zero" && b.scheme() != "constant" && b.scheme() != "keep";
      }
    }
    if (random) return;
    t->set_name(t->copy_of());
    t->clear_copy_of();
  }

  const onnx::FunctionProto* LocalFunction(const onnx::NodeProto& node) const {
    for (const auto& f : model_.functions()) {
      if (f.name() == node.op_type() && f.domain() == node.domain()) return &f;
    }
    return nullptr;
  }

  // A function's body as a graph for one call: its formal inputs renamed to the call's
  // arguments (so a weight passed in resolves to the caller's constant) and attribute
  // references replaced by the call's attribute values.
  static onnx::GraphProto BindCall(const onnx::FunctionProto& fn, const onnx::NodeProto& call) {
    std::unordered_map<std::string, std::string> rename;
    for (int k = 0; k < fn.input_size() && k < call.input_size(); ++k) {
      if (!call.input(k).empty()) rename[fn.input(k)] = call.input(k);
    }
    onnx::GraphProto body;
    body.set_name(fn.name());
    for (const auto& n : fn.node()) {
      onnx::NodeProto* copy = body.add_node();
      copy->CopyFrom(n);
      for (auto& in : *copy->mutable_input()) {
        if (auto it = rename.find(in); it != rename.end()) in = it->second;
      }
      auto* attrs = copy->mutable_attribute();
      for (int a = attrs->size() - 1; a >= 0; --a) {
        if (attrs->Get(a).ref_attr_name().empty()) continue;
        const onnx::AttributeProto* bound = FindAttribute(call, attrs->Get(a).ref_attr_name());
        if (bound) {
          const std::string name = attrs->Get(a).name();
          attrs->Mutable(a)->CopyFrom(*bound);
          attrs->Mutable(a)->set_name(name);
        } else {
          attrs->DeleteSubrange(a, 1);  // the op's default applies
        }
      }
    }
    for (int k = 0; k < fn.input_size(); ++k) {
      if (!rename.count(fn.input(k))) body.add_input()->set_name(fn.input(k));
    }
    for (const auto& out : fn.output()) body.add_output()->set_name(out);
    return body;
  }

  // A layer whose weight another layer initializes: what it would have been given is planned
  // aside and compared with what the owner gives, and both entries say so.
  Status NoteSharing(const Layer& found, proto::Layer* layer) {
    proto::Layer* owner = nullptr;
    for (auto& l : *plan_->mutable_layers()) {
      if (l.name() == found.shared_owner) owner = &l;
    }
    Layer alone = found;
    alone.skipped.clear();
    alone.shared_owner.clear();
    proto::Plan scratch;
    scratch.CopyFrom(*plan_);
    scratch.clear_layers();
    proto::Plan* real = plan_;
    plan_ = &scratch;
    Status s = PlanLayer(alone);
    plan_ = real;
    REINIT_RETURN_IF_ERROR(s);
    const proto::Layer& mine = scratch.layers(0);
    const std::string mine_text = mine.weight().scheme() + " " + ParameterText(mine.weight());
    layer->CopyFrom(mine);
    layer->set_skipped(found.skipped);
    if (owner == nullptr) return Status::Ok();
    owner->add_shared_with(found.name);
    const std::string owner_text = owner->weight().scheme() + " " + ParameterText(owner->weight());
    if (mine_text != owner_text) {
      const std::string note = "'" + found.name + "' (" + found.op + ") would get " + mine_text +
                               ", '" + owner->name() + "' (" + owner->op() + ") gets " +
                               owner_text + "; the weight is initialized once, by '" +
                               owner->name() + "'";
      owner->set_shared_note(owner->shared_note().empty() ? note
                                                          : owner->shared_note() + "; " + note);
      layer->set_shared_note(note);
    }
    return Status::Ok();
  }

  // The scheme asked for this layer: --scheme, then the --layer globs (a later match wins).
  std::string Requested(const Layer& found, std::string* reason) {
    std::string scheme = options_.scheme;
    *reason = "--scheme " + options_.scheme;
    for (size_t i = 0; i < options_.overrides.size(); ++i) {
      const auto& o = options_.overrides[i];
      if (Matches(o.glob, found.name) || Matches(o.glob, found.weight)) {
        scheme = o.scheme;
        *reason = "--layer " + o.glob + "=" + o.scheme;
        override_used_[i] = true;
      }
    }
    return scheme;
  }

  StatusOr<double> Gain(const std::string& kind, double param) {
    auto key = std::make_pair(kind, param);
    auto it = gain_cache_.find(key);
    if (it == gain_cache_.end()) {
      auto gain = GainFor(kind, param);
      if (!gain.ok()) return gain.status();
      it = gain_cache_.emplace(key, gain->gain).first;
    }
    return it->second;
  }

  // A layer tensor's stored data: its own, or, for a copy still to be made, the original's.
  const onnx::TensorProto& Stored(const std::string& name, const std::string& copy_of) {
    const std::string& n = copy_of.empty() ? name : copy_of;
    if (const auto* t = index_->ConstantTensor(n)) return *t;
    // A ConstantOfShape output: its description, kept alive here.
    auto& kept = generated_[n];
    if (!kept) kept = ResolveConstant(*index_, n)->generated;
    return *kept;
  }

  // The stored data must match the dims; a tensor still to be generated has none yet.
  Status CheckData(const std::string& name, const onnx::TensorProto& t) {
    // Deferred bytes had their length checked against the dims when loaded.
    if (generated_.count(name) || IsDeferred(t)) return Status::Ok();
    if (IsQuantizedType(t.data_type())) return ReadIntegers(t).status();
    return CheckStoredSize(t);
  }

  // The weight's shape as the layer sees it.
  std::vector<int64_t> ViewShape(const Layer& found) {
    if (!found.weight_parts.empty()) {
      // One [1, G·H, C] part per direction: the layer sees [D, G·H, C].
      auto shape = found.weight_parts[0].shape;
      shape[0] = static_cast<int64_t>(found.weight_parts.size());
      return shape;
    }
    if (!found.weight_view.shape.empty()) return found.weight_view.shape;
    return ShapeOf(Stored(found.weight, found.weight_copy_of));
  }

  StatusOr<Fans> LayerFans(const Layer& found, proto::Layer* layer) {
    const auto& node = index_->node(found.node);
    const auto shape = ViewShape(found);
    auto fans = ComputeFans(*found.rule, node, shape, options_.fan_convention);
    if (!fans.ok()) return fans.status().WithContext(LayerContext(*layer));
    if (auto it = shapes_.find(node.input(0)); it != shapes_.end() && it->second.size() > 1) {
      Status s = CheckInputChannels(*found.rule, node, shape, it->second[1]);
      if (!s.ok()) return s.WithContext(LayerContext(*layer));
    }
    layer->set_fan_in(fans->in);
    layer->set_fan_out(fans->out);
    layer->mutable_weight()->set_output_axis(fans->output_axis);
    SetView(found.weight_view, layer->mutable_weight());
    return fans;
  }

  // Dense, conv and embedding layers: one weight drawn as a whole.
  Status PlanWeight(const Layer& found, proto::Layer* layer) {
    layer->set_output(found.output);
    auto fans = LayerFans(found, layer);
    if (!fans.ok()) return fans.status();
    const LayerKind kind = KindOf(found.rule->layout);
    layer->mutable_weight()->set_role(kind == LayerKind::kEmbedding ? "table" : "weight");
    if (layer->has_bias()) layer->mutable_bias()->set_role("bias");
    if (kind != LayerKind::kEmbedding && KeepFixed(found, fans->output_axis, layer)) {
      return Status::Ok();
    }
    if (kind == LayerKind::kEmbedding) {
      layer->mutable_activation()->set_kind("linear");
      layer->mutable_activation()->add_path("an embedding lookup has no activation of its own");
    } else {
      layer->set_depth(depths_.at(found.node));
      *layer->mutable_activation() =
          DetectActivation(*index_, layer_nodes_, found.output, found.path);
    }
    const auto& act = layer->activation();
    auto gain = Gain(act.kind(), act.param());
    if (!gain.ok()) return gain.status().WithContext(LayerContext(*layer));
    std::string reason;
    std::string scheme = Requested(found, &reason);
    if (auto framework = FrameworkFor(scheme)) {
      const auto& node = index_->node(found.node);
      const auto shape = ViewShape(found);
      FrameworkDraw w = FrameworkWeight(*framework, *found.rule, node, shape);
      layer->set_reason(w.why);
      REINIT_RETURN_IF_ERROR(
          DrawAs(w, *layer, layer->mutable_weight()).WithContext(LayerContext(*layer)));
      if (!layer->has_bias() || options_.keep_bias) return Status::Ok();
      return DrawAs(FrameworkBias(*framework, *found.rule, node, shape), *layer,
                    layer->mutable_bias())
          .WithContext(LayerContext(*layer));
    }
    double weight_gain = *gain;
    if (auto draw = ChooseForLayer(scheme, act.kind(), kind, layer->depth())) {
      reason = std::move(draw->reason);
      scheme = std::move(draw->scheme);
      if (draw->unit_gain) weight_gain = 1;
      if (draw->lsuv) layer->mutable_lsuv();  // the LSUV stage scales it to unit variance
    }
    layer->set_reason(reason);
    return Resolve(scheme, *layer, weight_gain, *plan_, layer->mutable_weight())
        .WithContext(LayerContext(*layer));
  }

  // A weight that is a signal-processing constant (graph/fixed.h) is kept with its layer,
  // unless a --layer glob names the layer or the weight.
  bool KeepFixed(const Layer& found, int output_axis, proto::Layer* layer) {
    for (const auto& o : options_.overrides) {
      if (Matches(o.glob, found.name) || Matches(o.glob, found.weight)) return false;
    }
    const onnx::TensorProto& t = Stored(found.weight, found.weight_copy_of);
    const bool stored_layout = found.weight_view.steps.empty() && !generated_.count(found.weight);
    auto fixed =
        FixedTensorKind(t, found.weight, stored_layout ? ShapeOf(t) : std::vector<int64_t>{},
                        stored_layout ? output_axis : -1);
    if (!fixed) return false;
    layer->set_skipped("kept: fixed " + *fixed);
    layer->mutable_weight()->set_scheme("keep");
    if (layer->has_bias()) layer->mutable_bias()->set_scheme("keep");
    return true;
  }

  // Normalization: scale 1, shift 0, running mean 0, running variance 1 (--norms reset), or
  // kept; a --layer glob may set the scale to zero (zero-γ residual branches).
  Status PlanNorm(const Layer& found, proto::Layer* layer) {
    layer->set_output(found.output);
    layer->mutable_activation()->set_kind("linear");
    layer->mutable_activation()->add_path("a normalization is not followed up");
    std::string reason;
    std::string scheme = Requested(found, &reason);
    const bool keep = options_.keep_norms;
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

  // Draws `t` as a framework default says: its scheme, its own fans, gain 1.
  Status DrawAs(const FrameworkDraw& d, const proto::Layer& layer, proto::TensorInit* t) {
    t->set_fan_in(d.fan_in);
    t->set_fan_out(d.fan_out);
    t->set_std(d.std);
    t->set_bound(d.bound);
    return Resolve(d.scheme, layer, 1.0, *plan_, t);
  }

  // LSTM/GRU/RNN. Under auto and the named schemes every (direction, gate) block of W and R is
  // drawn on its own — input blocks with fan_in = input size and the gate's gain, recurrent
  // blocks orthogonal under auto — biases zero but the LSTM forget gate's input bias
  // (--forget-bias), peepholes zero. The framework defaults draw as their framework does.
  Status PlanRecurrent(const Layer& found, proto::Layer* layer) {
    auto fans = LayerFans(found, layer);
    if (!fans.ok()) return fans.status();
    const auto& node = index_->node(found.node);
    const auto w_shape = ViewShape(found);
    const int64_t dirs = w_shape[0], input = w_shape[2];
    const int64_t per_dir = GateCount(found.rule->layout);
    const int64_t hidden = w_shape[1] / per_dir;
    auto gates = RecurrentGates(node, found.rule->layout, dirs);
    if (!gates.ok()) return gates.status().WithContext(LayerContext(*layer));
    layer->set_depth(depths_.at(found.node));
    layer->set_output(found.output);
    *layer->mutable_activation() =
        DetectActivation(*index_, layer_nodes_, found.output, found.path);
    std::string reason;
    const std::string requested = Requested(found, &reason);
    const auto framework = FrameworkFor(requested);
    const bool torch = options_.fan_convention == FanConvention::kTorch;
    const double block_out = torch ? static_cast<double>(per_dir * hidden) : hidden;

    // What each part gets, and at which grain.
    RecurrentDraws draws;
    if (framework) {
      draws = FrameworkRecurrent(*framework, input, hidden, per_dir);
    } else {
      draws.grain = RecurrentGrain::kGate;
      const bool is_auto = ChoosesPerLayer(requested);
      AutoChoice in = ChooseAutoRecurrent(false), rec = ChooseAutoRecurrent(true);
      draws.input = {is_auto ? std::string(in.scheme) : requested,
                     double(input),
                     block_out,
                     0,
                     0,
                     is_auto ? in.reason : reason};
      draws.recurrence = {is_auto ? std::string(rec.scheme) : requested,
                          double(hidden),
                          block_out,
                          0,
                          0,
                          is_auto ? rec.reason : reason};
      draws.bias = {"zero", 0, 0, 0, 0, "bias 0"};
      draws.forget_bias = options_.forget_bias;
    }
    if (options_.forget_bias != 0) draws.forget_bias = options_.forget_bias;
    layer->set_reason(draws.input.why);

    // W (recurrence = false) or R (true), block by block at the chosen grain.
    // `only`: the tensor holds just that direction (a per-direction part), else all of them.
    auto plan_tensor = [&](proto::TensorInit* t, const FrameworkDraw& d, bool recurrence,
                           int64_t only) {
      const int64_t cols = recurrence ? hidden : input;
      if (draws.grain == RecurrentGrain::kTensor) return DrawAs(d, *layer, t);
      t->set_scheme("per-block");
      const int64_t rows = draws.grain == RecurrentGrain::kGate ? hidden : per_dir * hidden;
      for (const Gate& g : *gates) {
        if (draws.grain == RecurrentGrain::kDirection && g.index != 0) continue;
        int64_t d_index = g.direction == "reverse" && dirs == 2 ? 1 : 0;
        if (only >= 0) {
          if (d_index != only) continue;
          d_index = 0;
        }
        const int64_t gate = draws.grain == RecurrentGrain::kGate ? g.index : 0;
        proto::Block* b = t->add_blocks();
        b->set_name(draws.grain == RecurrentGrain::kGate ? g.direction + "." + g.name
                                                         : g.direction);
        b->set_offset((d_index * per_dir * hidden + gate * hidden) * cols);
        b->set_rows(rows);
        b->set_cols(cols);
        b->set_fan_in(d.fan_in);
        b->set_fan_out(d.fan_out);
        double gain = 1;
        if (!framework) {
          b->set_activation(g.activation);
          auto g_gain = Gain(g.activation, 0);
          if (!g_gain.ok()) return g_gain.status();
          // Recurrent orthogonal blocks keep gain 1: a larger gain compounds over time steps.
          gain = recurrence && d.scheme == "orthogonal" ? 1.0 : *g_gain;
        }
        proto::Layer view;  // Resolve reads fans from a layer
        view.set_fan_in(b->fan_in());
        view.set_fan_out(b->fan_out());
        proto::TensorInit drawn;
        drawn.set_std(d.std);
        drawn.set_bound(d.bound);
        REINIT_RETURN_IF_ERROR(Resolve(d.scheme, view, gain, *plan_, &drawn));
        b->set_scheme(drawn.scheme());
        b->set_gain(drawn.gain());
        b->set_std(drawn.std());
        b->set_bound(drawn.bound());
      }
      return Status::Ok();
    };
    layer->mutable_weight()->set_role("weight");
    const bool parts = !found.weight_parts.empty();
    REINIT_RETURN_IF_ERROR(plan_tensor(layer->mutable_weight(), draws.input, false, parts ? 0 : -1)
                               .WithContext(LayerContext(*layer)));
    int64_t weight_part = 0, recurrence_part = 0;
    for (auto& p : *layer->mutable_params()) {
      if (p.role() == "weight_part") {
        REINIT_RETURN_IF_ERROR(
            plan_tensor(&p, draws.input, false, ++weight_part).WithContext(LayerContext(*layer)));
      } else if (p.role() == "recurrence_part") {
        ++recurrence_part;
        REINIT_RETURN_IF_ERROR(plan_tensor(&p, draws.recurrence, true, recurrence_part)
                                   .WithContext(LayerContext(*layer)));
      } else if (p.role() == "recurrence") {
        REINIT_RETURN_IF_ERROR(
            plan_tensor(&p, draws.recurrence, true, found.recurrence_parts.empty() ? -1 : 0)
                .WithContext(LayerContext(*layer)));
      } else if (p.role() == "peephole") {
        p.set_scheme("zero");
      } else if (p.role() == "bias_part") {
        p.set_scheme(options_.keep_bias ? "keep" : "zero");
        if (draws.bias.scheme != "zero" || draws.forget_bias != 0) {
          plan_->add_warnings("layer '" + layer->name() + "': its bias is assembled from " +
                              "several tensors; they are " + p.scheme() +
                              " and the bias scheme and --forget-bias are not applied to '" +
                              p.name() + "'");
        }
      }
    }
    if (!layer->has_bias() || options_.keep_bias) return Status::Ok();
    proto::TensorInit* b = layer->mutable_bias();
    b->set_role("bias");
    REINIT_RETURN_IF_ERROR(DrawAs(draws.bias, *layer, b).WithContext(LayerContext(*layer)));
    if (found.rule->layout != WeightLayout::kLstm || draws.forget_bias == 0) return Status::Ok();
    // B [D, 8H] holds, per direction, input biases i, o, f, c then recurrent ones: the forget
    // gate's input bias carries the value (input + recurrent = forget bias); the rest is drawn
    // as the bias draw says, in blocks around it.
    const std::string rest = b->scheme();
    b->set_scheme("per-block");
    for (int64_t d = 0; d < dirs; ++d) {
      const std::string dir = dirs == 2 ? (d == 0 ? "forward" : "reverse") : (*gates)[0].direction;
      const int64_t base = d * 2 * per_dir * hidden;
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
            draws.forget_bias);
      block("c.input_and_recurrent", (kLstmForgetGate + 1) * hidden, 2 * per_dir * hidden, rest, 0);
    }
    return Status::Ok();
  }

  const onnx::ModelProto& model_;
  const PlanOptions& options_;
  proto::Plan* plan_;
  const GraphIndex* index_ = nullptr;  // the graph being planned
  std::unordered_map<std::string, std::vector<int64_t>> shapes_;
  std::unordered_map<std::string, std::string> owners_;  // weight -> owning layer
  std::unordered_set<std::string> claimed_;  // every tensor a layer (in any scope) names
  std::unordered_map<std::string, std::shared_ptr<const onnx::TensorProto>> generated_;
  std::unordered_map<std::string, std::string> prefixed_owner_;  // layer name -> with prefix
  std::unordered_set<int> layer_nodes_;
  std::unordered_map<int, int> depths_;
  std::vector<bool> override_used_;
  std::map<std::pair<std::string, double>, double> gain_cache_;
};

}  // namespace

StatusOr<proto::Plan> MakePlan(const onnx::ModelProto& model, const PlanOptions& options) {
  REINIT_RETURN_IF_ERROR(CheckPlanOptions(options));
  proto::Plan plan;
  WritePlanOptions(options, &plan);
  plan.set_tool_version(REINIT_VERSION);
  if (!model.has_graph()) return ModelError("the model has no graph");
  Planner planner(model, options, &plan);
  REINIT_RETURN_IF_ERROR(planner.Run());
  return plan;
}

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
  PlanOptions options;
  if (auto s = ReadPlanOptions(edited, &options); !s.ok()) {
    return ModelError(where + ": " + std::string(s.message()));
  }
  options.max_memory = max_memory;
  if (auto s = CheckResidual(options.residual); !s.ok()) {
    return ModelError(where + ": " + std::string(s.message()));
  }
  auto fresh_or = MakePlan(model, options);
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
    proto::Layer* layer = it->second;
    const std::string ctx = where + ": layer '" + want.name() + "'";
    if (!want.weight().name().empty() && want.weight().name() != layer->weight().name()) {
      return ModelError(ctx + ": weight '" + want.weight().name() +
                        "' is not the layer's weight '" + layer->weight().name() + "'");
    }
    if (want.fan_in() > 0) layer->set_fan_in(want.fan_in());
    if (want.fan_out() > 0) layer->set_fan_out(want.fan_out());
    const LayerKind kind = layer->kind() == "embedding"   ? LayerKind::kEmbedding
                           : layer->kind() == "conv"      ? LayerKind::kConv
                           : layer->kind() == "norm"      ? LayerKind::kNorm
                           : layer->kind() == "recurrent" ? LayerKind::kRecurrent
                                                          : LayerKind::kDense;
    auto reconcile = [&](const proto::TensorInit& w, proto::TensorInit* t,
                         bool is_weight) -> Status {
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
      if (!t->blocks().empty() || !w.blocks().empty()) {
        // Per-block tensors: blocks are matched by name; each may change scheme or gain.
        if (scheme != "per-block" && !scheme.empty()) {
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
          proto::Layer view;
          view.set_fan_in(wb.fan_in() > 0 ? wb.fan_in() : tb->fan_in());
          view.set_fan_out(wb.fan_out() > 0 ? wb.fan_out() : tb->fan_out());
          proto::TensorInit drawn;
          drawn.set_std(wb.std());
          drawn.set_bound(wb.bound());
          REINIT_RETURN_IF_ERROR(
              Resolve(wb.scheme(), view, wb.gain() > 0 ? wb.gain() : tb->gain(), plan, &drawn)
                  .WithContext("block '" + wb.name() + "'"));
          tb->set_scheme(drawn.scheme());
          tb->set_gain(drawn.gain());
          tb->set_std(drawn.std());
          tb->set_bound(drawn.bound());
        }
        return Status::Ok();
      }
      if (scheme == "constant") {
        t->set_scheme("constant");
        t->set_value(w.value());
        return Status::Ok();
      }
      if (!is_weight && scheme != "zero") {
        return ModelError("'" + t->name() + "' takes zero, constant or keep, not '" + scheme + "'");
      }
      std::string concrete = scheme;
      if (scheme == "auto") {
        concrete = std::string(ChooseAuto(layer->activation().kind(), kind, layer->depth()).scheme);
      }
      if (kind == LayerKind::kNorm && concrete != "zero") {
        return ModelError("a normalization's scale takes zero, constant or keep, not '" + concrete +
                          "'");
      }
      t->set_std(w.std());
      t->set_bound(w.bound());
      t->set_scale(w.scale());  // the plan's residual factor, as written
      const double gain = w.gain() > 0 ? w.gain() : t->gain();
      return Resolve(concrete, *layer, gain, plan, t);
    };
    const auto& wanted = want.weight().scheme();
    if (!layer->skipped().empty()) {
      if (!wanted.empty() && wanted != "keep" && wanted != layer->weight().scheme()) {
        return ModelError(ctx + ": cannot be initialized: " + layer->skipped());
      }
      continue;
    }
    Status s = reconcile(want.weight(), layer->mutable_weight(), true);
    if (s.ok() && want.has_bias()) {
      if (!layer->has_bias()) return ModelError(ctx + ": the layer has no bias");
      s = reconcile(want.bias(), layer->mutable_bias(), false);
    }
    for (const auto& wp : want.params()) {
      if (!s.ok()) break;
      proto::TensorInit* tp = nullptr;
      for (auto& p : *layer->mutable_params()) {
        if (p.name() == wp.name()) tp = &p;
      }
      if (!tp) return ModelError(ctx + ": the layer has no parameter '" + wp.name() + "'");
      s = reconcile(wp, tp, tp->role() == "recurrence");
    }
    if (!s.ok()) return Status(StatusCode::kModel, s.message()).WithContext(ctx);
    if (!wanted.empty()) layer->set_reason("--plan: " + wanted);
  }
  // Layers the plan does not name stay as they are.
  for (auto& layer : *plan.mutable_layers()) {
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
  return plan;
}

}  // namespace reinit

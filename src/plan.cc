#include "plan.h"

#include <fnmatch.h>
#include <google/protobuf/util/json_util.h>

#include <map>
#include <unordered_map>
#include <unordered_set>

#include "activation.h"
#include "gains.h"
#include "graph_index.h"
#include "layers.h"
#include "model_io.h"
#include "schemes/auto_policy.h"
#include "tensor_codec.h"

namespace reinit {

namespace {

std::string LayerContext(const proto::Layer& layer) {
  return "layer '" + layer.name() + "' (" + layer.op() + "), weight '" + layer.weight().name() +
         "'";
}

const char* FanModeName(FanMode m) { return m == FanMode::kFanOut ? "fan_out" : "fan_in"; }

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
  in.fan_in = layer.fan_in();
  in.fan_out = layer.fan_out();
  in.gain = gain;
  in.he_mode = plan.mode() == "fan_out" ? FanMode::kFanOut : FanMode::kFanIn;
  in.naive_std = init->std() > 0 && name == "normal" ? init->std() : plan.std();
  in.naive_range = init->bound() > 0 && name == "uniform" ? init->bound() : plan.range();
  auto params = ComputeParameters(**scheme, in);
  if (!params.ok()) return params.status();
  init->set_scheme(name);
  init->set_gain(params->gain);
  init->set_std(params->std);
  init->set_bound(params->bound);
  return Status::Ok();
}

void DescribeTensor(const onnx::TensorProto& t, proto::TensorInit* init) {
  init->set_name(t.name());
  for (int64_t d : t.dims()) init->add_shape(d);
  init->set_data_type(DataTypeName(t.data_type()));
}

bool Matches(const std::string& glob, const std::string& name) {
  return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
}

}  // namespace

Status CheckPlanOptions(const PlanOptions& options) {
  if (!(options.naive_std > 0)) return UsageError("--std must be positive");
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
  plan.set_mode(FanModeName(options.he_mode));
  plan.set_bias(options.keep_bias ? "keep" : "zero");
  plan.set_std(options.naive_std);
  plan.set_range(options.naive_range);
  plan.set_tool_version(REINIT_VERSION);
  if (!model.has_graph()) return ModelError("the model has no graph");

  const GraphIndex index(model.graph());
  const auto shapes = StaticShapes(model);
  auto order = index.TopologicalOrder();
  if (!order.ok()) return order.status();
  const std::vector<Layer> layers = FindLayers(index);
  std::unordered_set<int> layer_nodes;
  for (const auto& l : layers) {
    if (l.node >= 0 && l.rule) layer_nodes.insert(l.node);
  }
  const auto depths = LayerDepths(index, *order, layer_nodes);
  std::vector<bool> override_used(options.overrides.size(), false);
  std::map<std::pair<std::string, double>, GainInfo> gain_cache;

  for (const Layer& found : layers) {
    proto::Layer* layer = plan.add_layers();
    layer->set_name(found.name);
    layer->set_op(found.op);
    if (!found.weight.empty()) layer->mutable_weight()->set_name(found.weight);
    for (const auto& name : found.params) {
      proto::TensorInit* p = layer->add_params();
      DescribeTensor(*index.Initializer(name), p);
      p->set_scheme("keep");
    }
    if (!found.skipped.empty()) {
      layer->set_skipped(found.skipped);
      continue;
    }
    const onnx::TensorProto& weight = *index.Initializer(found.weight);
    DescribeTensor(weight, layer->mutable_weight());
    if (Status s = CheckStoredSize(weight); !s.ok()) return s.WithContext(LayerContext(*layer));
    const auto& node = index.node(found.node);
    auto fans = ComputeFans(*found.rule, node, ShapeOf(weight), options.fan_convention);
    if (!fans.ok()) return fans.status().WithContext(LayerContext(*layer));
    if (auto it = shapes.find(node.input(0)); it != shapes.end() && it->second.size() > 1) {
      Status s = CheckInputChannels(*found.rule, node, ShapeOf(weight), it->second[1]);
      if (!s.ok()) return s.WithContext(LayerContext(*layer));
    }
    layer->set_fan_in(fans->in);
    layer->set_fan_out(fans->out);
    layer->mutable_weight()->set_output_axis(fans->output_axis);
    layer->set_depth(depths.at(found.node));
    *layer->mutable_activation() = DetectActivation(index, layer_nodes, found.output, found.path);

    const auto& act = layer->activation();
    auto key = std::make_pair(act.kind(), act.param());
    auto cached = gain_cache.find(key);
    if (cached == gain_cache.end()) {
      auto gain = GainFor(act.kind(), act.param());
      if (!gain.ok()) return gain.status().WithContext(LayerContext(*layer));
      cached = gain_cache.emplace(key, *gain).first;
    }
    const double gain = cached->second.gain;

    std::string scheme = options.scheme;
    std::string reason = "--scheme " + options.scheme;
    for (size_t i = 0; i < options.overrides.size(); ++i) {
      const auto& o = options.overrides[i];
      if (Matches(o.glob, found.name) || Matches(o.glob, found.weight)) {
        scheme = o.scheme;
        reason = "--layer " + o.glob + "=" + o.scheme;
        override_used[i] = true;
      }
    }
    if (scheme == "auto") {
      const bool dense = found.rule->layout == WeightLayout::kGemm ||
                         found.rule->layout == WeightLayout::kMatMulA ||
                         found.rule->layout == WeightLayout::kMatMulB;
      AutoChoice choice = ChooseAuto(act.kind(), dense, layer->depth());
      scheme = std::string(choice.scheme);
      reason = choice.reason;
    }
    layer->set_reason(reason);
    if (Status s = Resolve(scheme, *layer, gain, plan, layer->mutable_weight()); !s.ok()) {
      return s.WithContext(LayerContext(*layer));
    }
    if (!found.bias.empty()) {
      const onnx::TensorProto& bias = *index.Initializer(found.bias);
      if (Status s = CheckStoredSize(bias); !s.ok()) return s.WithContext(LayerContext(*layer));
      DescribeTensor(bias, layer->mutable_bias());
      layer->mutable_bias()->set_scheme(options.keep_bias ? "keep" : "zero");
    }
  }
  for (size_t i = 0; i < options.overrides.size(); ++i) {
    if (!override_used[i]) {
      plan.add_warnings("--layer '" + options.overrides[i].glob + "=" +
                        options.overrides[i].scheme + "' matched no layer");
    }
  }
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
                               const onnx::ModelProto& model) {
  const std::string where = "plan '" + plan_path + "'";
  proto::Plan edited;
  auto parsed = google::protobuf::util::JsonStringToMessage(json, &edited);
  if (!parsed.ok()) {
    return ModelError(where + ": not a reinit plan: " + std::string(parsed.message()));
  }
  PlanOptions options;
  options.seed = edited.seed();
  if (edited.fan_convention() == "torch")
    options.fan_convention = FanConvention::kTorch;
  else if (!edited.fan_convention().empty() && edited.fan_convention() != "onnx")
    return ModelError(where + ": fanConvention must be 'onnx' or 'torch', not '" +
                      edited.fan_convention() + "'");
  if (edited.mode() == "fan_out")
    options.he_mode = FanMode::kFanOut;
  else if (!edited.mode().empty() && edited.mode() != "fan_in")
    return ModelError(where + ": mode must be 'fan_in' or 'fan_out', not '" + edited.mode() + "'");
  if (edited.std() > 0) options.naive_std = edited.std();
  if (edited.range() > 0) options.naive_range = edited.range();
  options.keep_bias = edited.bias() == "keep";
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
    const std::string& scheme = want.weight().scheme();
    if (!layer->skipped().empty()) {
      if (!scheme.empty() && scheme != "keep") {
        return ModelError(ctx + ": cannot be initialized: " + layer->skipped());
      }
      continue;
    }
    if (want.fan_in() > 0) layer->set_fan_in(want.fan_in());
    if (want.fan_out() > 0) layer->set_fan_out(want.fan_out());
    const double gain = want.weight().gain() > 0 ? want.weight().gain() : layer->weight().gain();
    if (scheme == "keep") {
      layer->mutable_weight()->set_scheme("keep");
      layer->set_reason("--plan: keep");
    } else if (!scheme.empty()) {
      std::string concrete = scheme;
      std::string reason = "--plan: " + scheme;
      if (scheme == "auto") {
        const bool dense = layer->op() == "Gemm" || layer->op() == "MatMul";
        AutoChoice choice = ChooseAuto(layer->activation().kind(), dense, layer->depth());
        concrete = std::string(choice.scheme);
        reason = "--plan: " + choice.reason;
      }
      proto::TensorInit* w = layer->mutable_weight();
      w->set_std(want.weight().std());
      w->set_bound(want.weight().bound());
      if (Status s = Resolve(concrete, *layer, gain, plan, w); !s.ok()) {
        return Status(StatusCode::kModel, s.message()).WithContext(ctx);
      }
      layer->set_reason(reason);
    }
    if (want.has_bias() && !want.bias().scheme().empty()) {
      const std::string& b = want.bias().scheme();
      if (!layer->has_bias()) return ModelError(ctx + ": the layer has no bias");
      if (b != "zero" && b != "keep") {
        return ModelError(ctx + ": bias scheme must be 'zero' or 'keep', not '" + b + "'");
      }
      layer->mutable_bias()->set_scheme(b);
    }
  }
  // Layers the plan does not name stay as they are.
  for (auto& layer : *plan.mutable_layers()) {
    if (named.count(layer.name()) || !layer.skipped().empty()) continue;
    layer.mutable_weight()->set_scheme("keep");
    if (layer.has_bias()) layer.mutable_bias()->set_scheme("keep");
    layer.set_reason("not in the plan: kept");
  }
  return plan;
}

}  // namespace reinit

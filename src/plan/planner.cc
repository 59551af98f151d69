#include "plan/planner.h"

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "graph/function_call.h"
#include "graph/graph_index.h"
#include "graph/layers.h"
#include "graph/normalization.h"
#include "graph/structure.h"
#include "io/minifloat.h"
#include "io/model_io.h"
#include "plan/layer_plan.h"
#include "plan/residual.h"
#include "plan/sharing.h"

namespace reinit {

namespace {

// A FLOAT8 or FLOAT4E2M1 tensor drawn directly (no DequantizeLinear scale) whose draw is so small
// that most values round to 0: more than half do when std < m / 1.349, m the format's smallest
// positive value (|z| < 0.674 for half of a standard normal; m / 2 rounds to 0). Said, not
// silent: a FLOAT4E2M1 weight holds only 0, ±0.5 ... ±6.
std::string Short(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::optional<std::string> MostlyZero(const proto::TensorInit& t) {
  onnx::TensorProto::DataType type;
  if (!t.quant_scale().empty() || !onnx::TensorProto::DataType_Parse(t.data_type(), &type)) {
    return std::nullopt;
  }
  const MinifloatFormat* format = FindMinifloat(type);
  if (!format) return std::nullopt;
  const double std = t.std() > 0 ? t.std() : t.bound() / std::sqrt(3.0);
  const double smallest = DecodeMinifloat(*format, 1);
  if (std <= 0 || std >= smallest / 1.349) return std::nullopt;
  return "'" + t.name() + "' is " + t.data_type() + " with no scale: a draw of std " + Short(std) +
         " comes out mostly 0 (its smallest positive value is " + Short(smallest) + ")";
}

void WarnMostlyZero(proto::Plan* plan) {
  for (const proto::Layer& layer : plan->layers()) {
    std::vector<const proto::TensorInit*> tensors = {&layer.weight(), &layer.bias()};
    for (const auto& p : layer.params()) tensors.push_back(&p);
    for (const proto::TensorInit* t : tensors) {
      if (auto w = MostlyZero(*t)) plan->add_warnings(layer.name() + ": " + *w);
    }
  }
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

// One graph being planned: its index, the nodes where activation walks stop, each layer
// node's depth, and where its layer names start ("<node>/<attribute>/" in a subgraph).
struct GraphScope {
  GraphScope(const onnx::GraphProto& graph, const GraphIndex* outer, std::string name_prefix)
      : index(graph, outer), prefix(std::move(name_prefix)) {}
  GraphIndex index;
  std::string prefix;
  std::unordered_set<int> layer_nodes;
  std::unordered_map<int, int> depths;
  std::unordered_map<int, int> entry_of;  // layer node -> its index in the plan
};

// Plans scope by scope; what crosses scopes (ownership, claimed tensors, caches) is kept here.
class Planner {
 public:
  Planner(const onnx::ModelProto& model, const PlanOptions& options, proto::Plan* plan)
      : model_(model), options_(options), plan_(plan) {}

  Status Run() {
    shapes_ = StaticShapes(model_);
    caches_.override_used.assign(options_.overrides.size(), false);
    REINIT_RETURN_IF_ERROR(PlanGraph(model_.graph(), nullptr, ""));
    for (size_t i = 0; i < options_.overrides.size(); ++i) {
      if (!caches_.override_used[i]) {
        plan_->add_warnings("--layer '" + options_.overrides[i].glob + "=" +
                            options_.overrides[i].scheme + "' matched no layer");
      }
    }
    WarnMostlyZero(plan_);
    return Status::Ok();
  }

 private:
  // Plans the layers of `graph`, then of the subgraphs its nodes hold (If branches, Loop and
  // Scan bodies), whose layer names are prefixed with "<node>/<attribute>/". A subgraph may
  // use the enclosing graphs' initializers; a weight used in several scopes is planned once.
  Status PlanGraph(const onnx::GraphProto& graph, const GraphIndex* outer,
                   const std::string& prefix) {
    GraphScope scope(graph, outer, prefix);
    auto order = scope.index.TopologicalOrder();
    if (!order.ok()) {
      return prefix.empty() ? order.status() : order.status().WithContext("subgraph " + prefix);
    }
    // (Shapes are inferred for the main graph only.)
    const Normalizations norms = FindNormalizations(scope.index, outer ? nullptr : &shapes_);
    std::vector<Layer> layers = FindLayers(scope.index, &owners_, &norms);
    scope.layer_nodes = WalkBoundaries(layers);
    scope.depths = LayerDepths(scope.index, *order, scope.layer_nodes);
    const Structure structure = FindStructure(scope.index, layers, *order, &norms);
    std::vector<Layer> loose;  // planned last: a subgraph or function body may own them
    Status status = PlanNodeLayers(&scope, &layers, &loose);
    if (status.ok()) ApplyStructure(scope, structure);
    if (status.ok()) status = PlanInnerGraphs(graph, scope);
    for (Layer& found : loose) {
      if (!status.ok()) break;
      if (claimed_.count(found.weight)) continue;
      found.name = prefix + found.name;
      status = AddLayer(found, scope);
    }
    return status;
  }

  // The layers of the scope's nodes, in node order; loose tensors are set aside.
  Status PlanNodeLayers(GraphScope* scope, std::vector<Layer>* layers, std::vector<Layer>* loose) {
    const std::string& prefix = scope->prefix;
    for (Layer& found : *layers) {
      if (found.node < 0) {
        loose->push_back(std::move(found));
        continue;
      }
      for (const auto* t : {&found.weight, &found.bias}) claimed_.insert(*t);
      for (const auto& p : found.params) claimed_.insert(p.name);
      found.name = prefix + found.name;
      if (!found.shared_owner.empty() && prefixed_owner_.count(found.shared_owner)) {
        found.shared_owner = prefixed_owner_[found.shared_owner];
      }
      if (found.skipped.empty()) prefixed_owner_[found.name.substr(prefix.size())] = found.name;
      REINIT_RETURN_IF_ERROR(AddLayer(found, *scope));
      scope->entry_of[found.node] = plan_->layers_size() - 1;
    }
    return Status::Ok();
  }

  // The subgraphs the scope's nodes hold, and the bodies of the model-local functions they
  // call, each bound to its call's arguments.
  Status PlanInnerGraphs(const onnx::GraphProto& graph, const GraphScope& scope) {
    const GraphIndex& index = scope.index;
    for (int i = 0; i < graph.node_size(); ++i) {
      for (const auto& attr : graph.node(i).attribute()) {
        if (!attr.has_g()) continue;
        REINIT_RETURN_IF_ERROR(PlanGraph(
            attr.g(), &index, scope.prefix + index.NodeName(i) + "/" + attr.name() + "/"));
      }
      const onnx::FunctionProto* fn = LocalFunction(model_, graph.node(i));
      if (fn && scope.prefix.size() < 4096) {
        const onnx::GraphProto body = BindCall(*fn, graph.node(i));
        REINIT_RETURN_IF_ERROR(PlanGraph(body, &index, scope.prefix + index.NodeName(i) + "/"));
      }
    }
    return Status::Ok();
  }

  // Plans one layer of the scope (aside, for one sharing another's weight) into the plan.
  Status AddLayer(const Layer& found, const GraphScope& scope) {
    PlanContext ctx;
    ctx.options = &options_;
    ctx.settings = plan_;
    ctx.index = &scope.index;
    ctx.layer_nodes = &scope.layer_nodes;
    ctx.depths = &scope.depths;
    ctx.shapes = &shapes_;
    ctx.caches = &caches_;
    ctx.warnings = plan_->mutable_warnings();
    auto layer = found.shared_owner.empty() ? PlanLayer(found, ctx) : PlanShared(found, ctx, plan_);
    if (!layer.ok()) return layer.status();
    *plan_->add_layers() = std::move(layer).value();
    return Status::Ok();
  }

  // The residual streams of this graph into the plan, each planned layer's place, and the
  // depth rule applied to the layers' draws.
  void ApplyStructure(const GraphScope& scope, const Structure& structure) {
    ResidualInputs in;
    in.index = &scope.index;
    in.structure = &structure;
    in.prefix = scope.prefix;
    for (const auto& [node, entry] : scope.entry_of) {
      in.layer_of[node] = plan_->mutable_layers(entry);
    }
    in.requested = options_.residual;
    in.scheme = options_.scheme;
    in.zero_init_residual = options_.zero_init_residual;
    ApplyResidual(in, plan_);
  }

  const onnx::ModelProto& model_;
  const PlanOptions& options_;
  proto::Plan* plan_;
  std::unordered_map<std::string, std::vector<int64_t>> shapes_;
  std::unordered_map<std::string, std::string> owners_;  // weight -> owning layer
  std::unordered_set<std::string> claimed_;  // every tensor a layer (in any scope) names
  std::unordered_map<std::string, std::string> prefixed_owner_;  // layer name -> with prefix
  PlanCaches caches_;
};

}  // namespace

Status PlanModel(const onnx::ModelProto& model, const PlanOptions& options, proto::Plan* plan) {
  Planner planner(model, options, plan);
  return planner.Run();
}

}  // namespace reinit

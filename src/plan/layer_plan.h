// Planning of one layer: a layer FindLayers found (graph/layers.h) and the context it is
// planned in — the options, the graph it is in, the shapes, depths and activation boundaries —
// to its entry in the Plan. Dense, conv and embedding layers and normalizations are planned
// here, recurrent layers in recurrent_plan.h. The planning reads the plan being built only
// through the context, so sharing (sharing.h) can plan a layer a second time, aside.
#pragma once

#include <google/protobuf/repeated_field.h>
#include <onnx/onnx_pb.h>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "graph/fans.h"
#include "graph/graph_index.h"
#include "graph/layers.h"
#include "plan.pb.h"
#include "plan/plan.h"
#include "status.h"

namespace reinit {

// What every layer of a model shares while it is planned: caches, and which --layer globs
// matched.
struct PlanCaches {
  // ConstantOfShape outputs' descriptions, by tensor name (also: which tensors are generated).
  std::unordered_map<std::string, std::shared_ptr<const onnx::TensorProto>> generated;
  std::map<std::pair<std::string, double>, double> gains;  // (activation, param) -> gain
  std::vector<bool> override_used;                         // one per --layer glob
};

// What one layer is planned in. The scope fields describe the graph the layer is in.
struct PlanContext {
  const PlanOptions* options = nullptr;
  const proto::Plan* settings = nullptr;  // the plan's std, range and mode, for Resolve
  const GraphIndex* index = nullptr;      // the graph being planned
  const std::unordered_set<int>* layer_nodes = nullptr;  // where activation walks stop
  const std::unordered_map<int, int>* depths = nullptr;  // layer node -> depth
  const std::unordered_map<std::string, std::vector<int64_t>>* shapes = nullptr;
  PlanCaches* caches = nullptr;
  // Where the layer's warnings go: the plan's, or a list set aside.
  google::protobuf::RepeatedPtrField<std::string>* warnings = nullptr;
};

// The layer's entry in the plan (a layer sharing another's weight: sharing.h).
// Errors name the layer and the tensor.
StatusOr<proto::Layer> PlanLayer(const Layer& found, const PlanContext& ctx);

// "layer 'conv1' (Conv), weight 'w'": the context errors are given.
std::string LayerContext(const proto::Layer& layer);

// A layer tensor's stored data: its own, or, for a copy still to be made, the original's.
const onnx::TensorProto& Stored(const PlanContext& ctx, const std::string& name,
                                const std::string& copy_of);
bool IsGenerated(const PlanContext& ctx, const std::string& name);

// The scheme asked for this layer: --scheme, then the --layer globs (a later match wins).
std::string Requested(const PlanContext& ctx, const Layer& found, std::string* reason);

// The gain of an activation (plan/gains.h), computed once per (kind, param).
StatusOr<double> CachedGain(const PlanContext& ctx, const std::string& kind, double param);

// The layer's fans, set on `layer` (and the weight's output axis and view).
StatusOr<Fans> LayerFans(const PlanContext& ctx, const Layer& found, proto::Layer* layer);

// The weight's shape as the layer sees it.
std::vector<int64_t> ViewShape(const PlanContext& ctx, const Layer& found);

// Records how the layer sees `t` (nothing when it sees the stored layout).
void SetView(const ConstantView& view, proto::TensorInit* t);

}  // namespace reinit

#include "graph/graph_index.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "graph/op_traits.h"
#include "io/tensor_codec.h"

namespace reinit {

GraphIndex::GraphIndex(const onnx::GraphProto& graph, const GraphIndex* outer)
    : graph_(graph), outer_(outer) {
  for (const auto& init : graph.initializer()) initializers_.emplace(init.name(), &init);
  for (int i = 0; i < graph.node_size(); ++i) {
    const auto& node = graph.node(i);
    for (const auto& out : node.output()) {
      if (!out.empty()) producers_.emplace(out, i);
    }
    for (const auto& in : node.input()) {
      if (in.empty()) continue;
      auto& list = consumers_[in];
      if (list.empty() || list.back() != i) list.push_back(i);
    }
  }
  for (const auto& out : graph.output()) graph_outputs_.insert(out.name());
}

const onnx::TensorProto* GraphIndex::Initializer(std::string_view name) const {
  auto it = initializers_.find(std::string(name));
  if (it != initializers_.end()) return it->second;
  // A name produced in this graph shadows the enclosing scopes.
  if (outer_ == nullptr || producers_.count(std::string(name))) return nullptr;
  return outer_->Initializer(name);
}

bool GraphIndex::Defines(const std::string& name) const {
  if (initializers_.count(name) || producers_.count(name)) return true;
  for (const auto& in : graph_.input()) {
    if (in.name() == name) return true;
  }
  return outer_ != nullptr && outer_->Defines(name);
}

int GraphIndex::Producer(std::string_view tensor) const {
  auto it = producers_.find(std::string(tensor));
  return it == producers_.end() ? -1 : it->second;
}

const std::vector<int>& GraphIndex::Consumers(std::string_view tensor) const {
  static const std::vector<int> kNone;
  auto it = consumers_.find(std::string(tensor));
  return it == consumers_.end() ? kNone : it->second;
}

bool GraphIndex::IsGraphOutput(std::string_view tensor) const {
  return graph_outputs_.count(std::string(tensor)) > 0;
}

bool GraphIndex::IsConstant(std::string_view tensor) const {
  if (Initializer(tensor) != nullptr) return true;
  int p = Producer(tensor);
  if (p < 0) return outer_ != nullptr && outer_->IsConstant(tensor);
  return node(p).op_type() == "Constant";
}

namespace {

// Integer values from raw_data (little-endian) or the typed field, as doubles.
template <typename Int, typename Field>
std::optional<std::vector<double>> IntegerValues(const onnx::TensorProto& t, const Field& typed) {
  if (t.raw_data().empty()) return std::vector<double>(typed.begin(), typed.end());
  if (t.raw_data().size() % sizeof(Int) != 0) return std::nullopt;
  std::vector<double> out(t.raw_data().size() / sizeof(Int));
  for (size_t i = 0; i < out.size(); ++i) {
    Int v;
    std::memcpy(&v, t.raw_data().data() + sizeof(Int) * i, sizeof(Int));
    out[i] = static_cast<double>(v);
  }
  return out;
}

std::optional<std::vector<double>> TensorValues(const onnx::TensorProto& t) {
  if (IsSupportedFloatType(t.data_type())) {
    auto values = ReadValues(t);
    if (values.ok()) return std::move(values).value();
    return std::nullopt;
  }
  if (t.data_type() == onnx::TensorProto::INT64) return IntegerValues<int64_t>(t, t.int64_data());
  if (t.data_type() == onnx::TensorProto::INT32) return IntegerValues<int32_t>(t, t.int32_data());
  return std::nullopt;
}

}  // namespace

std::optional<std::vector<double>> GraphIndex::ConstantValues(std::string_view tensor) const {
  const auto& read = TensorValues;
  if (const auto* init = Initializer(tensor)) return read(*init);
  int p = Producer(tensor);
  if (p < 0 && outer_ != nullptr) return outer_->ConstantValues(tensor);
  if (p < 0 || node(p).op_type() != "Constant") return std::nullopt;
  for (const auto& attr : node(p).attribute()) {
    if (attr.name() == "value") return read(attr.t());
    if (attr.name() == "value_float") return std::vector<double>{attr.f()};
    if (attr.name() == "value_floats")
      return std::vector<double>(attr.floats().begin(), attr.floats().end());
    if (attr.name() == "value_int") return std::vector<double>{static_cast<double>(attr.i())};
    if (attr.name() == "value_ints")
      return std::vector<double>(attr.ints().begin(), attr.ints().end());
  }
  return std::nullopt;
}

const onnx::TensorProto* GraphIndex::ConstantTensor(std::string_view name) const {
  if (const auto* init = Initializer(name)) return init;
  int p = Producer(name);
  if (p < 0) return outer_ ? outer_->ConstantTensor(name) : nullptr;
  if (node(p).op_type() != "Constant") return nullptr;
  const auto* value = FindAttribute(node(p), "value");
  return value && value->has_t() ? &value->t() : nullptr;
}

std::string GraphIndex::NodeName(int i) const {
  const auto& n = node(i);
  if (!n.name().empty()) return n.name();
  return n.op_type() + "_" + std::to_string(i);
}

std::string GraphIndex::Describe(int i) const {
  return node(i).op_type() + " '" + NodeName(i) + "'";
}

StatusOr<std::vector<int>> GraphIndex::TopologicalOrder() const {
  // Names the graph cannot resolve would make every later answer about it a guess.
  std::unordered_set<std::string> seen;
  for (const auto& init : graph_.initializer()) {
    if (!seen.insert(init.name()).second) {
      return ModelError("initializer '" + init.name() + "' is defined twice (duplicate name)");
    }
  }
  for (int i = 0; i < node_count(); ++i) {
    for (const auto& in : node(i).input()) {
      if (!in.empty() && !Defines(in)) {
        return ModelError(Describe(i) + ": input '" + in +
                          "' is not a graph input, an initializer or any node's output");
      }
    }
  }
  // Kahn's algorithm over node-to-node edges; inputs with no producer are sources.
  const int n = node_count();
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> next(n);
  for (int i = 0; i < n; ++i) {
    std::unordered_set<int> preds;
    for (const auto& in : node(i).input()) {
      int p = in.empty() ? -1 : Producer(in);
      if (p >= 0 && preds.insert(p).second) next[p].push_back(i);
    }
    pending[i] = static_cast<int>(preds.size());
  }
  std::vector<int> order;
  order.reserve(n);
  for (int i = 0; i < n; ++i) {
    if (pending[i] == 0) order.push_back(i);
  }
  for (size_t k = 0; k < order.size(); ++k) {
    for (int s : next[order[k]]) {
      if (--pending[s] == 0) order.push_back(s);
    }
  }
  if (static_cast<int>(order.size()) != n) {
    for (int i = 0; i < n; ++i) {
      if (pending[i] > 0) return ModelError("graph has a cycle through " + Describe(i));
    }
  }
  return order;
}

const onnx::AttributeProto* FindAttribute(const onnx::NodeProto& node, std::string_view name) {
  for (const auto& attr : node.attribute()) {
    if (attr.name() == name) return &attr;
  }
  return nullptr;
}

int64_t IntAttribute(const onnx::NodeProto& node, std::string_view name, int64_t fallback) {
  const auto* a = FindAttribute(node, name);
  return a ? a->i() : fallback;
}

float FloatAttribute(const onnx::NodeProto& node, std::string_view name, float fallback) {
  const auto* a = FindAttribute(node, name);
  return a ? a->f() : fallback;
}

std::vector<int64_t> IntsAttribute(const onnx::NodeProto& node, std::string_view name) {
  const auto* a = FindAttribute(node, name);
  if (!a) return {};
  return {a->ints().begin(), a->ints().end()};
}

namespace {

int64_t Product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t d : v) p *= d;
  return p;
}

// ONNX Reshape's target shape: 0 copies the input dim, -1 takes what is left.
std::optional<std::vector<int64_t>> ReshapeTarget(const std::vector<int64_t>& in,
                                                  std::vector<int64_t> target) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && i < in.size()) target[i] = in[i];
    if (target[i] == -1) {
      if (infer >= 0) return std::nullopt;
      infer = static_cast<int64_t>(i);
    } else if (target[i] <= 0) {
      return std::nullopt;
    } else {
      known *= target[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || Product(in) % known != 0) return std::nullopt;
    target[infer] = Product(in) / known;
  }
  if (Product(target) != Product(in)) return std::nullopt;
  return target;
}

std::vector<int64_t> AxesOf(const GraphIndex& index, const onnx::NodeProto& node) {
  std::vector<int64_t> axes = IntsAttribute(node, "axes");
  if (axes.empty() && node.input_size() > 1) {
    if (auto v = index.ConstantValues(node.input(1))) axes.assign(v->begin(), v->end());
  }
  return axes;
}

// Appends a gather of `picks` along `axis` to the view, composing with a gather on the same
// axis that ends it.
void Gather(ConstantView* view, int64_t axis, std::vector<int64_t> picks) {
  if (!view->steps.empty() && view->steps.back().axis == axis) {
    const auto& before = view->steps.back().indices;
    for (auto& k : picks) k = before[static_cast<size_t>(k)];
    view->steps.pop_back();
  }
  view->shape[axis] = static_cast<int64_t>(picks.size());
  ViewStep step;
  step.axis = axis;
  step.indices = std::move(picks);
  step.shape = view->shape;
  view->steps.push_back(std::move(step));
}

std::optional<ConstantView> SliceView(const GraphIndex& index, int p, std::string* why) {
  const auto& node = index.node(p);
  auto view = ResolveConstant(index, node.input_size() > 0 ? node.input(0) : "", why);
  if (!view || view->generated || view->dequantize) return std::nullopt;
  if (view->shape.empty()) {
    const auto* t = StoredTensor(index, *view);
    view->shape.assign(t->dims().begin(), t->dims().end());
  }
  auto input = [&](int i) -> std::optional<std::vector<double>> {
    if (i >= node.input_size() || node.input(i).empty()) return std::nullopt;
    return index.ConstantValues(node.input(i));
  };
  std::vector<double> starts, ends, axes, steps;
  if (node.input_size() > 1) {  // opset >= 10
    auto s = input(1), e = input(2);
    if (!s || !e) {
      if (why) *why = index.Describe(p) + " has bounds that are not constant";
      return std::nullopt;
    }
    starts = *s;
    ends = *e;
    if (auto a = input(3)) axes = *a;
    if (auto st = input(4)) steps = *st;
  } else {
    for (int64_t v : IntsAttribute(node, "starts")) starts.push_back(static_cast<double>(v));
    for (int64_t v : IntsAttribute(node, "ends")) ends.push_back(static_cast<double>(v));
    for (int64_t v : IntsAttribute(node, "axes")) axes.push_back(static_cast<double>(v));
  }
  const int64_t rank = static_cast<int64_t>(view->shape.size());
  for (size_t k = 0; k < starts.size() && k < ends.size(); ++k) {
    if (k < steps.size() && steps[k] != 1) {
      if (why) *why = index.Describe(p) + " steps by " + std::to_string(steps[k]);
      return std::nullopt;
    }
    int64_t axis = k < axes.size() ? static_cast<int64_t>(axes[k]) : static_cast<int64_t>(k);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return std::nullopt;
    const double dim = static_cast<double>(view->shape[axis]);
    auto clampd = [&](double v) { return std::clamp(v < 0 ? v + dim : v, 0.0, dim); };
    const int64_t from = static_cast<int64_t>(clampd(starts[k]));
    const int64_t to = static_cast<int64_t>(clampd(ends[k]));
    std::vector<int64_t> picks;
    for (int64_t j = from; j < to; ++j) picks.push_back(j);
    Gather(&*view, axis, std::move(picks));
  }
  view->nodes.push_back(p);
  return view;
}

std::optional<ConstantView> ConcatView(const GraphIndex& index, int p, std::string* why) {
  const auto& node = index.node(p);
  std::optional<ConstantView> result;
  int64_t axis = IntAttribute(node, "axis", 0);
  std::vector<int64_t> picks;
  for (const auto& in : node.input()) {
    if (in.empty()) continue;
    auto view = ResolveConstant(index, in, why);
    if (!view || view->generated || view->dequantize) return std::nullopt;
    if (view->shape.empty()) {
      const auto* t = StoredTensor(index, *view);
      view->shape.assign(t->dims().begin(), t->dims().end());
    }
    const int64_t rank = static_cast<int64_t>(view->shape.size());
    const int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) return std::nullopt;
    // Split off a final gather on the concatenation axis; the rest must agree across inputs.
    std::vector<int64_t> own;
    if (!view->steps.empty() && view->steps.back().axis == a) {
      own = view->steps.back().indices;
      view->steps.pop_back();
      view->shape = view->steps.empty() ? std::vector<int64_t>() : view->steps.back().shape;
      if (view->shape.empty()) {
        const auto* t = StoredTensor(index, *view);
        view->shape.assign(t->dims().begin(), t->dims().end());
      }
    } else {
      for (int64_t j = 0; j < view->shape[a]; ++j) own.push_back(j);
    }
    if (!result) {
      result = std::move(view);
      axis = a;
    } else if (view->source != result->source || view->steps != result->steps ||
               view->shape != result->shape) {
      if (why) *why = index.Describe(p) + " joins parts of different tensors";
      return std::nullopt;
    } else {
      result->nodes.insert(result->nodes.end(), view->nodes.begin(), view->nodes.end());
    }
    picks.insert(picks.end(), own.begin(), own.end());
  }
  if (!result) return std::nullopt;
  Gather(&*result, axis, std::move(picks));
  result->nodes.push_back(p);
  return result;
}

}  // namespace

std::optional<std::vector<std::string>> ConstantSources(const GraphIndex& index,
                                                        const std::string& tensor) {
  if (auto view = ResolveConstant(index, tensor)) return std::vector<std::string>{view->source};
  int p = tensor.empty() ? -1 : index.Producer(tensor);
  if (p < 0) return std::nullopt;
  const auto& node = index.node(p);
  if (!JoinsConstantParts(node.op_type())) return std::nullopt;
  std::vector<std::string> all;
  const int parts = node.op_type() == "Concat" ? node.input_size() : 1;
  for (int i = 0; i < parts; ++i) {
    auto sub = ConstantSources(index, node.input(i));
    if (!sub) return std::nullopt;
    for (auto& s : *sub) {
      if (std::find(all.begin(), all.end(), s) == all.end()) all.push_back(s);
    }
  }
  return all;
}

namespace {

// Where the walk back from a tensor to its stored constant ended: the name the view records
// for the source, the source tensor, the layout nodes passed on the way (from the tensor back)
// and, when the walk ended at a DequantizeLinear, ConstantOfShape, Slice or Concat, the view
// the layout steps continue from.
struct ConstantWalk {
  std::string tensor;
  const onnx::TensorProto* source = nullptr;
  std::vector<int> chain;
  std::optional<ConstantView> base;
};

// A DequantizeLinear of stored constants: the source is the quantized tensor; the view records
// the scale, the zero point and, unless the scale is one value, the axis and the block size.
bool EndAtDequantize(const GraphIndex& index, int p, ConstantWalk* walk, std::string* why) {
  const auto& node = index.node(p);
  const std::string q = node.input_size() > 0 ? node.input(0) : "";
  walk->source = index.ConstantTensor(q);
  const std::string scale = node.input_size() > 1 ? node.input(1) : "";
  const std::string zp = node.input_size() > 2 ? node.input(2) : "";
  if (!walk->source || !index.ConstantTensor(scale) || (!zp.empty() && !index.ConstantTensor(zp))) {
    if (why) *why = index.Describe(p) + " does not dequantize stored constants";
    return false;
  }
  ConstantView view;
  ConstantView::Dequantize dq{scale, zp, -1, 0};
  const auto* s = index.ConstantTensor(scale);
  int64_t scales = 1;
  for (int64_t d : s->dims()) scales *= d;
  if (scales > 1) {
    int64_t axis = IntAttribute(node, "axis", 1);
    const int rank = walk->source->dims_size();
    if (axis < 0) axis += rank;
    dq.axis = axis >= 0 && axis < rank ? static_cast<int>(axis) : rank;  // rank: out of range
    dq.block_size = IntAttribute(node, "block_size", 0);
  }
  view.dequantize = dq;
  walk->base = std::move(view);
  walk->tensor = q;
  return true;
}

// A ConstantOfShape with a constant shape: the source is a tensor generated with that shape and
// type, from which the layout steps are replayed.
bool EndAtConstantOfShape(const GraphIndex& index, int p, ConstantWalk* walk, std::string* why) {
  const auto& node = index.node(p);
  auto dims = node.input_size() > 0 ? index.ConstantValues(node.input(0)) : std::nullopt;
  if (!dims) {
    if (why) *why = index.Describe(p) + " has a shape that is not constant";
    return false;
  }
  auto generated = std::make_shared<onnx::TensorProto>();
  generated->set_name(walk->tensor);
  generated->set_data_type(onnx::TensorProto::FLOAT);
  if (const auto* value = FindAttribute(node, "value"); value && value->has_t()) {
    generated->set_data_type(value->t().data_type());
  }
  for (double d : *dims) generated->add_dims(static_cast<int64_t>(d));
  ConstantView view;
  view.source = walk->tensor;
  view.generated = generated;
  view.nodes = walk->chain;
  walk->source = generated.get();
  walk->base = std::move(view);
  return true;
}

// A Slice or Concat of stored constants: its view (gathers on the source) is the base.
bool EndAtSliceOrConcat(const GraphIndex& index, int p, ConstantWalk* walk, std::string* why) {
  auto base =
      index.node(p).op_type() == "Slice" ? SliceView(index, p, why) : ConcatView(index, p, why);
  if (!base) return false;
  walk->source = StoredTensor(index, *base);
  if (!walk->source) return false;
  walk->tensor = base->source;
  walk->base = std::move(*base);
  return true;
}

// A Constant node: its tensor value is the source.
bool EndAtConstantNode(const GraphIndex& index, ConstantWalk* walk, std::string* why) {
  walk->source = index.ConstantTensor(walk->tensor);
  if (!walk->source) {
    if (why) *why = "'" + walk->tensor + "' is a Constant without a tensor value";
    return false;
  }
  return true;
}

// Walks back from `tensor` through at most 32 layout ops to the constant they start from.
std::optional<ConstantWalk> WalkBackToSource(const GraphIndex& index, const std::string& tensor,
                                             std::string* why) {
  ConstantWalk walk;
  walk.tensor = tensor;
  const std::string& t = walk.tensor;
  for (int steps = 0; steps < 32 && !walk.source; ++steps) {
    if (t.empty()) return std::nullopt;
    if (const auto* init = index.Initializer(t)) {
      walk.source = init;
      break;
    }
    int p = index.Producer(t);
    if (p < 0) {
      walk.source = index.ConstantTensor(t);  // a Constant node of an enclosing graph
      if (walk.source) break;
      if (why) *why = "'" + t + "' is a graph input, not a constant";
      return std::nullopt;
    }
    const auto& node = index.node(p);
    const std::string& op = node.op_type();
    bool ended = true;
    if (op == "DequantizeLinear") {
      ended = EndAtDequantize(index, p, &walk, why);
    } else if (op == "ConstantOfShape") {
      ended = EndAtConstantOfShape(index, p, &walk, why);
    } else if (op == "Slice" || op == "Concat") {
      ended = EndAtSliceOrConcat(index, p, &walk, why);
    } else if (op == "Constant") {
      ended = EndAtConstantNode(index, &walk, why);
    } else if (IsConstantViewStep(op)) {
      walk.chain.push_back(p);
      walk.tensor = node.input_size() > 0 ? node.input(0) : "";
      continue;
    } else {
      if (why) *why = "'" + t + "' is produced by " + index.Describe(p) + ", not a constant";
      return std::nullopt;
    }
    if (!ended) return std::nullopt;
    break;
  }
  if (!walk.source) return std::nullopt;
  return walk;
}

// A Transpose of `shape`: its permutation (the axes reversed by default) and the shape after.
std::optional<ViewStep> TransposeStep(const onnx::NodeProto& node,
                                      const std::vector<int64_t>& shape) {
  ViewStep step;
  step.perm = IntsAttribute(node, "perm");
  if (step.perm.empty()) {
    for (size_t d = shape.size(); d-- > 0;) step.perm.push_back(static_cast<int64_t>(d));
  }
  if (step.perm.size() != shape.size()) return std::nullopt;
  for (int64_t d : step.perm) {
    if (d < 0 || d >= static_cast<int64_t>(shape.size())) return std::nullopt;
    step.shape.push_back(shape[d]);
  }
  return step;
}

// The shape a Reshape (node p) with a constant target makes of `shape`.
std::optional<std::vector<int64_t>> ReshapeShape(const GraphIndex& index, int p,
                                                 const std::vector<int64_t>& shape,
                                                 std::string* why) {
  const auto& node = index.node(p);
  auto target = node.input_size() > 1 ? index.ConstantValues(node.input(1)) : std::nullopt;
  if (!target) {
    if (why) *why = index.Describe(p) + " has a shape that is not constant";
    return std::nullopt;
  }
  return ReshapeTarget(shape, {target->begin(), target->end()});
}

// Flatten's 2-d shape of `shape`.
std::optional<std::vector<int64_t>> FlattenShape(const onnx::NodeProto& node,
                                                 const std::vector<int64_t>& shape) {
  int64_t axis = IntAttribute(node, "axis", 1);
  if (axis < 0) axis += static_cast<int64_t>(shape.size());
  if (axis < 0 || axis > static_cast<int64_t>(shape.size())) return std::nullopt;
  int64_t a = 1, b = 1;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) (d < axis ? a : b) *= shape[d];
  return std::vector<int64_t>{a, b};
}

// `shape` without the axes the Squeeze names (without its 1s when it names none).
std::vector<int64_t> SqueezeShape(const GraphIndex& index, const onnx::NodeProto& node,
                                  const std::vector<int64_t>& shape) {
  auto axes = AxesOf(index, node);
  std::vector<int64_t> out;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    bool drop = axes.empty() ? shape[d] == 1 : false;
    for (int64_t a : axes) drop |= (a < 0 ? a + static_cast<int64_t>(shape.size()) : a) == d;
    if (!drop) out.push_back(shape[d]);
  }
  return out;
}

// `shape` with a 1 inserted at each axis the Unsqueeze names.
std::optional<std::vector<int64_t>> UnsqueezeShape(const GraphIndex& index,
                                                   const onnx::NodeProto& node,
                                                   const std::vector<int64_t>& shape) {
  auto axes = AxesOf(index, node);
  const int64_t rank = static_cast<int64_t>(shape.size() + axes.size());
  std::vector<bool> inserted(rank, false);
  for (int64_t a : axes) {
    a = a < 0 ? a + rank : a;
    if (a < 0 || a >= rank) return std::nullopt;
    inserted[a] = true;
  }
  std::vector<int64_t> out;
  size_t k = 0;
  for (int64_t d = 0; d < rank; ++d) out.push_back(inserted[d] ? 1 : shape[k++]);
  return out;
}

// The view step a layout node p (Transpose, Reshape, Flatten, Squeeze, Unsqueeze) makes of
// `shape`.
std::optional<ViewStep> ReplayLayoutStep(const GraphIndex& index, int p,
                                         const std::vector<int64_t>& shape, std::string* why) {
  const auto& node = index.node(p);
  const std::string& op = node.op_type();
  if (op == "Transpose") return TransposeStep(node, shape);
  std::optional<std::vector<int64_t>> out = std::vector<int64_t>();
  if (op == "Reshape") {
    out = ReshapeShape(index, p, shape, why);
  } else if (op == "Flatten") {
    out = FlattenShape(node, shape);
  } else if (op == "Squeeze") {
    out = SqueezeShape(index, node, shape);
  } else if (op == "Unsqueeze") {
    out = UnsqueezeShape(index, node, shape);
  }
  if (!out) return std::nullopt;
  ViewStep step;
  step.shape = std::move(*out);
  return step;
}

}  // namespace

std::optional<ConstantView> ResolveConstant(const GraphIndex& index, const std::string& tensor,
                                            std::string* why) {
  // Walk back to the source, collecting the ops; then replay them forward for the shapes.
  auto walk = WalkBackToSource(index, tensor, why);
  if (!walk) return std::nullopt;
  ConstantView view = walk->base ? std::move(*walk->base) : ConstantView{};
  view.source = walk->tensor;
  std::vector<int64_t> shape(walk->source->dims().begin(), walk->source->dims().end());
  if (!view.steps.empty()) shape = view.shape;  // a Slice/Concat view: continue from it
  const std::vector<int>& chain = walk->chain;
  view.nodes.insert(view.nodes.begin(), chain.begin(), chain.end());
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const std::string& op = index.node(*it).op_type();
    if (op == "Identity" || op == "Cast") continue;
    auto step = ReplayLayoutStep(index, *it, shape, why);
    if (!step) return std::nullopt;
    shape = step->shape;
    view.steps.push_back(std::move(*step));
  }
  view.shape = shape;
  return view;
}

const onnx::TensorProto* StoredTensor(const GraphIndex& index, const ConstantView& view) {
  return view.generated ? view.generated.get() : index.ConstantTensor(view.source);
}

std::vector<int64_t> ViewToSource(const std::vector<int64_t>& source_shape,
                                  const std::vector<ViewStep>& steps) {
  std::vector<int64_t> index(static_cast<size_t>(Product(source_shape)));
  for (size_t i = 0; i < index.size(); ++i) index[i] = static_cast<int64_t>(i);
  std::vector<int64_t> shape = source_shape;
  for (const auto& step : steps) {
    if (!step.perm.empty()) {
      // out[j] = in[i] where j's coordinates are i's permuted.
      const size_t rank = shape.size();
      std::vector<int64_t> in_strides(rank, 1);
      for (size_t d = rank; d-- > 1;) in_strides[d - 1] = in_strides[d] * shape[d];
      std::vector<int64_t> out(index.size());
      std::vector<int64_t> coord(rank, 0);
      for (size_t j = 0; j < out.size(); ++j) {
        int64_t src = 0;
        for (size_t d = 0; d < rank; ++d) src += coord[d] * in_strides[step.perm[d]];
        out[j] = index[static_cast<size_t>(src)];
        for (size_t d = rank; d-- > 0;) {
          if (++coord[d] < step.shape[d]) break;
          coord[d] = 0;
        }
      }
      index = std::move(out);
    } else if (step.axis >= 0) {
      int64_t outer = 1, inner = 1;
      for (int64_t d = 0; d < step.axis; ++d) outer *= shape[d];
      for (size_t d = step.axis + 1; d < shape.size(); ++d) inner *= shape[d];
      const int64_t in_dim = shape[step.axis];
      const int64_t out_dim = static_cast<int64_t>(step.indices.size());
      std::vector<int64_t> out(static_cast<size_t>(outer * out_dim * inner));
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t j = 0; j < out_dim; ++j) {
          for (int64_t i = 0; i < inner; ++i) {
            out[(o * out_dim + j) * inner + i] = index[(o * in_dim + step.indices[j]) * inner + i];
          }
        }
      }
      index = std::move(out);
    }
    shape = step.shape;
  }
  return index;
}

}  // namespace reinit

#include "graph_index.h"

#include <cstring>

#include "tensor_codec.h"

namespace reinit {

GraphIndex::GraphIndex(const onnx::GraphProto& graph) : graph_(graph) {
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
  return it == initializers_.end() ? nullptr : it->second;
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
  return p >= 0 && node(p).op_type() == "Constant";
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

std::string GraphIndex::NodeName(int i) const {
  const auto& n = node(i);
  if (!n.name().empty()) return n.name();
  return n.op_type() + "_" + std::to_string(i);
}

std::string GraphIndex::Describe(int i) const {
  return node(i).op_type() + " '" + NodeName(i) + "'";
}

StatusOr<std::vector<int>> GraphIndex::TopologicalOrder() const {
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

}  // namespace reinit

#include "graph/recurrent.h"

#include <optional>
#include <string_view>

#include "graph/fans.h"
#include "graph/graph_index.h"
#include "graph/op_traits.h"

namespace reinit {

namespace {

struct GateSpec {
  const char* name;
  int activation_slot;  // index into the direction's activations (f, g, h)
};

struct Spec {
  std::vector<GateSpec> gates;
  std::vector<std::string> default_activations;
};

const Spec& SpecFor(WeightLayout layout) {
  static const Spec kLstm = {{{"i", 0}, {"o", 0}, {"f", 0}, {"c", 1}}, {"Sigmoid", "Tanh", "Tanh"}};
  static const Spec kGru = {{{"z", 0}, {"r", 0}, {"h", 1}}, {"Sigmoid", "Tanh"}};
  static const Spec kRnn = {{{"h", 0}}, {"Tanh"}};
  return layout == WeightLayout::kLstm ? kLstm : layout == WeightLayout::kGru ? kGru : kRnn;
}

// The activations ONNX's RNN, GRU and LSTM accept in their `activations` attribute, in the
// operators' spec order. Most name an op, whose kind the op table gives (graph/op_traits.h);
// Affine (α·x + β) and ScaledTanh (α·tanh(β·x)) are no ops, and take their kind here. Only the
// kind is read: the node's activation_alpha and activation_beta are not.
struct RecurrentActivation {
  std::string_view name;
  std::optional<ActivationKind> own_kind = std::nullopt;  // set for the names that are no ops
};

const RecurrentActivation kRecurrentActivations[] = {
    {"Relu"},
    {"Tanh"},
    {"Sigmoid"},
    {"Affine", ActivationKind::kLinear},
    {"LeakyRelu"},
    {"ThresholdedRelu"},
    {"ScaledTanh", ActivationKind::kTanh},
    {"HardSigmoid"},
    {"Elu"},
    {"Softsign"},
    {"Softplus"},
};

// The kind of an entry of a recurrent node's `activations`; nullopt for a name outside the
// spec's list (Gelu, say, though an op the table knows).
std::optional<ActivationKind> RecurrentActivationKind(std::string_view name) {
  for (const auto& a : kRecurrentActivations) {
    if (a.name != name) continue;
    if (a.own_kind) return a.own_kind;
    const OpTraits* op = FindOpTraits(name);
    if (op && op->activation) return op->activation->kind;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

StatusOr<std::vector<Gate>> RecurrentGates(const onnx::NodeProto& node, WeightLayout layout,
                                           int64_t directions) {
  const Spec& spec = SpecFor(layout);
  std::string direction = "forward";
  if (const auto* a = FindAttribute(node, "direction")) direction = a->s();
  const int64_t expected = direction == "bidirectional" ? 2 : 1;
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") {
    return ModelError("direction '" + direction + "' is not forward, reverse or bidirectional");
  }
  if (directions != expected) {
    return ModelError("W has " + std::to_string(directions) + " directions but direction is '" +
                      direction + "'");
  }
  std::vector<std::string> names;
  if (const auto* a = FindAttribute(node, "activations")) {
    names.assign(a->strings().begin(), a->strings().end());
  }
  const size_t per_dir = spec.default_activations.size();
  if (names.empty()) {
    for (int64_t d = 0; d < directions; ++d) {
      names.insert(names.end(), spec.default_activations.begin(), spec.default_activations.end());
    }
  }
  if (names.size() != per_dir * static_cast<size_t>(directions)) {
    return ModelError("activations has " + std::to_string(names.size()) + " entries, expected " +
                      std::to_string(per_dir * directions));
  }
  std::vector<Gate> gates;
  for (int64_t d = 0; d < directions; ++d) {
    const std::string dir =
        direction == "bidirectional" ? (d == 0 ? "forward" : "reverse") : direction;
    for (size_t g = 0; g < spec.gates.size(); ++g) {
      const std::string& onnx_name = names[d * per_dir + spec.gates[g].activation_slot];
      const auto kind = RecurrentActivationKind(onnx_name);
      if (!kind) return ModelError("unknown activation '" + onnx_name + "'");
      gates.push_back(
          {spec.gates[g].name, dir, std::string(ActivationName(*kind)), static_cast<int64_t>(g)});
    }
  }
  return gates;
}

}  // namespace reinit

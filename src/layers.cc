#include "layers.h"

#include <unordered_map>
#include <unordered_set>

#include "tensor_codec.h"

namespace reinit {

const std::vector<LayerRule>& LayerRules() {
  static const std::vector<LayerRule> kRules = {
      {"Gemm", 1, 2, WeightLayout::kGemm},
      {"MatMul", 1, -1, WeightLayout::kMatMulB},
      {"MatMul", 0, -1, WeightLayout::kMatMulA},
      {"Conv", 1, 2, WeightLayout::kConv},
      {"ConvTranspose", 1, 2, WeightLayout::kConvTranspose},
  };
  return kRules;
}

const std::vector<SkippedOpRule>& SkippedOpRules() {
  static const std::vector<SkippedOpRule> kSkipped = {
      {"BatchNormalization", "normalization state is not re-initialized yet"},
      {"InstanceNormalization", "normalization state is not re-initialized yet"},
      {"LayerNormalization", "normalization state is not re-initialized yet"},
      {"GroupNormalization", "normalization state is not re-initialized yet"},
      {"LSTM", "recurrent layers are not supported yet"},
      {"GRU", "recurrent layers are not supported yet"},
      {"RNN", "recurrent layers are not supported yet"},
      {"Gather", "embedding tables are not supported yet"},
      {"PRelu", "PRelu slopes are kept"},
      {"Einsum", "Einsum weights are not supported yet"},
      {"ConvInteger", "integer layers are not supported"},
      {"MatMulInteger", "integer layers are not supported"},
      {"QLinearConv", "quantized layers are not supported yet"},
      {"QLinearMatMul", "quantized layers are not supported yet"},
  };
  return kSkipped;
}

std::vector<int64_t> ShapeOf(const onnx::TensorProto& tensor) {
  return {tensor.dims().begin(), tensor.dims().end()};
}

namespace {

std::string InputOrEmpty(const onnx::NodeProto& node, int i) {
  return i >= 0 && i < node.input_size() ? node.input(i) : std::string();
}

// Why `tensor` cannot serve as a weight, or "" if it can: it must be an initializer with
// in-file floating-point data.
std::string WeightProblem(const GraphIndex& index, const std::string& tensor) {
  const onnx::TensorProto* init = index.Initializer(tensor);
  if (init == nullptr) {
    int p = index.Producer(tensor);
    if (p >= 0)
      return "weight '" + tensor + "' is produced by " + index.Describe(p) +
             ", not an initializer (not supported yet)";
    return "weight '" + tensor + "' is a graph input, not an initializer";
  }
  if (init->data_location() == onnx::TensorProto::EXTERNAL) {
    return "weight '" + tensor + "' is stored as external data (not supported yet)";
  }
  if (!IsSupportedFloatType(init->data_type())) {
    return "weight '" + tensor + "' has data type " + DataTypeName(init->data_type()) +
           "; only FLOAT, FLOAT16, BFLOAT16 and DOUBLE can be initialized";
  }
  return "";
}

// The bias Add folded into a MatMul: the MatMul's only consumer is an Add whose other operand
// is a constant of N elements (N = the MatMul's output width).
int FindBiasAdd(const GraphIndex& index, const onnx::NodeProto& matmul, int64_t n,
                std::string* bias) {
  const auto& consumers = index.Consumers(matmul.output(0));
  if (consumers.size() != 1 || index.IsGraphOutput(matmul.output(0))) return -1;
  const auto& add = index.node(consumers[0]);
  if (add.op_type() != "Add" || add.input_size() != 2) return -1;
  const std::string& other = add.input(0) == matmul.output(0) ? add.input(1) : add.input(0);
  const onnx::TensorProto* init = index.Initializer(other);
  if (init == nullptr || !IsSupportedFloatType(init->data_type())) return -1;
  auto count = ElementCount(*init);
  if (!count.ok() || *count != n) return -1;
  for (int d = 0; d + 1 < init->dims_size(); ++d) {
    if (init->dims(d) != 1) return -1;
  }
  *bias = other;
  return consumers[0];
}

}  // namespace

std::vector<Layer> FindLayers(const GraphIndex& index) {
  std::vector<Layer> layers;
  std::unordered_map<std::string, std::string> owner;  // weight/bias tensor -> layer name
  std::unordered_set<std::string> claimed;             // every tensor some entry names

  for (int i = 0; i < index.node_count(); ++i) {
    const auto& node = index.node(i);
    if (!node.domain().empty() && node.domain() != "ai.onnx") continue;
    Layer layer;
    layer.node = i;
    layer.name = index.NodeName(i);
    layer.op = node.op_type();
    layer.output = node.output_size() > 0 ? node.output(0) : "";

    // Pick the first rule whose weight input is a constant (for MatMul: B, then A).
    const LayerRule* match = nullptr;
    const LayerRule* first_for_op = nullptr;
    for (const auto& rule : LayerRules()) {
      if (rule.op != node.op_type()) continue;
      if (!first_for_op) first_for_op = &rule;
      if (index.IsConstant(InputOrEmpty(node, rule.weight_input))) {
        match = &rule;
        break;
      }
    }
    if (first_for_op && !match) {
      // A MatMul of two activations (attention scores) owns no weight: not a layer.
      if (node.op_type() == "MatMul") continue;
      match = first_for_op;  // report why its weight cannot be used
    }
    if (match) {
      layer.rule = match;
      layer.weight = InputOrEmpty(node, match->weight_input);
      layer.bias = InputOrEmpty(node, match->bias_input);
      layer.skipped = WeightProblem(index, layer.weight);
      if (layer.skipped.empty() && match->layout == WeightLayout::kMatMulB) {
        const auto shape = ShapeOf(*index.Initializer(layer.weight));
        int64_t n = shape.empty() ? 0 : (shape.size() == 1 ? 1 : shape.back());
        int add = shape.size() >= 2 ? FindBiasAdd(index, node, n, &layer.bias) : -1;
        if (add >= 0) {
          layer.output = index.node(add).output(0);
          layer.path.push_back(add);
        }
      }
      if (layer.skipped.empty() && !layer.bias.empty()) {
        if (std::string p = WeightProblem(index, layer.bias); !p.empty()) {
          layer.skipped = "bias" + p.substr(6);  // "weight '...'..." -> "bias '...'..."
        }
      }
      if (layer.skipped.empty()) {
        if (auto it = owner.find(layer.weight); it != owner.end()) {
          layer.skipped = "weight '" + layer.weight + "' is shared with layer '" + it->second +
                          "' and initialized there";
        } else {
          owner.emplace(layer.weight, layer.name);
        }
      }
      claimed.insert(layer.weight);
      if (!layer.bias.empty()) claimed.insert(layer.bias);
      layers.push_back(std::move(layer));
      continue;
    }
    for (const auto& rule : SkippedOpRules()) {
      if (rule.op != node.op_type()) continue;
      // Listed only if it really holds parameters: a floating-point constant input.
      for (const auto& in : node.input()) {
        const auto* init = index.Initializer(in);
        if (init && IsSupportedFloatType(init->data_type())) {
          layer.params.push_back(in);
          claimed.insert(in);
        }
      }
      if (layer.params.empty()) break;
      layer.skipped = std::string(rule.reason);
      layers.push_back(std::move(layer));
      break;
    }
  }

  // Loose parameters: floating-point initializers of 2+ elements that no entry names.
  for (const auto& init : index.graph().initializer()) {
    if (claimed.count(init.name()) || !IsSupportedFloatType(init.data_type())) continue;
    auto count = ElementCount(init);
    if (!count.ok() || *count < 2) continue;
    const auto& consumers = index.Consumers(init.name());
    if (consumers.empty()) continue;
    Layer loose;
    loose.name = init.name();
    loose.op = index.node(consumers[0]).op_type();
    loose.weight = init.name();
    loose.skipped =
        "not the weight of a supported layer (used by " + index.Describe(consumers[0]) + ")";
    layers.push_back(std::move(loose));
  }
  return layers;
}

}  // namespace reinit

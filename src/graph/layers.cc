#include "graph/layers.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "io/quantize.h"
#include "io/tensor_codec.h"
#include "io/tensor_store.h"

namespace reinit {

LayerKind KindOf(WeightLayout layout) {
  switch (layout) {
    case WeightLayout::kGemm:
    case WeightLayout::kMatMulA:
    case WeightLayout::kMatMulB:
      return LayerKind::kDense;
    case WeightLayout::kConv:
    case WeightLayout::kConvTranspose:
      return LayerKind::kConv;
    case WeightLayout::kNorm:
      return LayerKind::kNorm;
    case WeightLayout::kEmbedding:
      return LayerKind::kEmbedding;
    case WeightLayout::kLstm:
    case WeightLayout::kGru:
    case WeightLayout::kRnn:
      return LayerKind::kRecurrent;
  }
  return LayerKind::kDense;
}

const char* KindName(LayerKind kind) {
  switch (kind) {
    case LayerKind::kDense:
      return "dense";
    case LayerKind::kConv:
      return "conv";
    case LayerKind::kNorm:
      return "norm";
    case LayerKind::kEmbedding:
      return "embedding";
    case LayerKind::kRecurrent:
      return "recurrent";
  }
  return "";
}

const char* ParamRoleName(ParamRole role) {
  switch (role) {
    case ParamRole::kParameter:
      return "parameter";
    case ParamRole::kRecurrence:
      return "recurrence";
    case ParamRole::kRunningMean:
      return "running_mean";
    case ParamRole::kRunningVar:
      return "running_var";
    case ParamRole::kPeephole:
      return "peephole";
    case ParamRole::kWeightPart:
      return "weight_part";
    case ParamRole::kRecurrencePart:
      return "recurrence_part";
    case ParamRole::kBiasPart:
      return "bias_part";
  }
  return "parameter";
}

ParamRole ParamRoleFromName(std::string_view name) {
  for (ParamRole role : {ParamRole::kRecurrence, ParamRole::kRunningMean, ParamRole::kRunningVar,
                         ParamRole::kPeephole, ParamRole::kWeightPart, ParamRole::kRecurrencePart,
                         ParamRole::kBiasPart}) {
    if (name == ParamRoleName(role)) return role;
  }
  return ParamRole::kParameter;
}

int WeightPartCount(const Layer& layer) {
  int count = 1;
  for (const auto& p : layer.params) count += p.role == ParamRole::kWeightPart;
  return count;
}

bool HasParamRole(const Layer& layer, ParamRole role) {
  for (const auto& p : layer.params) {
    if (p.role == role) return true;
  }
  return false;
}

LayerKind LayerKindFromName(std::string_view name) {
  for (LayerKind kind :
       {LayerKind::kConv, LayerKind::kNorm, LayerKind::kEmbedding, LayerKind::kRecurrent}) {
    if (name == KindName(kind)) return kind;
  }
  return LayerKind::kDense;
}

const std::vector<LayerRule>& LayerRules() {
  static const std::vector<LayerRule> kRules = [] {
    std::vector<LayerRule> rules;
    for (const auto& o : AllOpTraits()) rules.insert(rules.end(), o.layers.begin(), o.layers.end());
    return rules;
  }();
  return kRules;
}

const LayerRule& DecomposedNormRule() {
  static const LayerRule kRule = {"", -1, -1, WeightLayout::kNorm};
  return kRule;
}

const std::vector<SkippedOpRule>& SkippedOpRules() {
  static const std::vector<SkippedOpRule> kSkipped = [] {
    std::vector<SkippedOpRule> skipped;
    for (const auto& o : AllOpTraits()) {
      if (!o.skipped.empty()) skipped.push_back({o.op, o.skipped});
    }
    return skipped;
  }();
  return kSkipped;
}

std::unordered_set<int> WalkBoundaries(const std::vector<Layer>& layers) {
  std::unordered_set<int> nodes;
  for (const auto& l : layers) {
    if (l.node < 0 || !l.rule) continue;
    const LayerKind kind = KindOf(l.rule->layout);
    if (kind != LayerKind::kNorm && kind != LayerKind::kEmbedding) nodes.insert(l.node);
  }
  return nodes;
}

std::vector<int64_t> ShapeOf(const onnx::TensorProto& tensor) {
  return {tensor.dims().begin(), tensor.dims().end()};
}

namespace {

std::string InputOrEmpty(const onnx::NodeProto& node, int i) {
  return i >= 0 && i < node.input_size() ? node.input(i) : std::string();
}

// Why `tensor` cannot serve as a weight, or "" if it can: it must be a floating-point constant
// (an initializer or a Constant node's value), possibly seen through layout ops.
std::string WeightProblem(const GraphIndex& index, const std::string& tensor) {
  std::string why;
  auto view = ResolveConstant(index, tensor, &why);
  if (!view) {
    if (why.empty()) return "weight '" + tensor + "': its layout steps cannot be followed";
    if (why.rfind("'" + tensor + "' ", 0) == 0) return "weight " + why;
    return "weight '" + tensor + "': " + why;
  }
  const onnx::TensorProto* init = StoredTensor(index, *view);
  // LoadModel reads external data into the model or defers it to a TensorStore; a tensor still
  // marked EXTERNAL otherwise was not loaded.
  if (init->data_location() == onnx::TensorProto::EXTERNAL && !IsDeferred(*init)) {
    return "weight '" + view->source + "' is in external data that was not loaded";
  }
  if (const auto& dq = view->dequantize) {
    const onnx::TensorProto* zero_point =
        dq->zero_point.empty() ? nullptr : index.ConstantTensor(dq->zero_point);
    const std::string problem =
        QuantizationProblem(*init, *index.ConstantTensor(dq->scale), zero_point,
                            {.axis = dq->axis, .block_size = dq->block_size});
    return problem.empty() ? "" : "weight '" + view->source + "': " + problem;
  }
  if (!IsSupportedFloatType(init->data_type())) {
    return "weight '" + view->source + "' has data type " + DataTypeName(init->data_type()) +
           "; only " + FloatTypeNames() + " can be initialized" +
           (IsQuantizedType(init->data_type())
                ? " (" + DataTypeName(init->data_type()) + " only through DequantizeLinear)"
                : "");
  }
  return "";
}

// The stored constant behind a layer input (itself when it is one).
std::string SourceOf(const GraphIndex& index, const std::string& tensor) {
  auto view = ResolveConstant(index, tensor);
  return view ? view->source : tensor;
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
  auto view = ResolveConstant(index, other);
  const onnx::TensorProto* init = view ? StoredTensor(index, *view) : nullptr;
  if (init == nullptr || !IsSupportedFloatType(init->data_type())) return -1;
  auto count = ElementCount(*init);
  if (!count.ok() || *count != n) return -1;
  for (int d = 0; d + 1 < init->dims_size(); ++d) {
    if (init->dims(d) != 1) return -1;
  }
  *bias = view->source;
  return consumers[0];
}

}  // namespace

namespace {

// The producer of `tensor` if it is a node of type `op`, else -1.
int ProducerOf(const GraphIndex& index, const std::string& tensor, std::string_view op) {
  int p = tensor.empty() ? -1 : index.Producer(tensor);
  return p >= 0 && index.node(p).op_type() == op ? p : -1;
}

// The only consumer of `tensor` if it is a node of type `op` (the tensor no graph output).
int SoleConsumer(const GraphIndex& index, const std::string& tensor, std::string_view op) {
  const auto& consumers = index.Consumers(tensor);
  if (consumers.size() != 1 || index.IsGraphOutput(tensor)) return -1;
  return index.node(consumers[0]).op_type() == op ? consumers[0] : -1;
}

// For a binary node with one constant float operand: that operand, else "".
std::string ConstantOperand(const GraphIndex& index, const onnx::NodeProto& node,
                            const std::string& from) {
  if (node.input_size() != 2) return "";
  const std::string& other = node.input(0) == from ? node.input(1) : node.input(0);
  auto view = ResolveConstant(index, other);
  const auto* init = view ? StoredTensor(index, *view) : nullptr;
  return init && IsSupportedFloatType(init->data_type()) ? view->source : "";
}

// Whether a binary node's constant operand holds one value per channel (every dim but the last
// 1): a γ, not a learned tensor of the activation's shape.
bool OnePerChannel(const GraphIndex& index, const onnx::NodeProto& node, const std::string& from) {
  const std::string& other = node.input(0) == from ? node.input(1) : node.input(0);
  auto view = ResolveConstant(index, other);
  if (!view) return false;
  for (size_t d = 0; d + 1 < view->shape.size(); ++d) {
    if (view->shape[d] != 1) return false;
  }
  return true;
}

// The constant shift Add right after a written-out norm's scale Mul, if there is one: the
// layer's bias, and its output moves past it.
void AttachShift(const GraphIndex& index, Layer* layer) {
  const int shift = SoleConsumer(index, layer->output, "Add");
  if (shift < 0) return;
  layer->bias = ConstantOperand(index, index.node(shift), layer->output);
  if (layer->bias.empty()) return;
  layer->path.push_back(shift);
  layer->output = index.node(shift).output(0);
}

// If node `i` divides a tensor by its root mean square — a LayerNorm (mean-centred) or RMSNorm
// written out as elementwise ops — the layer made of it and the constant scale Mul (and shift
// Add) after it.
std::optional<Layer> DecomposedNorm(const GraphIndex& index, int i) {
  const auto& node = index.node(i);
  std::string num, den;
  if (node.op_type() == "Div" && node.input_size() == 2) {
    num = node.input(0);
    den = node.input(1);
  } else if (node.op_type() == "Mul" && node.input_size() == 2) {
    for (int k = 0; k < 2; ++k) {
      if (int r = ProducerOf(index, node.input(k), "Reciprocal"); r >= 0) {
        den = index.node(r).input(0);
        num = node.input(1 - k);
      }
    }
  }
  if (num.empty() || den.empty()) return std::nullopt;
  // The denominator: Sqrt and Add-epsilon in either order, over ReduceMean of num squared.
  std::string t = den;
  for (int steps = 0; steps < 3; ++steps) {
    int p = index.Producer(t);
    if (p < 0) return std::nullopt;
    const auto& pn = index.node(p);
    if (pn.op_type() == "Sqrt") {
      t = pn.input(0);
    } else if (pn.op_type() == "Add" && pn.input_size() == 2 &&
               (index.IsConstant(pn.input(0)) || index.IsConstant(pn.input(1)))) {
      t = index.IsConstant(pn.input(0)) ? pn.input(1) : pn.input(0);
    } else {
      break;
    }
  }
  int mean = ProducerOf(index, t, "ReduceMean");
  if (mean < 0) return std::nullopt;
  const std::string& squared = index.node(mean).input(0);
  int sq = index.Producer(squared);
  if (sq < 0) return std::nullopt;
  const auto& sqn = index.node(sq);
  const bool is_square = (sqn.op_type() == "Pow" && sqn.input_size() == 2 && sqn.input(0) == num) ||
                         (sqn.op_type() == "Mul" && sqn.input_size() == 2 && sqn.input(0) == num &&
                          sqn.input(1) == num);
  if (!is_square) return std::nullopt;
  bool centred = false;
  if (int sub = ProducerOf(index, num, "Sub"); sub >= 0) {
    int m = ProducerOf(index, index.node(sub).input(1), "ReduceMean");
    centred = m >= 0 && index.node(m).input(0) == index.node(sub).input(0);
  }
  // The scale: a Mul by a constant right after (through a Cast, as mixed-precision exports do).
  std::string out = node.output(0);
  Layer layer;
  if (int cast = SoleConsumer(index, out, "Cast"); cast >= 0) {
    layer.path.push_back(cast);
    out = index.node(cast).output(0);
  }
  int scale = SoleConsumer(index, out, "Mul");
  if (scale < 0) return std::nullopt;
  layer.weight = ConstantOperand(index, index.node(scale), out);
  if (layer.weight.empty() || !OnePerChannel(index, index.node(scale), out)) return std::nullopt;
  layer.node = scale;
  layer.name = index.NodeName(scale);
  layer.op = centred ? "LayerNormalization (decomposed)" : "RMSNormalization (decomposed)";
  layer.rule = &DecomposedNormRule();
  layer.output = index.node(scale).output(0);
  AttachShift(index, &layer);
  return layer;
}

// The layer of a normalization found by what it computes, at its anchor: γ its weight, β its
// bias, its output after β.
Layer ComputedNormLayer(const GraphIndex& index, const NormSite& site) {
  Layer layer;
  layer.node = site.anchor;
  layer.name = index.NodeName(site.anchor);
  layer.op = std::string(NormKindName(site.kind)) + " (decomposed)";
  layer.rule = &DecomposedNormRule();
  layer.weight = SourceOf(index, site.gamma);
  if (!site.beta.empty()) layer.bias = SourceOf(index, site.beta);
  layer.output = site.output;
  layer.path = site.after_anchor;
  return layer;
}

// The normalizations with a γ found by what they compute, by anchor; those DecomposedNorm
// reads already are left to it.
std::unordered_map<int, const NormSite*> ComputedNorms(const GraphIndex& index,
                                                       const Normalizations& norms) {
  std::unordered_map<int, const NormSite*> by_anchor;
  for (const NormSite& site : norms.sites) {
    const bool structural = std::any_of(site.nodes.begin(), site.nodes.end(), [&](int v) {
      return DecomposedNorm(index, v).has_value();
    });
    if (!site.gamma.empty() && !structural) by_anchor[site.anchor] = &site;
  }
  return by_anchor;
}

// The number of values of a constant layer input, or -1.
int64_t ConstantCount(const GraphIndex& index, const std::string& tensor) {
  auto view = ResolveConstant(index, tensor);
  if (!view) return -1;
  int64_t n = 1;
  for (int64_t d : view->shape) n *= d;
  return n;
}

// If node `i` multiplies a normalization's output by a constant of one value per channel (an
// Add of one may follow): Caffe's BatchNorm + Scale pair as onnx-caffe2 writes it (DenseNet,
// BN-Inception), the norm's affine written as a layer of its own. It is reset as a norm's own
// scale and shift are (1 and 0); left alone, the trained values would survive re-initialization.
std::optional<Layer> AffineAfterNorm(const GraphIndex& index, int i) {
  const auto& node = index.node(i);
  if (node.op_type() != "Mul" || node.input_size() != 2) return std::nullopt;
  for (int k = 0; k < 2; ++k) {
    const std::string& from = node.input(k);
    const int norm = index.Producer(from);
    if (norm < 0 || !IsNormalizationOp(index.node(norm).op_type()) ||
        SoleConsumer(index, from, "Mul") != i || index.node(norm).input_size() < 2) {
      continue;
    }
    Layer layer;
    layer.weight = ConstantOperand(index, node, from);
    const int64_t channels = ConstantCount(index, index.node(norm).input(1));
    if (layer.weight.empty() || channels < 1 ||
        ConstantCount(index, node.input(1 - k)) != channels) {
      continue;
    }
    layer.node = i;
    layer.name = index.NodeName(i);
    layer.op = "Scale (after " + index.node(norm).op_type() + ")";
    layer.rule = &DecomposedNormRule();
    layer.output = node.output(0);
    AttachShift(index, &layer);
    return layer;
  }
  return std::nullopt;
}

// A recurrent W or R written as Concat(axis 0) of one [1, G·H, C] view per direction, each of
// a tensor of its own; empty if it is not that.
std::vector<ConstantView> DirectionParts(const GraphIndex& index, const std::string& tensor) {
  int p = tensor.empty() ? -1 : index.Producer(tensor);
  if (p < 0 || index.node(p).op_type() != "Concat" || IntAttribute(index.node(p), "axis", 0) != 0) {
    return {};
  }
  std::vector<ConstantView> parts;
  for (const auto& in : index.node(p).input()) {
    auto view = ResolveConstant(index, in);
    if (!view || view->generated || view->dequantize || view->shape.size() != 3 ||
        view->shape[0] != 1 || (!parts.empty() && view->shape != parts[0].shape)) {
      return {};
    }
    parts.push_back(std::move(*view));
  }
  return parts;
}

// The problem with any of the layer's tensors, or "".
std::string TensorProblems(const GraphIndex& index, const Layer& layer) {
  if (std::string p = WeightProblem(index, layer.weight); !p.empty()) return p;
  if (!layer.bias.empty()) {
    if (std::string p = WeightProblem(index, layer.bias); !p.empty()) {
      return "bias" + p.substr(6);  // "weight '...'..." -> "bias '...'..."
    }
  }
  for (const auto& param : layer.params) {
    if (std::string p = WeightProblem(index, param.name); !p.empty()) {
      return "parameter" + p.substr(6);
    }
  }
  return "";
}

// --- Matching a node against its op's record (graph/op_traits.h).

// A layer made of node `i` alone, before any rule is applied.
Layer NodeLayer(const GraphIndex& index, int i) {
  const auto& node = index.node(i);
  Layer layer;
  layer.node = i;
  layer.name = index.NodeName(i);
  layer.op = node.op_type();
  layer.output = node.output_size() > 0 ? node.output(0) : "";
  return layer;
}

// Whether a Gather's input 0 is a constant that is no embedding table (a float [V, D]): a
// lookup in a constant shape vector, say.
bool IsConstantNonTable(const GraphIndex& index, const onnx::NodeProto& node) {
  auto view = ResolveConstant(index, InputOrEmpty(node, 0));
  const auto* table = view ? StoredTensor(index, *view) : nullptr;
  return table && (!IsSupportedFloatType(table->data_type()) || view->shape.size() != 2);
}

// How a node meets its op's layer rules.
struct RuleMatch {
  bool layer_op = false;            // the op's record has layer rules
  const LayerRule* rule = nullptr;  // the rule the node is a layer by; null: it is no layer
};

// The first of the op's rules whose weight input is a constant (for MatMul: B, then A); if
// none, the first rule, so that the layer says why its weight cannot be used — except for a
// MatMul of two activations (attention scores) or a Gather from a computed tensor, which own
// no weight.
RuleMatch MatchLayerRule(const GraphIndex& index, const OpTraits& traits,
                         const onnx::NodeProto& node) {
  RuleMatch match;
  if (traits.layers.empty()) return match;
  match.layer_op = true;
  for (const auto& rule : traits.layers) {
    if (ResolveConstant(index, InputOrEmpty(node, rule.weight_input))) {
      match.rule = &rule;
      break;
    }
  }
  if (!match.rule) {
    if (node.op_type() == "MatMul" || node.op_type() == "Gather") return match;
    match.rule = &traits.layers.front();
  }
  if (match.rule->layout == WeightLayout::kEmbedding && IsConstantNonTable(index, node)) {
    match.rule = nullptr;
  }
  return match;
}

// --- Building a layer from the rule it matched, one step each.

// The node's weight, bias and other parameters as the rule names them.
void TakeRuleInputs(const onnx::NodeProto& node, const LayerRule& rule, Layer* layer) {
  layer->rule = &rule;
  layer->weight = InputOrEmpty(node, rule.weight_input);
  layer->bias = InputOrEmpty(node, rule.bias_input);
  for (const auto& slot : rule.params) {
    std::string in = InputOrEmpty(node, slot.input);
    if (in.empty()) continue;
    layer->params.push_back({in, ParamRoleFromName(slot.role), {}, -1});
  }
}

// A recurrent bias an exporter assembles from several tensors (PyTorch's training-mode export
// concatenates slices of bias_ih and bias_hh): no single view describes it, so its parts are
// listed on their own; they can be zeroed or kept.
void ListBiasParts(const GraphIndex& index, Layer* layer) {
  if (layer->bias.empty() || ResolveConstant(index, layer->bias)) return;
  if (auto parts = ConstantSources(index, layer->bias); parts && parts->size() > 1) {
    layer->bias.clear();
    for (const auto& part : *parts) layer->params.push_back({part, ParamRole::kBiasPart, {}, -1});
  }
}

// The first direction's views of a recurrent W and R joined from one tensor per direction.
struct DirectionSplit {
  std::optional<ConstantView> weight;
  std::optional<ConstantView> recurrence;
};

// If `name` (W or R) is joined from one tensor per direction: `name` becomes the first
// direction's tensor, whose view this returns, and the others follow as params with `role`.
std::optional<ConstantView> SplitTensorByDirection(const GraphIndex& index, std::string* name,
                                                   ParamRole role, Layer* layer) {
  if (ResolveConstant(index, *name)) return std::nullopt;
  auto parts = DirectionParts(index, *name);
  if (parts.size() < 2) return std::nullopt;
  *name = parts[0].source;
  for (size_t k = 1; k < parts.size(); ++k) {
    layer->params.push_back({parts[k].source, role, std::move(parts[k]), static_cast<int>(k)});
  }
  return std::move(parts[0]);
}

// A recurrent W or R joined from one tensor per direction: each part is its own view, the
// first direction's the weight's (R's), the others' their parts'.
DirectionSplit SplitByDirection(const GraphIndex& index, Layer* layer) {
  DirectionSplit split;
  split.weight = SplitTensorByDirection(index, &layer->weight, ParamRole::kWeightPart, layer);
  for (size_t k = 0; k < layer->params.size(); ++k) {
    if (layer->params[k].role != ParamRole::kRecurrence) continue;
    // (A copy of the name: the split may grow params.)
    std::string name = layer->params[k].name;
    split.recurrence = SplitTensorByDirection(index, &name, ParamRole::kRecurrencePart, layer);
    layer->params[k].name = std::move(name);
    break;
  }
  return split;
}

// The layer's tensors become the stored constants behind its inputs; it keeps the weight's view
// for its fans, and each parameter's view.
void ResolveLayerViews(const GraphIndex& index, const DirectionSplit& split, Layer* layer) {
  layer->weight_view = split.weight ? *split.weight : *ResolveConstant(index, layer->weight);
  layer->weight = layer->weight_view.source;
  if (!layer->bias.empty()) layer->bias = SourceOf(index, layer->bias);
  for (auto& p : layer->params) {
    auto view = ResolveConstant(index, p.name);
    if (view) p.name = view->source;
    // Tensors split by direction: each part's own view stands for it.
    if (p.part > 0) continue;
    const bool part0 = p.role == ParamRole::kRecurrence && split.recurrence;
    p.view = part0 ? *split.recurrence : view ? *view : ConstantView{};
  }
}

// A MatMul's bias: the Add after it (FindBiasAdd), folded into the layer.
void FoldBiasAdd(const GraphIndex& index, const onnx::NodeProto& node, Layer* layer) {
  const auto shape = layer->weight_view.shape;
  int64_t n = shape.empty() ? 0 : (shape.size() == 1 ? 1 : shape.back());
  int add_node = shape.size() >= 2 ? FindBiasAdd(index, node, n, &layer->bias) : -1;
  if (add_node >= 0) {
    layer->output = index.node(add_node).output(0);
    layer->path.push_back(add_node);
  }
}

// The layer node `i` is by `rule`. Problems are judged on the inputs as the node names them;
// the layer then refers to the stored constants behind them.
Layer RuleLayer(const GraphIndex& index, int i, const LayerRule& rule) {
  const auto& node = index.node(i);
  Layer layer = NodeLayer(index, i);
  TakeRuleInputs(node, rule, &layer);
  DirectionSplit split;
  if (KindOf(rule.layout) == LayerKind::kRecurrent) {
    ListBiasParts(index, &layer);
    split = SplitByDirection(index, &layer);
  }
  layer.skipped = TensorProblems(index, layer);
  if (layer.skipped.empty()) ResolveLayerViews(index, split, &layer);
  if (rule.layout == WeightLayout::kMatMulB && layer.skipped.empty()) {
    FoldBiasAdd(index, node, &layer);
  }
  return layer;
}

// A node of an op whose parameters this version leaves alone (the record's `skipped`), listed
// if it really holds parameters: floating-point constant inputs.
std::optional<Layer> SkippedOpLayer(const GraphIndex& index, const OpTraits& traits, int i) {
  if (traits.skipped.empty()) return std::nullopt;
  Layer layer = NodeLayer(index, i);
  for (const auto& in : index.node(i).input()) {
    const auto* init = index.Initializer(in);
    if (init && IsSupportedFloatType(init->data_type())) {
      layer.params.push_back({in, ParamRole::kParameter, {}, -1});
    }
  }
  if (layer.params.empty()) return std::nullopt;
  layer.skipped = std::string(traits.skipped);
  return layer;
}

// --- Collecting the layers: copies, sharing, and what every entry names.

// Whether the input `input` reaches stored tensor `source` only through Identity nodes.
bool ReachesThroughIdentityOnly(const GraphIndex& index, const std::string& input,
                                const std::string& source) {
  auto view = ResolveConstant(index, input);
  if (!view || view->source != source || view->nodes.empty()) return false;
  for (int n : view->nodes) {
    if (index.node(n).op_type() != "Identity") return false;
  }
  return true;
}

// The layers found so far, which layer owns each weight, and every tensor some entry names.
class LayerCollector {
 public:
  LayerCollector(const GraphIndex& index, std::unordered_map<std::string, std::string>* owners)
      : index_(index), owner_(owners ? *owners : local_owner_) {}

  // A layer of the node loop. `checked`: its problems were judged on the node's own input
  // names already.
  void Add(Layer layer, bool checked) {
    if (!checked && layer.skipped.empty()) layer.skipped = TensorProblems(index_, layer);
    // (Copies are made in the main graph only.)
    if (layer.skipped.empty() && layer.node >= 0 && layer.rule && !index_.is_subgraph()) {
      UseOwnCopies(&layer);
    }
    if (layer.skipped.empty()) NoteOwner(&layer);
    claimed_.insert(layer.weight);
    if (!layer.bias.empty()) claimed_.insert(layer.bias);
    for (const auto& p : layer.params) claimed_.insert(p.name);
    // A quantized weight's scale and zero point are part of it, not loose parameters.
    if (const auto& dq = layer.weight_view.dequantize) {
      claimed_.insert(dq->scale);
      claimed_.insert(dq->zero_point);
    }
    layers_.push_back(std::move(layer));
  }

  // A node of an op whose parameters are left alone (SkippedOpLayer).
  void AddSkippedOp(Layer layer) {
    for (const auto& p : layer.params) claimed_.insert(p.name);
    layers_.push_back(std::move(layer));
  }

  // Loose parameters: floating-point initializers of 2+ elements that no entry names.
  void AddLooseParameters() {
    for (const auto& init : index_.graph().initializer()) {
      if (claimed_.count(init.name()) || !IsSupportedFloatType(init.data_type())) continue;
      auto count = ElementCount(init);
      if (!count.ok() || *count < 2) continue;
      const auto& consumers = index_.Consumers(init.name());
      if (consumers.empty()) continue;
      Layer loose;
      loose.name = init.name();
      loose.op = index_.node(consumers[0]).op_type();
      loose.weight = init.name();
      loose.skipped =
          "not the weight of a supported layer (used by " + index_.Describe(consumers[0]) + ")";
      layers_.push_back(std::move(loose));
    }
  }

  std::vector<Layer> Take() { return std::move(layers_); }

 private:
  // A weight (bias) another layer already owns, reached only through Identity: the layer gets
  // its own copy, named after the Identity's output (Layer::weight_copy_of).
  void UseOwnCopies(Layer* layer) const {
    const auto& node = index_.node(layer->node);
    const std::string w_in = InputOrEmpty(node, layer->rule->weight_input);
    if (owner_.count(layer->weight) && ReachesThroughIdentityOnly(index_, w_in, layer->weight)) {
      layer->weight_copy_of = layer->weight;
      layer->weight = w_in;
      layer->weight_view.source = w_in;
      layer->weight_view.nodes.clear();
    }
    const std::string b_in = InputOrEmpty(node, layer->rule->bias_input);
    if (!layer->bias.empty() && claimed_.count(layer->bias) &&
        ReachesThroughIdentityOnly(index_, b_in, layer->bias)) {
      layer->bias_copy_of = layer->bias;
      layer->bias = b_in;
    }
  }

  // The first layer of a weight owns it; the others are skipped as sharing it.
  void NoteOwner(Layer* layer) {
    if (auto it = owner_.find(layer->weight); it != owner_.end()) {
      layer->skipped = "weight '" + layer->weight + "' is shared with layer '" + it->second +
                       "' and initialized there";
      layer->shared_owner = it->second;
    } else {
      owner_.emplace(layer->weight, layer->name);
    }
  }

  const GraphIndex& index_;
  std::unordered_map<std::string, std::string> local_owner_;
  std::unordered_map<std::string, std::string>& owner_;  // weight tensor -> layer name
  std::unordered_set<std::string> claimed_;
  std::vector<Layer> layers_;
};

}  // namespace

std::vector<Layer> FindLayers(const GraphIndex& index,
                              std::unordered_map<std::string, std::string>* owners,
                              const Normalizations* norms) {
  const Normalizations own = norms ? Normalizations{} : FindNormalizations(index);
  const auto computed = ComputedNorms(index, norms ? *norms : own);
  LayerCollector found(index, owners);
  for (int i = 0; i < index.node_count(); ++i) {
    const auto& node = index.node(i);
    if (!node.domain().empty() && node.domain() != "ai.onnx") continue;
    if (auto norm = DecomposedNorm(index, i)) {
      found.Add(std::move(*norm), false);
      continue;
    }
    if (auto it = computed.find(i); it != computed.end()) {
      found.Add(ComputedNormLayer(index, *it->second), false);
      continue;
    }
    if (auto affine = AffineAfterNorm(index, i)) {
      found.Add(std::move(*affine), false);
      continue;
    }
    const OpTraits* traits = FindOpTraits(node.op_type());
    if (!traits) continue;
    const RuleMatch match = MatchLayerRule(index, *traits, node);
    if (match.rule) {
      found.Add(RuleLayer(index, i, *match.rule), true);
    } else if (!match.layer_op) {
      if (auto skipped = SkippedOpLayer(index, *traits, i)) found.AddSkippedOp(std::move(*skipped));
    }
  }
  found.AddLooseParameters();
  return found.Take();
}

}  // namespace reinit

#include "graph/op_traits.h"

#include <unordered_map>

namespace reinit {

namespace {

using A = ActivationKind;
using L = WeightLayout;
using R = ActivationRead;
constexpr WalkRole kPass = WalkRole::kPass;
constexpr WalkRole kStatistic = WalkRole::kStatistic;
constexpr WalkRole kLinearStop = WalkRole::kLinearStop;

// A layer rule; its op is filled in from the record.
LayerRule Rule(int weight, int bias, WeightLayout layout, std::vector<ParamSlot> params = {}) {
  return {{}, weight, bias, layout, std::move(params)};
}

ActivationOpRule Act(ActivationKind kind, ActivationRead read = R::kFixed,
                     std::string_view attribute = {}, float fallback = 0) {
  return {kind, read, attribute, fallback};
}

std::vector<OpTraits> BuildOpTraits() {
  std::vector<OpTraits> ops = {
      // Weight layers (normalizations and embedding lookups are walked through; a MatMul of
      // two activations, attention's, carries the layer's output on).
      {.op = "Gemm", .layers = {Rule(1, 2, L::kGemm)}},
      {.op = "MatMul",
       .layers = {Rule(1, -1, L::kMatMulB), Rule(0, -1, L::kMatMulA)},
       .walk = kPass},
      {.op = "Conv", .layers = {Rule(1, 2, L::kConv)}},
      {.op = "ConvTranspose", .layers = {Rule(1, 2, L::kConvTranspose)}},
      {.op = "BatchNormalization",
       .layers = {Rule(1, 2, L::kNorm, {{3, "running_mean"}, {4, "running_var"}})},
       .walk = kPass},
      {.op = "InstanceNormalization", .layers = {Rule(1, 2, L::kNorm)}, .walk = kPass},
      {.op = "LayerNormalization", .layers = {Rule(1, 2, L::kNorm)}, .walk = kPass},
      {.op = "GroupNormalization", .layers = {Rule(1, 2, L::kNorm)}, .walk = kPass},
      {.op = "Gather", .layers = {Rule(0, -1, L::kEmbedding)}, .walk = kPass},
      {.op = "LSTM", .layers = {Rule(1, 3, L::kLstm, {{2, "recurrence"}, {7, "peephole"}})}},
      {.op = "GRU", .layers = {Rule(1, 3, L::kGru, {{2, "recurrence"}})}},
      {.op = "RNN", .layers = {Rule(1, 3, L::kRnn, {{2, "recurrence"}})}},
      // Ops with parameters this version leaves alone.
      {.op = "PRelu",
       .skipped = "PRelu slopes are kept",
       .activation = Act(A::kPrelu, R::kSlopeMean, {}, 0.25f)},  // PyTorch's default slope
      {.op = "Einsum", .skipped = "Einsum weights are not supported yet"},
      {.op = "ConvInteger", .skipped = "integer layers are not supported"},
      {.op = "MatMulInteger", .skipped = "integer layers are not supported"},
      {.op = "QLinearConv", .skipped = "quantized layers are not supported yet"},
      {.op = "QLinearMatMul", .skipped = "quantized layers are not supported yet"},
      // Activations.
      {.op = "Relu", .activation = Act(A::kRelu)},
      {.op = "LeakyRelu", .activation = Act(A::kLeakyRelu, R::kAttribute, "alpha", 0.01f)},
      {.op = "Elu", .activation = Act(A::kElu, R::kAttribute, "alpha", 1.0f)},
      {.op = "Celu", .activation = Act(A::kCelu, R::kAttribute, "alpha", 1.0f)},
      {.op = "Selu", .activation = Act(A::kSelu)},
      {.op = "ThresholdedRelu",
       .activation = Act(A::kThresholdedRelu, R::kAttribute, "alpha", 1.0f)},
      {.op = "Sigmoid", .activation = Act(A::kSigmoid)},
      {.op = "HardSigmoid", .activation = Act(A::kHardSigmoid)},
      {.op = "Tanh", .activation = Act(A::kTanh)},
      {.op = "Softplus", .activation = Act(A::kSoftplus)},
      {.op = "Softsign", .activation = Act(A::kSoftsign)},
      {.op = "HardSwish", .activation = Act(A::kHardSwish)},
      {.op = "Mish", .activation = Act(A::kMish)},
      {.op = "Gelu", .activation = Act(A::kGelu, R::kGeluApproximate, "approximate")},
      {.op = "Clip", .activation = Act(A::kRelu6, R::kClipBounds)},
      // Elementwise arithmetic: bias Add, residual Add, scaling.
      {.op = "Add", .walk = kPass},
      {.op = "Sub", .walk = kPass},
      {.op = "Mul", .walk = kPass},
      {.op = "Div", .walk = kPass},
      {.op = "Neg", .walk = kPass},
      {.op = "Sum", .walk = kPass},
      {.op = "Mean", .walk = kPass},
      // Normalizations without parameters rescale too; the nonlinearity after them decides.
      {.op = "LpNormalization", .walk = kPass},
      {.op = "MeanVarianceNormalization", .walk = kPass},
      // Layout and data movement.
      {.op = "Reshape",
       .walk = kPass,
       .skip_passes = true,
       .constant_view = true,
       .constant_parts = true},
      {.op = "Flatten", .walk = kPass, .skip_passes = true, .constant_view = true},
      {.op = "Transpose",
       .walk = kPass,
       .skip_passes = true,
       .constant_view = true,
       .constant_parts = true},
      {.op = "Squeeze",
       .walk = kPass,
       .skip_passes = true,
       .constant_view = true,
       .constant_parts = true},
      {.op = "Unsqueeze",
       .walk = kPass,
       .skip_passes = true,
       .constant_view = true,
       .constant_parts = true},
      {.op = "Identity",
       .walk = kPass,
       .skip_passes = true,
       .constant_view = true,
       .constant_parts = true},
      {.op = "Dropout", .walk = kPass, .skip_passes = true},
      {.op = "Cast",
       .walk = kPass,
       .skip_passes = true,
       .constant_view = true,
       .constant_parts = true},
      {.op = "CastLike", .walk = kPass},
      {.op = "Concat", .walk = kPass, .constant_parts = true},
      {.op = "Split", .walk = kPass},
      {.op = "Slice", .walk = kPass, .constant_parts = true},
      {.op = "Pad", .walk = kPass},
      {.op = "Resize", .walk = kPass},
      {.op = "Upsample", .walk = kPass},
      {.op = "Expand", .walk = kPass},
      {.op = "Tile", .walk = kPass},
      {.op = "DepthToSpace", .walk = kPass},
      {.op = "SpaceToDepth", .walk = kPass},
      // Pooling.
      {.op = "MaxPool", .walk = kPass, .skip_passes = true},
      {.op = "AveragePool", .walk = kPass, .skip_passes = true},
      {.op = "GlobalAveragePool", .walk = kPass},
      {.op = "GlobalMaxPool", .walk = kPass},
      {.op = "LpPool", .walk = kPass},
      {.op = "GlobalLpPool", .walk = kPass},
      // Statistics of the tensor (a decomposed LayerNorm's mean and variance, shapes).
      {.op = "ReduceMean", .walk = kStatistic},
      {.op = "ReduceSum", .walk = kStatistic},
      {.op = "ReduceMax", .walk = kStatistic},
      {.op = "ReduceMin", .walk = kStatistic},
      {.op = "ReduceL2", .walk = kStatistic},
      {.op = "ReduceSumSquare", .walk = kStatistic},
      {.op = "Pow", .walk = kStatistic},
      {.op = "Sqrt", .walk = kStatistic},
      {.op = "Shape", .walk = kStatistic},
      {.op = "Size", .walk = kStatistic},
      {.op = "ArgMax", .walk = kStatistic},
      {.op = "ArgMin", .walk = kStatistic},
      {.op = "Equal", .walk = kStatistic},
      {.op = "Less", .walk = kStatistic},
      {.op = "Greater", .walk = kStatistic},
      {.op = "NonZero", .walk = kStatistic},
      // The layer's output is used linearly.
      {.op = "Softmax", .walk = kLinearStop},
      {.op = "LogSoftmax", .walk = kLinearStop},
  };
  for (auto& o : ops) {
    for (auto& rule : o.layers) rule.op = o.op;
  }
  return ops;
}

}  // namespace

const std::vector<OpTraits>& AllOpTraits() {
  static const std::vector<OpTraits> kOps = BuildOpTraits();
  return kOps;
}

const OpTraits* FindOpTraits(std::string_view op) {
  static const std::unordered_map<std::string_view, const OpTraits*> kByOp = [] {
    std::unordered_map<std::string_view, const OpTraits*> m;
    for (const auto& o : AllOpTraits()) m.emplace(o.op, &o);
    return m;
  }();
  auto it = kByOp.find(op);
  return it == kByOp.end() ? nullptr : it->second;
}

bool IsNormalizationOp(std::string_view op) {
  const OpTraits* o = FindOpTraits(op);
  if (!o) return false;
  for (const auto& rule : o->layers) {
    if (rule.layout == WeightLayout::kNorm) return true;
  }
  return false;
}

bool NormalizesStream(std::string_view op) {
  return IsNormalizationOp(op) || op.find("Normalization") != std::string_view::npos;
}

WalkRole WalkRoleOf(std::string_view op) {
  const OpTraits* o = FindOpTraits(op);
  return o ? o->walk : WalkRole::kUnknown;
}

bool SkipPassesThrough(std::string_view op) {
  const OpTraits* o = FindOpTraits(op);
  return o && o->skip_passes;
}

bool IsConstantViewStep(std::string_view op) {
  const OpTraits* o = FindOpTraits(op);
  return o && o->constant_view;
}

bool JoinsConstantParts(std::string_view op) {
  const OpTraits* o = FindOpTraits(op);
  return o && o->constant_parts;
}

}  // namespace reinit

// Op traits: what the tool knows about each ONNX operator, one record per op.
//
// A record says, for an op of the default domain: which inputs of a weight layer are its
// weight, bias and other parameters and how the weight is laid out (layers.h, fans.h); why the
// tool leaves the parameters of an op it cannot initialize alone; what the activation walk does
// on meeting it (activation.h); whether a residual skip passes through it (structure.h);
// whether a constant seen through it is still a view of the stored tensor (graph_index.h); and,
// for an activation op, its kind and where its parameter is read. Layers, activation, structure
// and the constant views read this table and keep no op lists of their own: a new op is one
// record here and one test (tests/op_traits_test.cc checks the records against those units).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "graph/activation_kinds.h"

namespace reinit {

enum class WeightLayout {
  kGemm,           // B: [K, N], or [N, K] when transB = 1
  kMatMulB,        // constant right operand B: [..., K, N]
  kMatMulA,        // constant left operand A: [..., M, K]
  kConv,           // W: [M, C/group, k...]
  kConvTranspose,  // W: [C, M/group, k...]
  kNorm,           // a normalization's per-channel scale (and shift, running statistics)
  kEmbedding,      // Gather's table: [V, D]
  kLstm,           // W [D, 4H, I], R [D, 4H, H], B [D, 8H], P [D, 3H]
  kGru,            // W [D, 3H, I], R [D, 3H, H], B [D, 6H]
  kRnn,            // W [D, H, I], R [D, H, H], B [D, 2H]
};

// A parameter input other than the weight and the bias, and what it is to the layer.
struct ParamSlot {
  int input;
  std::string_view role;  // "recurrence", "running_mean", "running_var", "peephole"
};

struct LayerRule {
  std::string_view op;
  int weight_input;  // the main tensor: weight, scale, table or W
  int bias_input;    // -1: the op has no bias input (MatMul's bias is a following Add)
  WeightLayout layout;
  std::vector<ParamSlot> params = {};
};

// What the activation walk does at a node of the op (after checking for an activation op).
enum class WalkRole {
  kUnknown,     // not a known pass-through op: the path ends, taken as linear (and says so)
  kPass,        // the next nonlinearity is found after it: keep walking its outputs
  kStatistic,   // computes a statistic of the tensor: the path ends with no verdict
  kLinearStop,  // Softmax and friends: the layer's output is used linearly
};

// How an activation op's kind and parameter are read from its node.
enum class ActivationRead {
  kFixed,            // `kind`, no parameter
  kAttribute,        // `kind`, the parameter from float attribute `attribute` (else `fallback`)
  kSlopeMean,        // PRelu: the mean of the constant slope (input 1), else `fallback`
  kGeluApproximate,  // gelu, or gelu_tanh when attribute approximate = "tanh"
  kClipBounds,       // Clip: relu6 for [0, 6], hard_sigmoid for [0, 1], relu for [0, ∞);
                     // another clamp is no activation (and unknown to the walk)
};

struct ActivationOpRule {
  ActivationKind kind;
  ActivationRead read = ActivationRead::kFixed;
  std::string_view attribute = {};
  float fallback = 0;
};

struct OpTraits {
  std::string_view op;
  // A weight layer: its rules, tried in order (MatMul: constant B, then constant A).
  std::vector<LayerRule> layers = {};
  // Owns parameters this version does not initialize: why (FindLayers lists the node skipped).
  std::string_view skipped = {};
  WalkRole walk = WalkRole::kUnknown;
  std::optional<ActivationOpRule> activation = std::nullopt;
  // A residual skip passes through it unchanged in what it carries (structure.cc).
  bool skip_passes = false;
  // A constant seen through it is a view of the stored tensor (ResolveConstant's layout steps).
  bool constant_view = false;
  // A tensor assembled through it from constants is listed by its parts (ConstantSources).
  bool constant_parts = false;
};

// Every op the tool knows, weight layers first in the order LayerRules() lists them.
const std::vector<OpTraits>& AllOpTraits();

// The record of an op of the default domain (callers that care check the node's domain, as
// FindLayers does); null for an op the tool does not know.
const OpTraits* FindOpTraits(std::string_view op);

// Whether the op is a normalization layer: a weight layer laid out as kNorm.
bool IsNormalizationOp(std::string_view op);
// Whether the op normalizes what it reads, for the residual structure: a normalization layer's
// op, or any op named so, in any domain, record or not — LpNormalization,
// MeanVarianceNormalization, ONNX's RMSNormalization, com.microsoft's SkipLayerNormalization,
// SimplifiedLayerNormalization, EmbedLayerNormalization, ...
bool NormalizesStream(std::string_view op);
WalkRole WalkRoleOf(std::string_view op);
bool SkipPassesThrough(std::string_view op);
bool IsConstantViewStep(std::string_view op);
bool JoinsConstantParts(std::string_view op);

}  // namespace reinit

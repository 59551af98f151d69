// Layers: which nodes own weights, and which of their inputs are the weight and the bias.
//
// Op knowledge lives in one table (graph/op_traits.h): a layer op's record says which input is
// the weight, which the bias, and how the weight is laid out (which fans.cc turns into fan_in
// and fan_out). Adding an op is one record there, one case in fans.cc, and one test.
// FindLayers walks the graph and returns every weight-owning node it sees: the ones it can
// plan, and the ones it cannot yet, each of those with the reason.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "graph/graph_index.h"
#include "graph/normalization.h"
#include "graph/op_traits.h"

namespace reinit {

enum class LayerKind { kDense, kConv, kNorm, kEmbedding, kRecurrent };
LayerKind KindOf(WeightLayout layout);
const char* KindName(LayerKind kind);
// The kind KindName names; dense for any other name.
LayerKind LayerKindFromName(std::string_view name);

// Every op record's layer rules (graph/op_traits.h) in table order. A MatMul appears twice
// (constant B, then constant A).
const std::vector<LayerRule>& LayerRules();

// The rule for a normalization written out as elementwise ops (LayerNorm as
// ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div, RMSNorm as Pow/ReduceMean/Add/Sqrt/Div or
// Reciprocal/Mul), whose scale and shift are the constant Mul and Add after it, or any other
// spelling found by what it computes (graph/normalization.h), whose scale and shift are its γ
// and β; also a norm's affine written as a per-channel Mul (and Add) after the norm op (Caffe's
// BatchNorm + Scale).
const LayerRule& DecomposedNormRule();

// Ops that own parameters this version does not initialize (the op records' `skipped`);
// FindLayers lists their nodes as skipped with this reason.
struct SkippedOpRule {
  std::string_view op;
  std::string_view reason;
};
const std::vector<SkippedOpRule>& SkippedOpRules();

// What a parameter other than the weight and the bias is to its layer. The Plan shows
// ParamRoleName's strings.
enum class ParamRole {
  kParameter,    // a skipped op's parameter, or one no rule names
  kRecurrence,   // a recurrent layer's R
  kRunningMean,  // a normalization's statistics
  kRunningVar,
  kPeephole,        // an LSTM's P
  kWeightPart,      // one direction's part of a recurrent W joined from parts
  kRecurrencePart,  // one direction's part of a recurrent R joined from parts
  kBiasPart,        // one of the tensors a recurrent bias is assembled from
};
const char* ParamRoleName(ParamRole role);
// The role a rule's ParamSlot names; kParameter for any other name.
ParamRole ParamRoleFromName(std::string_view name);

struct Param {
  std::string name;  // the stored tensor (before FindLayers resolves views: the node's input)
  ParamRole role = ParamRole::kParameter;
  ConstantView view;  // how the layer sees it (no steps: the stored layout)
  // A part of a recurrent W or R joined from one tensor per direction: the direction it holds
  // (1, 2, ...: part 0 is the weight, or the kRecurrence parameter, itself); else -1.
  int part = -1;
};

struct Layer {
  int node = -1;     // the layer's node (for a decomposed norm, the Mul by the scale); -1: loose
  std::string name;  // GraphIndex::NodeName, or the tensor's name for a loose one
  std::string op;    // the node's op type
  const LayerRule* rule = nullptr;  // null when skipped for want of a rule
  std::string weight;               // weight tensor name ("" if none)
  std::string bias;                 // bias tensor name ("" if none)
  std::vector<Param> params;        // the node's other parameter tensors, in input order
  std::string output;               // the tensor whose consumers decide the activation: the layer's
                                    // output, or the output of the bias Add folded into it
  std::vector<int> path;            // nodes folded into the layer (the bias Add), for paths
  std::string skipped;              // why the layer cannot be planned; empty if it can
  std::string shared_owner;         // the layer that initializes this layer's shared weight
  ConstantView weight_view;         // how the layer sees its weight (steps from the stored tensor)
  // A recurrent W (R) concatenated from one tensor per direction (a bidirectional layer in
  // PyTorch's training-mode export) is seen as its parts, [1, G·H, C] each: weight_view and
  // the kRecurrence param are then the first direction's, and the others follow as params
  // with role kWeightPart (kRecurrencePart).
  // Set when the weight (bias) reaches the layer only through Identity from a tensor another
  // layer already owns — an exporter's merging of equal-valued tensors, not a tie: the layer
  // gets its own copy, named after the Identity's output, and this is the tensor copied.
  std::string weight_copy_of;
  std::string bias_copy_of;
};

// Every weight layer of the graph in node order, then loose floating-point parameter tensors
// (initializers of two or more elements that no layer owns), skipped. A weight used by several
// layers is planned at its first layer; the others are skipped as sharing it.
// `owners` (weight -> owning layer name) carries ownership across calls, so a weight used both
// in a graph and in a subgraph of it is planned once; may be null. `norms`: the graph's
// normalizations found by what they compute (FindNormalizations); null: found here.
std::vector<Layer> FindLayers(const GraphIndex& index,
                              std::unordered_map<std::string, std::string>* owners = nullptr,
                              const Normalizations* norms = nullptr);

// The nodes where an activation walk stops as "linear": the dense, conv and recurrent layers
// (normalizations and embedding lookups are walked through).
std::unordered_set<int> WalkBoundaries(const std::vector<Layer>& layers);

// How many directions the layer's weight is joined from (1 when it is one tensor).
int WeightPartCount(const Layer& layer);
bool HasParamRole(const Layer& layer, ParamRole role);

// The shape of an initializer as a vector.
std::vector<int64_t> ShapeOf(const onnx::TensorProto& tensor);

}  // namespace reinit

// Layers: which nodes own weights, and which of their inputs are the weight and the bias.
//
// Op knowledge lives in one table (LayerRules): one row per supported op saying which input is
// the weight, which the bias, and how the weight is laid out (which fans.cc turns into fan_in
// and fan_out). Adding an op is one row here, one case in fans.cc, and one test.
// FindLayers walks the graph and returns every weight-owning node it sees: the ones it can
// plan, and the ones it cannot yet, each of those with the reason.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "graph_index.h"

namespace reinit {

enum class WeightLayout {
  kGemm,           // B: [K, N], or [N, K] when transB = 1
  kMatMulB,        // constant right operand B: [..., K, N]
  kMatMulA,        // constant left operand A: [..., M, K]
  kConv,           // W: [M, C/group, k...]
  kConvTranspose,  // W: [C, M/group, k...]
};

struct LayerRule {
  std::string_view op;
  int weight_input;
  int bias_input;  // -1: the op has no bias input (MatMul's bias is a following Add)
  WeightLayout layout;
};

// The table. A MatMul appears twice (constant B, then constant A).
const std::vector<LayerRule>& LayerRules();

// Ops that own parameters this version does not initialize; FindLayers lists their nodes as
// skipped with this reason.
struct SkippedOpRule {
  std::string_view op;
  std::string_view reason;
};
const std::vector<SkippedOpRule>& SkippedOpRules();

struct Layer {
  int node = -1;                    // index of the layer's node; -1 for a loose parameter tensor
  std::string name;                 // GraphIndex::NodeName, or the tensor's name for a loose one
  std::string op;                   // the node's op type
  const LayerRule* rule = nullptr;  // null when skipped for want of a rule
  std::string weight;               // weight tensor name ("" if none)
  std::string bias;                 // bias tensor name ("" if none)
  std::vector<std::string> params;  // the node's other parameter tensors, in input order
  std::string output;               // the tensor whose consumers decide the activation: the layer's
                                    // output, or the output of the bias Add folded into it
  std::vector<int> path;            // nodes folded into the layer (the bias Add), for paths
  std::string skipped;              // why the layer cannot be planned; empty if it can
};

// Every weight layer of the graph in node order, then loose floating-point parameter tensors
// (initializers of two or more elements that no layer owns), skipped. A weight used by several
// layers is planned at its first layer; the others are skipped as sharing it.
std::vector<Layer> FindLayers(const GraphIndex& index);

// The shape of an initializer as a vector.
std::vector<int64_t> ShapeOf(const onnx::TensorProto& tensor);

}  // namespace reinit

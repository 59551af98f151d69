// GraphIndex: a read-only index over one ONNX graph — who produces and who consumes each
// tensor, which names are initializers or Constant-node outputs, and a display name for every
// node. Every later stage (layers, activation, plan) asks its questions through it.
#pragma once

#include <onnx/onnx_pb.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "status.h"

namespace reinit {

class GraphIndex {
 public:
  // The graph (and `outer`, the index of the graph enclosing a subgraph, whose initializers
  // and constants the subgraph may use) must outlive the index.
  explicit GraphIndex(const onnx::GraphProto& graph, const GraphIndex* outer = nullptr);

  const onnx::GraphProto& graph() const { return graph_; }
  bool is_subgraph() const { return outer_ != nullptr; }
  int node_count() const { return graph_.node_size(); }
  const onnx::NodeProto& node(int i) const { return graph_.node(i); }

  // The initializer of that name, here or in an enclosing graph, or nullptr.
  const onnx::TensorProto* Initializer(std::string_view name) const;
  // Index of the node producing `tensor`, or -1 (graph input, initializer or unknown).
  int Producer(std::string_view tensor) const;
  // Indices of the nodes that read `tensor`, in graph order, each node once.
  const std::vector<int>& Consumers(std::string_view tensor) const;
  bool IsGraphOutput(std::string_view tensor) const;
  // An initializer or the output of a Constant node.
  bool IsConstant(std::string_view tensor) const;
  // The values of a constant tensor (initializer or Constant node with a tensor, float or int
  // value), as doubles; nullopt if it is not a readable constant.
  std::optional<std::vector<double>> ConstantValues(std::string_view tensor) const;

  // The constant tensor of that name: an initializer, or the value of the Constant node that
  // produces it; nullptr otherwise.
  const onnx::TensorProto* ConstantTensor(std::string_view name) const;

  // The node's name, or "<OpType>_<index>" when it has none.
  std::string NodeName(int node) const;
  // "OpType 'name'", for paths and messages.
  std::string Describe(int node) const;

  // Node indices such that every node comes after the producers of its inputs; an error naming
  // a node on the cycle if there is one, a duplicate initializer name, or a node input that
  // nothing defines.
  StatusOr<std::vector<int>> TopologicalOrder() const;

  // Whether `name` is a graph input, an initializer or a node output here or in an outer scope.
  bool Defines(const std::string& name) const;

 private:
  const onnx::GraphProto& graph_;
  const GraphIndex* outer_;
  std::unordered_map<std::string, const onnx::TensorProto*> initializers_;
  std::unordered_map<std::string, int> producers_;
  std::unordered_map<std::string, std::vector<int>> consumers_;
  std::unordered_set<std::string> graph_outputs_;
};

// One layout step between a stored constant and the layer that reads it. Reshape-like ops
// (Reshape, Flatten, Squeeze, Unsqueeze) keep the element order; Transpose permutes it.
struct ViewStep {
  std::vector<int64_t> perm;   // Transpose: the permutation; empty for a reshape
  std::vector<int64_t> shape;  // the shape after the step
  // A gather (Slice, Concat of slices): along `axis`, view index j is input index indices[j].
  int64_t axis = -1;
  std::vector<int64_t> indices;
  bool operator==(const ViewStep&) const = default;
};

// Where a layer input's values come from when they are constant: the stored tensor `source`
// (an initializer or a Constant node's value) and the layout steps from it to what the layer
// sees, through Identity, Cast, Transpose, Reshape, Flatten, Squeeze and Unsqueeze.
struct ConstantView {
  std::string source;
  std::vector<ViewStep> steps;
  std::vector<int64_t> shape;  // the shape the layer sees
  std::vector<int> nodes;      // the nodes walked, from the layer back to the source
  // Set when the source is the output of a ConstantOfShape with a constant shape (a model
  // whose weights were stripped): its name, dims and type, without data.
  std::shared_ptr<const onnx::TensorProto> generated;
  // Set when the source is read through DequantizeLinear (straight from the stored tensor;
  // layout steps may follow): its scale, zero point ("" if none), axis (-1 for a single scale)
  // and block size (0 unless blocked along the axis).
  struct Dequantize {
    std::string scale, zero_point;
    int axis = -1;
    int64_t block_size = 0;
  };
  std::optional<Dequantize> dequantize;
};

// The tensor behind a view: the generated description, or the stored constant.
const onnx::TensorProto* StoredTensor(const GraphIndex& index, const ConstantView& view);

// The view of `tensor` if it is such a chain from a constant; otherwise nullopt, and `why`
// names the first node that is not a layout step (or says it is a graph input).
std::optional<ConstantView> ResolveConstant(const GraphIndex& index, const std::string& tensor,
                                            std::string* why = nullptr);

// Every stored constant `tensor` is assembled from (through layout ops, Slice and Concat), or
// nullopt if some part is not a constant. For a Concat of slices of several tensors, which no
// single view describes.
std::optional<std::vector<std::string>> ConstantSources(const GraphIndex& index,
                                                        const std::string& tensor);

// Source flat index of each element of the view, in the view's row-major order. A view that
// slices may cover only part of the source.
std::vector<int64_t> ViewToSource(const std::vector<int64_t>& source_shape,
                                  const std::vector<ViewStep>& steps);

// The attribute of that name on the node, or nullptr.
const onnx::AttributeProto* FindAttribute(const onnx::NodeProto& node, std::string_view name);
int64_t IntAttribute(const onnx::NodeProto& node, std::string_view name, int64_t fallback);
float FloatAttribute(const onnx::NodeProto& node, std::string_view name, float fallback);
std::vector<int64_t> IntsAttribute(const onnx::NodeProto& node, std::string_view name);

}  // namespace reinit

// The reference executor's operators: one row per ONNX op type in a table (op type -> kernel),
// filled by one Register function per family of ops, each in its own file. A kernel reads its
// node's inputs and attributes through an OpContext and fills its outputs; it returns an error
// (no exceptions) for inputs it cannot handle, which the executor prefixes with the node.
//
// Everything computes in float32; int64 tensors carry shapes, axes and indices. Broadcasting
// follows numpy (ONNX's multidirectional broadcasting).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "signal/executor/tensor.h"
#include "status.h"

namespace reinit::exec {

class OpContext {
 public:
  OpContext(const onnx::NodeProto& node, std::vector<const Tensor*> inputs, int64_t opset)
      : node_(node), inputs_(std::move(inputs)), opset_(opset) {
    outputs_.resize(static_cast<size_t>(node.output_size()));
  }

  const onnx::NodeProto& node() const { return node_; }
  int64_t opset() const { return opset_; }

  // Inputs as the node lists them; an omitted optional input ("" or past the end) is absent.
  int input_count() const { return static_cast<int>(inputs_.size()); }
  bool has_input(int k) const { return k < input_count() && inputs_[k] != nullptr; }
  const Tensor& input(int k) const { return *inputs_[k]; }
  // The input, which must be present and of `type`; an error naming it otherwise.
  StatusOr<const Tensor*> Input(int k, DType type) const;
  // A present int64 input's values (shapes, axes, pads...).
  StatusOr<std::vector<int64_t>> Ints(int k) const;

  int output_count() const { return static_cast<int>(outputs_.size()); }
  Tensor& output(int k) { return outputs_[k]; }
  std::vector<Tensor>& outputs() { return outputs_; }

  // Attributes, with a default when absent.
  int64_t Attr(const std::string& name, int64_t fallback) const;
  float Attr(const std::string& name, float fallback) const;
  std::string Attr(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> Attr(const std::string& name, const std::vector<int64_t>& fallback) const;
  std::vector<float> Attr(const std::string& name, const std::vector<float>& fallback) const;
  const onnx::AttributeProto* FindAttr(const std::string& name) const;

  // An error about this node's inputs or attributes (the executor adds which node).
  Status Error(const std::string& what) const;

 private:
  const onnx::NodeProto& node_;
  std::vector<const Tensor*> inputs_;
  std::vector<Tensor> outputs_;
  int64_t opset_;
};

using Kernel = std::function<Status(OpContext&)>;
using OpTable = std::map<std::string, Kernel>;

// Each family adds its rows.
void RegisterCoreOps(OpTable* table);         // ops_core.cc: Identity, Constant, MatMul, Gemm...
void RegisterElementwiseOps(OpTable* table);  // ops_elementwise.cc: arithmetic, activations...
void RegisterNnOps(OpTable* table);           // ops_nn.cc: Conv, pooling, normalization
void RegisterShapeOps(OpTable* table);        // ops_shape.cc: Reshape, Concat, Gather, Resize...
void RegisterRecurrentOps(OpTable* table);    // ops_recurrent.cc: RNN, GRU, LSTM

// The whole table, built once.
const OpTable& Ops();

// ---- Helpers shared by the kernels -----------------------------------------------------------

// Numpy broadcasting of two shapes; an error if they do not broadcast.
StatusOr<std::vector<int64_t>> BroadcastShape(const std::vector<int64_t>& a,
                                              const std::vector<int64_t>& b);

// For each element of `out_shape`, the index of the element of a tensor of `shape` that
// broadcasting maps to it (shape must broadcast to out_shape).
std::vector<int64_t> BroadcastIndex(const std::vector<int64_t>& shape,
                                    const std::vector<int64_t>& out_shape);

// An axis in [-rank, rank) made non-negative; an error if out of range.
StatusOr<int64_t> NormalizeAxis(const OpContext& ctx, int64_t axis, int64_t rank);

// A float tensor's values converted to `type` (and back for kFloat): Cast's semantics
// (truncation toward zero for integers, nonzero -> true for bool).
Tensor CastTo(const Tensor& in, DType type);

}  // namespace reinit::exec

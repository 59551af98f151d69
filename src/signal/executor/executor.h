// The reference executor: runs an ONNX graph forward in float32 on the CPU, to see what an
// initialization does to the signal (inspect --propagate, the scheme comparison, LSUV). It is
// a reference, not a runtime: every value is materialized, ops are the ones the ONNX spec
// defines with their default semantics, and speed comes from Eigen and the thread pool in the
// heavy kernels (MatMul, Gemm, Conv).
//
// The ops it runs are listed in the table of ops.h; a model with another op is refused when
// the executor is created, naming the op and the node.
#pragma once

#include <onnx/onnx_pb.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/tensor_store.h"
#include "signal/executor/tensor.h"
#include "status.h"

namespace reinit::exec {

// A graph input the caller feeds: declared type and shape (-1 where the dim is symbolic or
// missing, with its dim_param name, if any, in `dim_names`).
struct GraphInput {
  std::string name;
  DType type = DType::kFloat;
  std::vector<int64_t> shape;
  std::vector<std::string> dim_names;
};

// A TensorProto's values (any float type to float32, any integer type to int64, BOOL to
// bool); an error naming the tensor for other types, external data not brought in, or data
// that disagrees with the dims.
StatusOr<Tensor> DecodeTensor(const onnx::TensorProto& tensor);

class Executor {
 public:
  // Indexes the model's main graph and decodes its initializers (those deferred in `store`
  // are read in; `store` may be null when none is). Refused: an op the executor does not run,
  // a node in a domain other than ONNX's, a cycle, an undefined input.
  static StatusOr<std::unique_ptr<Executor>> Create(const onnx::ModelProto& model,
                                                    TensorStore* store = nullptr);

  const std::vector<GraphInput>& inputs() const { return inputs_; }
  const std::vector<std::string>& outputs() const { return outputs_; }
  const onnx::GraphProto& graph() const { return graph_; }

  // The initializer's current value, or nullptr.
  const Tensor* initializer(const std::string& name) const;
  // Replaces an initializer's value (same shape and type), e.g. by freshly drawn weights.
  Status SetInitializer(const std::string& name, Tensor value);

  // Called after each node has run, with the node's index in the graph and its outputs;
  // an error it returns stops the run and is returned.
  using Observer = std::function<Status(int node, const std::vector<Tensor>& outputs)>;

  // Runs the graph on `feeds` (graph input name -> value, every input that is not an
  // initializer). Returns the graph outputs. Intermediate values are freed after their last
  // use. With `stop_after`, the run stops once the node that produces that tensor has run
  // (its value went to the observer) and returns no outputs.
  StatusOr<std::map<std::string, Tensor>> Run(const std::map<std::string, Tensor>& feeds,
                                              const Observer& observe = nullptr,
                                              const std::string& stop_after = "") const;

 private:
  Executor() = default;
  // Runs node k on `values` (adding its outputs) and calls `observe`.
  Status RunNode(int k, std::map<std::string, Tensor>* values, const Observer& observe) const;
  // The graph's outputs, moved out of `values` (or copied from the initializers).
  StatusOr<std::map<std::string, Tensor>> GraphOutputs(std::map<std::string, Tensor>* values) const;

  onnx::GraphProto graph_;  // the nodes (initializers' data left out)
  int64_t opset_ = 0;
  std::vector<int> order_;  // node indices, producers first
  std::map<std::string, Tensor> initializers_;
  std::vector<GraphInput> inputs_;
  std::vector<std::string> outputs_;
  std::map<std::string, size_t> last_use_;  // value -> position in order_ of its last reader
};

}  // namespace reinit::exec

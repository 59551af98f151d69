// Naming the parameters of an ONNX model the way a framework names them: the initializers as
// they are (onnx), PyTorch state_dict keys recovered from what torch.onnx writes (torch), or
// Keras weight names and layouts recovered from what tf2onnx writes (keras). The result says,
// for each exported name, which stored tensor it comes from and how its elements are moved
// (a transpose, a direction of an RNN, its gates reordered), and lists every float tensor that
// has no name under the chosen convention with the reason. Nothing is guessed: a tensor whose
// values are not the framework's parameter (a BatchNorm folded into a conv's weight that is
// kept) is listed, not named.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "status.h"

namespace reinit {

enum class NameStyle { kOnnx, kTorch, kKeras };

// "onnx", "torch", "keras".
const char* NameStyleName(NameStyle style);
// Usage error listing the alternatives for an unknown name.
StatusOr<NameStyle> ParseNameStyle(const std::string& name);

// How an exported tensor's elements come from its source: the `chunks` (element offset,
// count) of the source in row-major order, concatenated (empty: all of it), seen as `dims`,
// then permuted by `perm` (empty: none). The exported shape is dims permuted by perm.
struct Transform {
  std::vector<std::pair<int64_t, int64_t>> chunks;
  std::vector<int64_t> dims;
  std::vector<int64_t> perm;
  std::string text;  // for the sidecar: "none", "transpose [1,0]", "direction 1 of 2, ..."
};

std::vector<int64_t> TransformedShape(const Transform& t);

struct NamedTensor {
  std::string name;    // the exported name
  std::string source;  // the stored tensor (initializer or Constant output); empty: synthesized
  std::string reads;   // the name the layer reads it by (an Identity's output, or `source`)
  std::string node;    // the node the name was recovered from ("" when by name)
  std::string role;    // weight, bias, running_mean, ... as the naming rule sees it
  Transform transform;
  // A tensor the ONNX graph does not hold but the framework's state has (torch's BatchNorm
  // num_batches_tracked, an int64 0): its ONNX data type and its value.
  int32_t synthesized_type = 0;
  int64_t synthesized_value = 0;
};

struct UnmappedTensor {
  // folded_batchnorm (a BatchNorm's tensors, absent from the export), folded_shift (a conv bias
  // that is a folded BatchNorm's shift), folded_weight (a kept conv weight holding weight·γ/σ),
  // conflict (a second tensor for a name already given), no_rule (no naming rule applies),
  // tied (a second framework name of an exported tensor, another module's weight, not written).
  std::string kind;
  std::string source;  // the ONNX tensor, or "" for a framework tensor with no ONNX tensor
  std::string name;    // the framework name(s) it would have, where known
  std::string node;    // the node the reason is about
  std::string reason;
};

struct NameMapping {
  std::vector<NamedTensor> tensors;
  std::vector<UnmappedTensor> unmapped;
  std::vector<std::string> warnings;
};

// `redrawn(name)`: whether the tensor's values are drawn afresh by the plan being exported
// (a folded conv weight is then a fresh draw for the conv alone and can be named; otherwise it
// holds weight·γ/σ and cannot). Only the main graph's tensors are named.
NameMapping MapNames(const onnx::ModelProto& model, NameStyle style,
                     const std::function<bool(const std::string&)>& redrawn);

}  // namespace reinit

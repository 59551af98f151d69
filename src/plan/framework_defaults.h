// Framework starting points: what PyTorch, Keras and Flax layers hold right after construction,
// so a model can start the way its target framework would start it (REFERENCE.md §3).
//
//   torch-default  Linear/Conv/ConvTranspose weight kaiming_uniform(a=√5) = U(±1/√fan_in) and
//                  bias U(±1/√fan_in), fan_in as PyTorch computes it (the torch fan
//                  convention, groups and transposition ignored); LSTM/GRU/RNN every W, R, B
//                  U(±1/√H); Embedding N(0, 1); norms scale 1, shift 0.
//   keras-default  Dense/Conv kernel glorot_uniform (Keras' fans: in·rf and out·rf; a
//                  depthwise kernel has in = C, out = multiplier), bias 0; LSTM/GRU/RNN kernel
//                  glorot_uniform over all gates ([I, G·H]: fan_out = G·H), recurrent kernel
//                  orthogonal over all gates ([H, G·H]), bias 0 with unit_forget_bias (LSTM
//                  forget gate 1); Embedding U(±0.05); norms scale 1, shift 0.
//   flax-default   Dense/Conv kernel lecun_normal (truncated normal, variance 1/fan_in), bias 0;
//                  LSTM/GRU per-gate input kernels lecun_normal, per-gate recurrent kernels
//                  orthogonal, bias 0; Embed N(0, 1/D); norms scale 1, shift 0.
// PyTorch's MultiheadAttention (xavier_uniform on the fused in-projection) is not recognised
// in an exported graph; its projections get the Linear default.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/layers.h"
#include "plan/registry.h"

namespace reinit {

// The framework a scheme name stands for (its registry row's), if it is one of the three.
std::optional<Framework> FrameworkFor(std::string_view scheme);

// How one tensor (or every block of a recurrent tensor) is drawn.
struct FrameworkDraw {
  std::string scheme;  // a registry scheme: uniform, normal, zero, xavier-uniform, ...
  double fan_in = 0, fan_out = 0;
  double std = 0, bound = 0;  // for the naive schemes
  std::string why;
};

// Dense, conv and embedding layers: the weight, and the bias.
FrameworkDraw FrameworkWeight(Framework f, const LayerRule& rule, const onnx::NodeProto& node,
                              const std::vector<int64_t>& shape);
FrameworkDraw FrameworkBias(Framework f, const LayerRule& rule, const onnx::NodeProto& node,
                            const std::vector<int64_t>& weight_shape);

// Recurrent layers: whether the framework draws W and R per gate (flax) or over all gates of a
// direction at once (keras) or as whole tensors (torch), and each part's draw.
enum class RecurrentGrain { kTensor, kDirection, kGate };
struct RecurrentDraws {
  RecurrentGrain grain;
  FrameworkDraw input, recurrence, bias;
  double forget_bias = 0;
};
RecurrentDraws FrameworkRecurrent(Framework f, int64_t input, int64_t hidden, int64_t gates);

}  // namespace reinit

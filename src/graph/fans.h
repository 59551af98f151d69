// Fans: how many inputs feed each output of a layer (fan_in) and how many outputs each input
// feeds (fan_out), from the weight's layout and the node's attributes.
//
// Two conventions (docs/layers.md, "Fan conventions"):
//  onnx  (default) — what the forward pass really sums over:
//    Gemm B [K, N] (or [N, K] with transB=1): fan_in = K, fan_out = N
//    MatMul constant B [..., K, N]: fan_in = K, fan_out = N (leading dims are batch)
//    MatMul constant A [..., M, K]: fan_in = K, fan_out = M
//    Conv W [M, C/g, k...]: fan_in = (C/g)·∏k, fan_out = (M/g)·∏k
//    ConvTranspose W [C, M/g, k...]: each output sums over C/g input channels and, on average,
//      ∏max(1, k_d / s_d) kernel taps, so fan_in = (C/g)·∏max(1, k_d/s_d); each input reaches
//      fan_out = (M/g)·∏k outputs.
//  torch — PyTorch's _calculate_fan_in_and_fan_out applied to the weight as PyTorch stores it:
//    fan_in = shape[1]·∏shape[2:], fan_out = shape[0]·∏shape[2:], where a Gemm/MatMul weight
//    is taken as Linear's [N, K] and a conv weight as stored (so groups and the transposed
//    layout are ignored, as PyTorch does).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "graph/layers.h"
#include "status.h"

namespace reinit {

enum class FanConvention { kOnnx, kTorch };

struct Fans {
  double in = 0;
  double out = 0;
  // The weight axis that indexes output units: the rows of an orthogonal initialization.
  int output_axis = 0;
};

// Gates of a recurrent layout: LSTM 4 (i, o, f, c), GRU 3 (z, r, h), RNN 1; 1 otherwise.
int64_t GateCount(WeightLayout layout);

//    Embedding table [V, D]: fan_in = D, fan_out = V (both conventions, as PyTorch computes it)
//    LSTM/GRU/RNN W [dirs, G·H, I]: per gate block fan_in = I, fan_out = H; torch: fan_out = G·H
// Errors (rank too small, a group that does not divide the channels, a zero dim) give the
// weight's shape and what is wrong with it; the caller adds the layer and weight names as
// context (MakePlan does).
StatusOr<Fans> ComputeFans(const LayerRule& rule, const onnx::NodeProto& node,
                           const std::vector<int64_t>& weight_shape, FanConvention convention);

// For Conv and ConvTranspose: the channel count of the data input (dim 1, when known, else
// <= 0 to skip) must be what the weight and group imply — C = (C/group)·group for Conv, C =
// shape[0] for ConvTranspose. The onnx checker and shape inference do not check this.
Status CheckInputChannels(const LayerRule& rule, const onnx::NodeProto& node,
                          const std::vector<int64_t>& weight_shape, int64_t input_channels);

}  // namespace reinit

#include "graph/fans.h"

#include <algorithm>
#include <string>

namespace reinit {

namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Status WeightShapeError(const std::vector<int64_t>& shape, const std::string& what) {
  return ModelError("weight shape " + ShapeText(shape) + ": " + what);
}

// LSTM, GRU, RNN: W [D, G·H, I]: each gate block [H, I] maps I inputs to H units.
StatusOr<Fans> RecurrentFans(const LayerRule& rule, const onnx::NodeProto& node,
                             const std::vector<int64_t>& shape, FanConvention convention) {
  if (shape.size() != 3)
    return WeightShapeError(shape, std::string(rule.op) + " W must have rank 3");
  const int64_t gates = GateCount(rule.layout);
  if (shape[1] % gates != 0) {
    return WeightShapeError(shape, "dim 1 (" + std::to_string(shape[1]) + ") is not " +
                                       std::to_string(gates) + " gates of equal size");
  }
  const int64_t hidden = shape[1] / gates;
  const int64_t declared = IntAttribute(node, "hidden_size", hidden);
  if (declared != hidden) {
    return WeightShapeError(shape, "hidden_size " + std::to_string(declared) + " disagrees with " +
                                       std::to_string(gates) + " gates of " +
                                       std::to_string(hidden));
  }
  Fans fans;
  fans.in = static_cast<double>(shape[2]);
  fans.out = static_cast<double>(convention == FanConvention::kTorch ? shape[1] : hidden);
  fans.output_axis = 1;
  return fans;
}

// ConvTranspose, onnx convention: output taps per output element average k_d / s_d per
// spatial dim.
StatusOr<Fans> ConvTransposeFans(const onnx::NodeProto& node, const std::vector<int64_t>& shape,
                                 int64_t group, double receptive) {
  const size_t rank = shape.size();
  const std::vector<int64_t> strides = IntsAttribute(node, "strides");
  if (!strides.empty() && strides.size() != rank - 2) {
    return WeightShapeError(shape, "strides has " + std::to_string(strides.size()) +
                                       " values for " + std::to_string(rank - 2) + " spatial dims");
  }
  double taps = 1;
  for (size_t d = 2; d < rank; ++d) {
    const int64_t s = strides.empty() ? 1 : strides[d - 2];
    if (s < 1) return WeightShapeError(shape, "stride " + std::to_string(s) + " must be >= 1");
    // With k < s some outputs get no tap and the rest exactly one; count the ones that do.
    taps *= std::max(1.0, static_cast<double>(shape[d]) / static_cast<double>(s));
  }
  Fans fans;
  fans.in = static_cast<double>(shape[0] / group) * taps;
  fans.out = static_cast<double>(shape[1]) * receptive;
  fans.output_axis = 1;
  return fans;
}

// Convolutions: W [out-or-in, per-group, k...].
StatusOr<Fans> ConvFans(const LayerRule& rule, const onnx::NodeProto& node,
                        const std::vector<int64_t>& shape, FanConvention convention) {
  const size_t rank = shape.size();
  if (rank < 3)
    return WeightShapeError(shape, std::string(rule.op) + " weight must have rank >= 3");
  const int64_t group = IntAttribute(node, "group", 1);
  if (group < 1) return WeightShapeError(shape, "group " + std::to_string(group) + " must be >= 1");
  double receptive = 1;
  for (size_t d = 2; d < rank; ++d) receptive *= static_cast<double>(shape[d]);

  // An invalid model whichever convention is asked for.
  if (shape[0] % group != 0) {
    return WeightShapeError(
        shape, "group " + std::to_string(group) + " does not divide " + std::to_string(shape[0]) +
                   (rule.layout == WeightLayout::kConv ? " output channels" : " input channels"));
  }

  Fans fans;
  if (convention == FanConvention::kTorch) {
    fans.in = static_cast<double>(shape[1]) * receptive;
    fans.out = static_cast<double>(shape[0]) * receptive;
    fans.output_axis = rule.layout == WeightLayout::kConv ? 0 : 1;
    return fans;
  }
  if (rule.layout == WeightLayout::kConv) {
    fans.in = static_cast<double>(shape[1]) * receptive;
    fans.out = static_cast<double>(shape[0] / group) * receptive;
    fans.output_axis = 0;
    return fans;
  }
  return ConvTransposeFans(node, shape, group, receptive);
}

}  // namespace

int64_t GateCount(WeightLayout layout) {
  return layout == WeightLayout::kLstm ? 4 : layout == WeightLayout::kGru ? 3 : 1;
}

StatusOr<Fans> ComputeFans(const LayerRule& rule, const onnx::NodeProto& node,
                           const std::vector<int64_t>& shape, FanConvention convention) {
  const size_t rank = shape.size();
  for (int64_t d : shape) {
    if (d <= 0) return WeightShapeError(shape, "has a dimension <= 0");
  }
  Fans fans;
  switch (rule.layout) {
    case WeightLayout::kGemm: {
      if (rank != 2) return WeightShapeError(shape, "Gemm's B must have rank 2");
      const bool trans_b = IntAttribute(node, "transB", 0) != 0;
      const int64_t k = trans_b ? shape[1] : shape[0];
      const int64_t n = trans_b ? shape[0] : shape[1];
      fans = {static_cast<double>(k), static_cast<double>(n), trans_b ? 0 : 1};
      return fans;  // Linear's [N, K]: both conventions agree.
    }
    case WeightLayout::kMatMulB: {
      if (rank == 0)
        return WeightShapeError(shape, "MatMul's constant operand must have rank >= 1");
      const int64_t k = rank == 1 ? shape[0] : shape[rank - 2];
      const int64_t n = rank == 1 ? 1 : shape[rank - 1];
      fans = {static_cast<double>(k), static_cast<double>(n), rank == 1 ? 0 : int(rank) - 1};
      return fans;
    }
    case WeightLayout::kMatMulA: {
      if (rank == 0)
        return WeightShapeError(shape, "MatMul's constant operand must have rank >= 1");
      const int64_t k = shape[rank - 1];
      const int64_t m = rank == 1 ? 1 : shape[rank - 2];
      fans = {static_cast<double>(k), static_cast<double>(m), rank == 1 ? 0 : int(rank) - 2};
      return fans;
    }
    case WeightLayout::kEmbedding: {
      // Table [V, D]: each row is a D-vector; tied to an output projection it is a D -> V map.
      if (rank != 2) return WeightShapeError(shape, "an embedding table must have rank 2");
      fans = {static_cast<double>(shape[1]), static_cast<double>(shape[0]), 0};
      return fans;
    }
    case WeightLayout::kLstm:
    case WeightLayout::kGru:
    case WeightLayout::kRnn:
      return RecurrentFans(rule, node, shape, convention);
    case WeightLayout::kNorm:
      return WeightShapeError(shape, "a normalization has no fans");
    case WeightLayout::kConv:
    case WeightLayout::kConvTranspose:
      break;
  }
  return ConvFans(rule, node, shape, convention);
}

Status CheckInputChannels(const LayerRule& rule, const onnx::NodeProto& node,
                          const std::vector<int64_t>& shape, int64_t input_channels) {
  if (input_channels <= 0 || shape.size() < 2) return Status::Ok();
  int64_t expected = 0;
  std::string why;
  if (rule.layout == WeightLayout::kConv) {
    const int64_t group = IntAttribute(node, "group", 1);
    expected = shape[1] * group;
    why = "weight [M, C/group = " + std::to_string(shape[1]) + ", ...] with group " +
          std::to_string(group);
  } else if (rule.layout == WeightLayout::kConvTranspose) {
    expected = shape[0];
    why = "weight [C = " + std::to_string(shape[0]) + ", ...]";
  } else {
    return Status::Ok();
  }
  if (expected == input_channels) return Status::Ok();
  return ModelError(why + " expects " + std::to_string(expected) + " input channels, but input '" +
                    node.input(0) + "' has " + std::to_string(input_channels));
}

}  // namespace reinit

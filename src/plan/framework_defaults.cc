#include "plan/framework_defaults.h"

#include <cmath>

#include "graph/graph_index.h"

namespace reinit {

namespace {

// PyTorch's _calculate_fan_in_and_fan_out on the weight as PyTorch stores it: Linear [N, K],
// convolutions as ONNX stores them.
std::pair<double, double> TorchFans(const LayerRule& rule, const onnx::NodeProto& node,
                                    const std::vector<int64_t>& shape) {
  if (rule.layout == WeightLayout::kGemm) {
    const bool trans_b = IntAttribute(node, "transB", 0) != 0;
    return {double(trans_b ? shape[1] : shape[0]), double(trans_b ? shape[0] : shape[1])};
  }
  if (rule.layout == WeightLayout::kMatMulB) {
    const size_t r = shape.size();
    return {double(r >= 2 ? shape[r - 2] : shape[0]), double(r >= 2 ? shape[r - 1] : 1)};
  }
  if (rule.layout == WeightLayout::kMatMulA) {
    const size_t r = shape.size();
    return {double(shape[r - 1]), double(r >= 2 ? shape[r - 2] : 1)};
  }
  if (rule.layout == WeightLayout::kEmbedding) return {double(shape[1]), double(shape[0])};
  double rf = 1;
  for (size_t d = 2; d < shape.size(); ++d) rf *= double(shape[d]);
  return {double(shape[1]) * rf, double(shape[0]) * rf};
}

// Keras' fans: kernels are channels-last [k..., in, out]; for ONNX's layouts that is PyTorch's
// count, except a depthwise kernel, which Keras stores as [k..., C, multiplier].
std::pair<double, double> KerasFans(const LayerRule& rule, const onnx::NodeProto& node,
                                    const std::vector<int64_t>& shape) {
  auto fans = TorchFans(rule, node, shape);
  const int64_t group = IntAttribute(node, "group", 1);
  if (rule.layout == WeightLayout::kConv && group > 1 && shape[1] == 1 && shape.size() >= 3) {
    double rf = 1;
    for (size_t d = 2; d < shape.size(); ++d) rf *= double(shape[d]);
    return {double(group) * rf, double(shape[0] / group) * rf};
  }
  return fans;
}

// Flax's fan_in: (C/g)·∏k for Conv (its kernel [k..., C/g, M]), C·∏k for ConvTranspose
// ([k..., C, M]), K for Dense, D for Embed.
double FlaxFanIn(const LayerRule& rule, const onnx::NodeProto& node,
                 const std::vector<int64_t>& shape) {
  if (rule.layout == WeightLayout::kConv || rule.layout == WeightLayout::kConvTranspose) {
    double rf = 1;
    for (size_t d = 2; d < shape.size(); ++d) rf *= double(shape[d]);
    const int64_t group = IntAttribute(node, "group", 1);
    return rule.layout == WeightLayout::kConv ? double(shape[1]) * rf
                                              : double(shape[0] / std::max<int64_t>(1, group)) * rf;
  }
  return TorchFans(rule, node, shape).first;
}

}  // namespace

std::optional<Framework> FrameworkFor(std::string_view scheme) {
  const Scheme* s = SchemeNamed(scheme);
  return s ? s->framework : std::nullopt;
}

FrameworkDraw FrameworkWeight(Framework f, const LayerRule& rule, const onnx::NodeProto& node,
                              const std::vector<int64_t>& shape) {
  const bool embedding = rule.layout == WeightLayout::kEmbedding;
  FrameworkDraw d;
  switch (f) {
    case Framework::kTorch: {
      if (embedding) {
        d = {"normal", 0, 0, 1.0, 0, "torch-default: nn.Embedding N(0, 1)"};
        return d;
      }
      auto [in, out] = TorchFans(rule, node, shape);
      d = {"uniform",
           in,
           out,
           0,
           1 / std::sqrt(in),
           "torch-default: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)), torch fans"};
      return d;
    }
    case Framework::kKeras: {
      if (embedding) {
        d = {"uniform", 0, 0, 0, 0.05, "keras-default: Embedding uniform(+-0.05)"};
        return d;
      }
      auto [in, out] = KerasFans(rule, node, shape);
      d = {"xavier-uniform", in, out, 0, 0, "keras-default: glorot_uniform kernel, Keras fans"};
      return d;
    }
    case Framework::kFlax: {
      if (embedding) {
        d = {"normal", 0,
             0,        1 / std::sqrt(double(shape[1])),
             0,        "flax-default: Embed variance_scaling(1, fan_in, normal): N(0, 1/D)"};
        return d;
      }
      const double in = FlaxFanIn(rule, node, shape);
      d = {"lecun-truncated-normal",
           in,
           TorchFans(rule, node, shape).second,
           0,
           0,
           "flax-default: lecun_normal (truncated) kernel"};
      return d;
    }
  }
  return d;
}

FrameworkDraw FrameworkBias(Framework f, const LayerRule& rule, const onnx::NodeProto& node,
                            const std::vector<int64_t>& weight_shape) {
  if (f == Framework::kTorch && rule.layout != WeightLayout::kEmbedding) {
    const double in = TorchFans(rule, node, weight_shape).first;
    return {"uniform", in, 0, 0, 1 / std::sqrt(in), "torch-default: bias U(+-1/sqrt(fan_in))"};
  }
  return {"zero", 0, 0, 0, 0, "bias 0"};
}

RecurrentDraws FrameworkRecurrent(Framework f, int64_t input, int64_t hidden, int64_t gates) {
  const double h = double(hidden), i = double(input), g = double(gates);
  switch (f) {
    case Framework::kTorch: {
      FrameworkDraw u = {"uniform",
                         0,
                         0,
                         0,
                         1 / std::sqrt(h),
                         "torch-default: every RNN parameter U(+-1/sqrt(H))"};
      return {RecurrentGrain::kTensor, u, u, u, 0};
    }
    case Framework::kKeras:
      return {RecurrentGrain::kDirection,
              {"xavier-uniform", i, g * h, 0, 0,
               "keras-default: glorot_uniform kernel over all gates [I, G*H]"},
              {"orthogonal", h, g * h, 0, 0,
               "keras-default: orthogonal recurrent kernel over all gates [H, G*H]"},
              {"zero", 0, 0, 0, 0, "keras-default: bias 0, unit_forget_bias"},
              1.0};
    case Framework::kFlax:
      return {RecurrentGrain::kGate,
              {"lecun-truncated-normal", i, h, 0, 0, "flax-default: lecun_normal per gate"},
              {"orthogonal", h, h, 0, 0, "flax-default: orthogonal recurrent kernel per gate"},
              {"zero", 0, 0, 0, 0, "flax-default: bias 0"},
              0};
  }
  return {};
}

}  // namespace reinit

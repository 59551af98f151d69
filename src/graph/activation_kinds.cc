#include "graph/activation_kinds.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace reinit {

namespace {

double PhiSigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double PhiSoftplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }

constexpr std::string_view kTorchGain = "torch calculate_gain";

// auto's reasons, shared by the kinds of one family.
constexpr std::string_view kHeRelu =
    "He 2015: variance 2/fan_in keeps the signal through ReLU units";
constexpr std::string_view kHeReluLike = "ReLU-like unit: He with its second-moment gain";
constexpr std::string_view kGlorotSaturating =
    "Glorot 2010: saturating unit, variance 2/(fan_in+fan_out)";

std::vector<ActivationTraits> BuildTable() {
  using K = ActivationKind;
  return {
      {.kind = K::kLinear,
       .name = "linear",
       .phi = [](double x, double) { return x; },
       .fixed_gain = [](double) { return 1.0; },
       .gain_source = kTorchGain,
       .auto_scheme = "xavier-uniform",
       .auto_why = "Glorot 2010: linear output, gain 1"},
      {.kind = K::kRelu,
       .name = "relu",
       .phi = [](double x, double) { return x > 0 ? x : 0; },
       .fixed_gain = [](double) { return std::sqrt(2.0); },
       .gain_source = kTorchGain,
       .auto_scheme = "he-normal",
       .auto_why = kHeRelu},
      {.kind = K::kLeakyRelu,
       .name = "leaky_relu",
       .phi = [](double x, double a) { return x > 0 ? x : a * x; },
       .takes_param = true,
       .shown_param = 0.01,
       .fixed_gain = [](double a) { return std::sqrt(2 / (1 + a * a)); },
       .gain_source = "torch calculate_gain (leaky_relu)",
       .auto_scheme = "he-normal",
       .auto_why = kHeRelu},
      // PyTorch has no gain for prelu; its leaky_relu formula at the learned slope.
      {.kind = K::kPrelu,
       .name = "prelu",
       .phi = [](double x, double a) { return x > 0 ? x : a * x; },
       .takes_param = true,
       .shown_param = 0.25,
       .fixed_gain = [](double a) { return std::sqrt(2 / (1 + a * a)); },
       .gain_source = "torch calculate_gain (leaky_relu)",
       .auto_scheme = "he-normal",
       .auto_why = kHeRelu},
      {.kind = K::kElu,
       .name = "elu",
       .phi = [](double x, double a) { return x > 0 ? x : a * std::expm1(x); },
       .takes_param = true,
       .auto_scheme = "he-normal",
       .auto_why = kHeReluLike},
      {.kind = K::kCelu,
       .name = "celu",
       .phi = [](double x, double a) { return x > 0 ? x : a * std::expm1(x / a); },
       .takes_param = true,
       .auto_scheme = "he-normal",
       .auto_why = kHeReluLike},
      {.kind = K::kSelu,
       .name = "selu",
       .phi =
           [](double x, double) {
             constexpr double kAlpha = 1.6732632423543772, kScale = 1.0507009873554805;
             return kScale * (x > 0 ? x : kAlpha * std::expm1(x));
           },
       .fixed_gain = [](double) { return 0.75; },
       .gain_source = kTorchGain,
       .auto_scheme = "lecun-normal",
       .auto_why = "Klambauer 2017: self-normalizing SELU nets need variance 1/fan_in"},
      {.kind = K::kThresholdedRelu,
       .name = "thresholded_relu",
       .phi = [](double x, double a) { return x > a ? x : 0; },
       .takes_param = true,
       .auto_scheme = "he-normal",
       .auto_why = kHeRelu},
      {.kind = K::kSigmoid,
       .name = "sigmoid",
       .phi = [](double x, double) { return PhiSigmoid(x); },
       .fixed_gain = [](double) { return 1.0; },
       .gain_source = kTorchGain,
       .auto_scheme = "xavier-uniform",
       .auto_why = kGlorotSaturating},
      // ONNX's default slope 0.2; the gain is sigmoid's, whose piecewise-linear form it is.
      {.kind = K::kHardSigmoid,
       .name = "hard_sigmoid",
       .phi = [](double x, double) { return std::clamp(0.2 * x + 0.5, 0.0, 1.0); },
       .fixed_gain = [](double) { return 1.0; },
       .gain_source = "as sigmoid",
       .auto_scheme = "xavier-uniform",
       .auto_why = kGlorotSaturating},
      {.kind = K::kTanh,
       .name = "tanh",
       .phi = [](double x, double) { return std::tanh(x); },
       .fixed_gain = [](double) { return 5.0 / 3.0; },
       .gain_source = kTorchGain,
       .auto_scheme = "xavier-uniform",
       .auto_why = kGlorotSaturating},
      {.kind = K::kSoftplus,
       .name = "softplus",
       .phi = [](double x, double) { return PhiSoftplus(x); },
       .auto_scheme = "he-normal",
       .auto_why = kHeReluLike},
      {.kind = K::kSoftsign,
       .name = "softsign",
       .phi = [](double x, double) { return x / (1 + std::abs(x)); },
       .auto_scheme = "xavier-uniform",
       .auto_why = kGlorotSaturating},
      {.kind = K::kHardSwish,
       .name = "hard_swish",
       .phi = [](double x, double) { return x * std::clamp(x / 6 + 0.5, 0.0, 1.0); },
       .auto_scheme = "he-normal",
       .auto_why = kHeReluLike},
      {.kind = K::kMish,
       .name = "mish",
       .phi = [](double x, double) { return x * std::tanh(PhiSoftplus(x)); },
       .auto_scheme = "he-normal",
       .auto_why = kHeReluLike},
      {.kind = K::kGelu,
       .name = "gelu",
       .phi = [](double x, double) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); },
       .auto_scheme = "he-normal",
       .auto_why = kHeReluLike},
      {.kind = K::kGeluTanh,
       .name = "gelu_tanh",
       .phi =
           [](double x, double) {
             const double k = std::sqrt(2 / M_PI);
             return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
           },
       .auto_scheme = "he-normal",
       .auto_why = kHeReluLike},
      {.kind = K::kSilu,
       .name = "silu",
       .phi = [](double x, double) { return x * PhiSigmoid(x); },
       .auto_scheme = "he-normal",
       .auto_why = kHeReluLike},
      {.kind = K::kRelu6,
       .name = "relu6",
       .phi = [](double x, double) { return std::clamp(x, 0.0, 6.0); },
       .auto_scheme = "he-normal",
       .auto_why = kHeRelu},
  };
}

}  // namespace

const std::vector<ActivationTraits>& AllActivationTraits() {
  static const std::vector<ActivationTraits> kTable = BuildTable();
  return kTable;
}

const ActivationTraits& TraitsOf(ActivationKind kind) {
  return AllActivationTraits()[static_cast<size_t>(kind)];
}

std::string_view ActivationName(ActivationKind kind) { return TraitsOf(kind).name; }

std::optional<ActivationKind> ActivationKindNamed(std::string_view name) {
  static const std::unordered_map<std::string_view, ActivationKind> kByName = [] {
    std::unordered_map<std::string_view, ActivationKind> m;
    for (const auto& t : AllActivationTraits()) m.emplace(t.name, t.kind);
    return m;
  }();
  auto it = kByName.find(name);
  if (it == kByName.end()) return std::nullopt;
  return it->second;
}

}  // namespace reinit

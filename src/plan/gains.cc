#include "plan/gains.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

namespace reinit {

namespace {

double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double Softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }

// φ for each activation kind, at parameter a (slope or alpha) where it takes one.
const std::unordered_map<std::string_view, std::function<double(double, double)>>& Functions() {
  static const std::unordered_map<std::string_view, std::function<double(double, double)>> kFns = {
      {"linear", [](double x, double) { return x; }},
      {"relu", [](double x, double) { return x > 0 ? x : 0; }},
      {"leaky_relu", [](double x, double a) { return x > 0 ? x : a * x; }},
      {"prelu", [](double x, double a) { return x > 0 ? x : a * x; }},
      {"elu", [](double x, double a) { return x > 0 ? x : a * std::expm1(x); }},
      {"celu", [](double x, double a) { return x > 0 ? x : a * std::expm1(x / a); }},
      {"selu",
       [](double x, double) {
         constexpr double kAlpha = 1.6732632423543772, kScale = 1.0507009873554805;
         return kScale * (x > 0 ? x : kAlpha * std::expm1(x));
       }},
      {"thresholded_relu", [](double x, double a) { return x > a ? x : 0; }},
      {"sigmoid", [](double x, double) { return Sigmoid(x); }},
      {"hard_sigmoid", [](double x, double) { return std::clamp(0.2 * x + 0.5, 0.0, 1.0); }},
      {"tanh", [](double x, double) { return std::tanh(x); }},
      {"softplus", [](double x, double) { return Softplus(x); }},
      {"softsign", [](double x, double) { return x / (1 + std::abs(x)); }},
      {"hard_swish", [](double x, double) { return x * std::clamp(x / 6 + 0.5, 0.0, 1.0); }},
      {"mish", [](double x, double) { return x * std::tanh(Softplus(x)); }},
      {"gelu", [](double x, double) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
      {"gelu_tanh",
       [](double x, double) {
         const double k = std::sqrt(2 / M_PI);
         return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
       }},
      {"silu", [](double x, double) { return x * Sigmoid(x); }},
      {"relu6", [](double x, double) { return std::clamp(x, 0.0, 6.0); }},
  };
  return kFns;
}

}  // namespace

const std::vector<std::string_view>& ActivationKinds() {
  static const std::vector<std::string_view> kKinds = {
      "linear",    "relu",         "leaky_relu", "prelu",
      "elu",       "celu",         "selu",       "thresholded_relu",
      "sigmoid",   "hard_sigmoid", "tanh",       "softplus",
      "softsign",  "hard_swish",   "mish",       "gelu",
      "gelu_tanh", "silu",         "relu6"};
  return kKinds;
}

StatusOr<double> SecondMoment(std::string_view kind, double param) {
  auto it = Functions().find(kind);
  if (it == Functions().end()) return ModelError("unknown activation '" + std::string(kind) + "'");
  // Composite Simpson on [-12, 12] (the Gaussian tail beyond is below 1e-30), split at every
  // point where some φ has a kink or a jump (0, ±2.5, ±3, 6 and the parameter), so that each
  // piece is smooth and the error stays below 1e-9.
  auto f = [&](double z) {
    const double y = it->second(z, param);
    return y * y * std::exp(-0.5 * z * z);
  };
  std::vector<double> cuts = {-12, -3, -2.5, 0, 2.5, 3, 6, 12};
  if (param > -12 && param < 12) cuts.push_back(param);
  std::sort(cuts.begin(), cuts.end());
  constexpr int kPanels = 4000;  // even, per piece
  double total = 0;
  for (size_t c = 0; c + 1 < cuts.size(); ++c) {
    const double lo = cuts[c], hi = cuts[c + 1], h = (hi - lo) / kPanels;
    if (h <= 0) continue;
    // One-sided values at the ends: φ may jump there (thresholded_relu at its parameter).
    double sum = f(std::nextafter(lo, hi)) + f(std::nextafter(hi, lo));
    for (int i = 1; i < kPanels; ++i) sum += (i % 2 ? 4 : 2) * f(lo + i * h);
    total += sum * h / 3;
  }
  return total / std::sqrt(2 * M_PI);
}

StatusOr<GainInfo> GainFor(std::string_view kind, double param) {
  static const std::string kTorch = "torch calculate_gain";
  if (kind == "linear" || kind == "sigmoid") return GainInfo{1, kTorch};
  if (kind == "tanh") return GainInfo{5.0 / 3.0, kTorch};
  if (kind == "relu") return GainInfo{std::sqrt(2.0), kTorch};
  if (kind == "leaky_relu" || kind == "prelu") {
    return GainInfo{std::sqrt(2 / (1 + param * param)), kTorch + " (leaky_relu)"};
  }
  if (kind == "selu") return GainInfo{0.75, kTorch};
  if (kind == "hard_sigmoid") return GainInfo{1, "as sigmoid"};
  auto m = SecondMoment(kind, param);
  if (!m.ok()) return m.status();
  return GainInfo{1 / std::sqrt(*m), "second moment 1/sqrt(E[phi(z)^2])"};
}

}  // namespace reinit

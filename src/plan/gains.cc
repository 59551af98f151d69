#include "plan/gains.h"

#include <algorithm>
#include <cmath>

#include "graph/activation_kinds.h"

namespace reinit {

const std::vector<std::string_view>& ActivationKinds() {
  static const std::vector<std::string_view> kKinds = [] {
    std::vector<std::string_view> names;
    for (const auto& t : AllActivationTraits()) names.push_back(t.name);
    return names;
  }();
  return kKinds;
}

StatusOr<double> SecondMoment(std::string_view kind, double param) {
  const auto known = ActivationKindNamed(kind);
  if (!known) return ModelError("unknown activation '" + std::string(kind) + "'");
  const auto phi = TraitsOf(*known).phi;
  // Composite Simpson on [-12, 12] (the Gaussian tail beyond is below 1e-30), split at every
  // point where some φ has a kink or a jump (0, ±2.5, ±3, 6 and the parameter), so that each
  // piece is smooth and the error stays below 1e-9.
  auto f = [&](double z) {
    const double y = phi(z, param);
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
  if (const auto known = ActivationKindNamed(kind)) {
    const ActivationTraits& traits = TraitsOf(*known);
    if (traits.fixed_gain)
      return GainInfo{traits.fixed_gain(param), std::string(traits.gain_source)};
  }
  auto m = SecondMoment(kind, param);
  if (!m.ok()) return m.status();
  return GainInfo{1 / std::sqrt(*m), "second moment 1/sqrt(E[phi(z)^2])"};
}

}  // namespace reinit

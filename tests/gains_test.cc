// Gains against PyTorch's calculate_gain and against the second-moment values published in
// REFERENCE.md (computed there independently), and the quadrature against closed forms.
#include "plan/gains.h"

#include <gtest/gtest.h>

#include <cmath>

namespace reinit {
namespace gains_test {
namespace {

double Gain(std::string_view kind, double param = 0) {
  auto g = GainFor(kind, param);
  EXPECT_TRUE(g.ok()) << kind;
  return g.ok() ? g->gain : 0;
}

TEST(Gains, TorchCalculateGainValues) {
  EXPECT_DOUBLE_EQ(Gain("linear"), 1);
  EXPECT_DOUBLE_EQ(Gain("sigmoid"), 1);
  EXPECT_DOUBLE_EQ(Gain("tanh"), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(Gain("relu"), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(Gain("selu"), 0.75);
  for (double a : {0.01, 0.1, 0.2, 0.5}) {
    EXPECT_DOUBLE_EQ(Gain("leaky_relu", a), std::sqrt(2.0 / (1 + a * a))) << a;
    EXPECT_DOUBLE_EQ(Gain("prelu", a), std::sqrt(2.0 / (1 + a * a))) << a;
  }
}

// 1/√E[φ(z)²] as listed in REFERENCE.md §1 (4 decimals).
TEST(Gains, SecondMomentGainsMatchPublishedValues) {
  EXPECT_NEAR(Gain("gelu"), 1.5335, 1e-4);
  EXPECT_NEAR(Gain("silu"), 1.6765, 1e-4);
  EXPECT_NEAR(Gain("mish"), 1.4868, 1e-4);
  EXPECT_NEAR(Gain("elu", 1.0), 1.2452, 1e-4);
  EXPECT_NEAR(Gain("hard_swish"), 1.7367, 1e-4);
  EXPECT_NEAR(Gain("softplus"), 1.0419, 1e-4);
  EXPECT_NEAR(Gain("relu6"), 1.4142, 1e-4);
}

TEST(Gains, SecondMomentAgainstClosedForms) {
  // ReLU: E[max(z,0)²] = 1/2 exactly.
  EXPECT_NEAR(*SecondMoment("relu", 0), 0.5, 1e-9);
  // Identity: E[z²] = 1.
  EXPECT_NEAR(*SecondMoment("linear", 0), 1.0, 1e-9);
  // Leaky: (1 + α²)/2.
  EXPECT_NEAR(*SecondMoment("leaky_relu", 0.3), (1 + 0.09) / 2, 1e-9);
  // Thresholded ReLU(α): ∫_α^∞ z² φ(z) dz = αφ(α) + 1 - Φ(α).
  const double a = 1.0;
  const double phi = std::exp(-a * a / 2) / std::sqrt(2 * M_PI);
  const double tail = 0.5 * std::erfc(a / std::sqrt(2.0));
  EXPECT_NEAR(*SecondMoment("thresholded_relu", a), a * phi + tail, 1e-9);
  // ReLU6 differs from ReLU only beyond 6: E = 1/2 - ∫_6^∞ (z² - 36) φ(z) dz, tiny.
  EXPECT_NEAR(*SecondMoment("relu6", 0), 0.5, 1e-8);
}

TEST(Gains, EveryKnownActivationHasAFiniteGain) {
  for (auto kind : ActivationKinds()) {
    const double param = kind == "leaky_relu" ? 0.01 : 1.0;
    auto g = GainFor(kind, param);
    ASSERT_TRUE(g.ok()) << kind;
    EXPECT_TRUE(std::isfinite(g->gain) && g->gain > 0) << kind;
    EXPECT_FALSE(g->source.empty()) << kind;
  }
}

TEST(Gains, UnknownActivationIsAnError) {
  auto g = GainFor("swishy", 0);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("swishy"), std::string::npos);
}

}  // namespace
}  // namespace gains_test
}  // namespace reinit

// The activation table against independent values: names as the Plan shows them, φ against
// closed forms at a few points, the fixed gains against PyTorch's calculate_gain constants,
// the others against 1/√E[φ(z)²] (gains.h's quadrature) and the values REFERENCE.md
// publishes, and auto's choice per kind as the auto policy table documents it.
#include "graph/activation_kinds.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "plan/gains.h"
#include "plan/auto_policy.h"

namespace reinit {
namespace activation_kinds_test {
namespace {

TEST(ActivationKinds, NamesAreThePlansInEnumOrderAndRoundTrip) {
  const std::vector<std::string> want = {
      "linear",    "relu",         "leaky_relu", "prelu",
      "elu",       "celu",         "selu",       "thresholded_relu",
      "sigmoid",   "hard_sigmoid", "tanh",       "softplus",
      "softsign",  "hard_swish",   "mish",       "gelu",
      "gelu_tanh", "silu",         "relu6"};
  ASSERT_EQ(AllActivationTraits().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto kind = static_cast<ActivationKind>(i);
    EXPECT_EQ(TraitsOf(kind).kind, kind) << i;
    EXPECT_EQ(ActivationName(kind), want[i]);
    EXPECT_EQ(ActivationKindNamed(want[i]), kind) << want[i];
    EXPECT_EQ(ActivationKinds()[i], want[i]);  // gains.h's list is the table's
  }
  EXPECT_FALSE(ActivationKindNamed("LeakyRelu").has_value());
  EXPECT_FALSE(ActivationKindNamed("").has_value());
}

double Phi(ActivationKind kind, double x, double a = 0) { return TraitsOf(kind).phi(x, a); }

TEST(ActivationKinds, PhiAgainstClosedForms) {
  using K = ActivationKind;
  EXPECT_DOUBLE_EQ(Phi(K::kRelu, -2), 0);
  EXPECT_DOUBLE_EQ(Phi(K::kLeakyRelu, -2, 0.1), -0.2);
  EXPECT_DOUBLE_EQ(Phi(K::kElu, -1, 1), std::exp(-1) - 1);
  EXPECT_NEAR(Phi(K::kCelu, -2, 2), 2 * (std::exp(-1) - 1), 1e-15);
  EXPECT_DOUBLE_EQ(Phi(K::kThresholdedRelu, 0.5, 1), 0);
  EXPECT_DOUBLE_EQ(Phi(K::kThresholdedRelu, 1.5, 1), 1.5);
  EXPECT_NEAR(Phi(K::kSigmoid, 0), 0.5, 1e-15);
  EXPECT_NEAR(Phi(K::kHardSigmoid, 1), 0.7, 1e-15);  // ONNX's default slope 0.2
  EXPECT_NEAR(Phi(K::kSilu, 1), 1 / (1 + std::exp(-1.0)), 1e-15);
  EXPECT_NEAR(Phi(K::kGelu, 1), 0.8413447460685429, 1e-15);  // Φ(1)
  EXPECT_NEAR(Phi(K::kGeluTanh, 1), 0.8411919906082768, 1e-15);
  EXPECT_NEAR(Phi(K::kMish, 1), std::tanh(std::log1p(std::exp(1.0))), 1e-15);
  EXPECT_NEAR(Phi(K::kHardSwish, 1), 1 * (1 + 3) / 6.0, 1e-15);
  EXPECT_NEAR(Phi(K::kSoftsign, 3), 0.75, 1e-15);
  EXPECT_DOUBLE_EQ(Phi(K::kRelu6, 7), 6);
  EXPECT_NEAR(Phi(K::kSelu, 1), 1.0507009873554805, 1e-15);
}

TEST(ActivationKinds, FixedGainsArePyTorchsCalculateGain) {
  using K = ActivationKind;
  auto fixed = [](K kind, double a = 0) { return TraitsOf(kind).fixed_gain(a); };
  EXPECT_DOUBLE_EQ(fixed(K::kLinear), 1);
  EXPECT_DOUBLE_EQ(fixed(K::kSigmoid), 1);
  EXPECT_DOUBLE_EQ(fixed(K::kTanh), 5.0 / 3);
  EXPECT_DOUBLE_EQ(fixed(K::kRelu), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(fixed(K::kSelu), 0.75);
  EXPECT_DOUBLE_EQ(fixed(K::kLeakyRelu, 0.2), std::sqrt(2 / 1.04));
  EXPECT_DOUBLE_EQ(fixed(K::kPrelu, 0.25), std::sqrt(2 / 1.0625));
  EXPECT_DOUBLE_EQ(fixed(K::kHardSigmoid), 1);  // as sigmoid
  int fixed_count = 0;
  for (const auto& t : AllActivationTraits()) fixed_count += t.fixed_gain != nullptr;
  EXPECT_EQ(fixed_count, 8);
}

// Every kind's gain is its fixed one, or exactly 1/√ of φ's second moment by quadrature.
TEST(ActivationKinds, GainsAreTheRowsGains) {
  for (const auto& t : AllActivationTraits()) {
    const double a = t.shown_param;
    auto g = GainFor(t.name, a);
    ASSERT_TRUE(g.ok()) << t.name;
    if (t.fixed_gain) {
      EXPECT_EQ(g->gain, t.fixed_gain(a)) << t.name;
      EXPECT_EQ(g->source, t.gain_source) << t.name;
    } else {
      auto m = SecondMoment(t.name, a);
      ASSERT_TRUE(m.ok()) << t.name;
      EXPECT_EQ(g->gain, 1 / std::sqrt(*m)) << t.name;
      EXPECT_EQ(g->source, "second moment 1/sqrt(E[phi(z)^2])") << t.name;
    }
  }
  // REFERENCE.md's second-moment gains (4 decimals).
  EXPECT_NEAR(GainFor("gelu", 1)->gain, 1.5335, 1e-4);
  EXPECT_NEAR(GainFor("silu", 1)->gain, 1.6765, 1e-4);
  EXPECT_NEAR(GainFor("mish", 1)->gain, 1.4868, 1e-4);
  EXPECT_NEAR(GainFor("elu", 1)->gain, 1.2452, 1e-4);
}

TEST(ActivationKinds, ShownWithAParameterExactlyWhenPhiTakesOne) {
  for (const auto& t : AllActivationTraits()) {
    // φ depends on a only for the kinds shown with their parameter.
    bool depends = false;
    for (double x : {-2.0, -0.5, 0.5, 1.5}) depends |= t.phi(x, 0.3) != t.phi(x, 0.6);
    EXPECT_EQ(depends, t.takes_param) << t.name;
  }
}

TEST(ActivationKinds, AutoChoiceIsTheRows) {
  const std::vector<std::pair<std::string, std::string>> want = {{"relu", "he-normal"},
                                                                 {"leaky_relu", "he-normal"},
                                                                 {"prelu", "he-normal"},
                                                                 {"relu6", "he-normal"},
                                                                 {"thresholded_relu", "he-normal"},
                                                                 {"gelu", "he-normal"},
                                                                 {"gelu_tanh", "he-normal"},
                                                                 {"silu", "he-normal"},
                                                                 {"mish", "he-normal"},
                                                                 {"hard_swish", "he-normal"},
                                                                 {"elu", "he-normal"},
                                                                 {"celu", "he-normal"},
                                                                 {"softplus", "he-normal"},
                                                                 {"selu", "lecun-normal"},
                                                                 {"tanh", "xavier-uniform"},
                                                                 {"sigmoid", "xavier-uniform"},
                                                                 {"hard_sigmoid", "xavier-uniform"},
                                                                 {"softsign", "xavier-uniform"},
                                                                 {"linear", "xavier-uniform"}};
  ASSERT_EQ(want.size(), AllActivationTraits().size());
  for (const auto& [name, scheme] : want) {
    const auto& t = TraitsOf(*ActivationKindNamed(name));
    EXPECT_EQ(t.auto_scheme, scheme) << name;
    const AutoChoice c = ChooseAuto(name, LayerKind::kConv, 1);
    EXPECT_EQ(c.scheme, scheme) << name;
    EXPECT_EQ(c.reason, "auto: " + scheme + " for " + name + " (" + std::string(t.auto_why) + ")");
  }
}

}  // namespace
}  // namespace activation_kinds_test
}  // namespace reinit

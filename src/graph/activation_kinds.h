// Activation kinds: every nonlinearity the tool knows, one row each.
//
// A row holds the kind's name (the string the Plan and its JSON show), φ (the function, at a
// parameter for the kinds that take one), the gain when it is fixed (PyTorch's calculate_gain
// where it defines one), and what `auto` draws for a layer the activation follows. The
// activation walk (graph/activation.h) names kinds and identifies spelled-out ones by φ's
// values; gains (plan/gains.h) turn φ into the second-moment gain; auto
// (plan/auto_policy.h) reads the choice; the report prints the names. A new activation
// is one row here (and, if an op computes it, one row in graph/op_traits.cc) and one test.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace reinit {

// In the order `reinit schemes` lists them, linear first.
enum class ActivationKind {
  kLinear,
  kRelu,
  kLeakyRelu,
  kPrelu,
  kElu,
  kCelu,
  kSelu,
  kThresholdedRelu,
  kSigmoid,
  kHardSigmoid,
  kTanh,
  kSoftplus,
  kSoftsign,
  kHardSwish,
  kMish,
  kGelu,
  kGeluTanh,
  kSilu,
  kRelu6,
};

struct ActivationTraits {
  ActivationKind kind;
  std::string_view name;  // as the Plan shows it: "leaky_relu"
  // φ(x) at parameter a (the slope or alpha; ignored by the kinds that take none).
  double (*phi)(double x, double a);
  bool takes_param = false;  // shown with its parameter: leaky_relu(0.01)
  double shown_param = 1;    // the parameter `reinit schemes` shows the gain at
  // The gain when it is fixed, at parameter a, and where it comes from; null: the second-moment
  // gain 1/√E[φ(z)²] (plan/gains.h).
  double (*fixed_gain)(double a) = nullptr;
  std::string_view gain_source = {};
  // auto's draw for a layer this activation follows, and why (plan/auto_policy.h; the
  // embedding and deep-tanh rules come before it).
  std::string_view auto_scheme = {};
  std::string_view auto_why = {};
};

// Every kind, in enum order.
const std::vector<ActivationTraits>& AllActivationTraits();
const ActivationTraits& TraitsOf(ActivationKind kind);
std::string_view ActivationName(ActivationKind kind);
// The kind of a name as ActivationName gives it; nullopt for an unknown name.
std::optional<ActivationKind> ActivationKindNamed(std::string_view name);

}  // namespace reinit

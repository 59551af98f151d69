// Gains: the factor by which a scheme's standard deviation is multiplied so that the signal's
// scale survives the layer's activation.
//
// Policy (docs/activations.md, "Gains"): PyTorch's calculate_gain where it defines one — linear and sigmoid 1,
// tanh 5/3, relu √2, leaky_relu √(2/(1+α²)) (also used for prelu with its slope), selu 3/4 —
// and hard_sigmoid 1 as its piecewise-linear sigmoid. Every other activation gets the
// second-moment gain 1/√E[φ(z)²], z ~ N(0, 1): the generalisation of He's argument that gives
// exactly √2 for ReLU (gelu 1.5335, silu 1.6765, mish 1.4868, elu(1) 1.2452, hard_swish 1.7367,
// softplus 1.0419, relu6 1.4142), computed by quadrature at the activation's parameter.
// φ and the fixed gains are the rows of graph/activation_kinds.h.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "status.h"

namespace reinit {

struct GainInfo {
  double gain = 1;
  std::string source;  // "torch calculate_gain" or "second moment 1/sqrt(E[phi(z)^2])"
};

// Error for an unknown activation kind.
StatusOr<GainInfo> GainFor(std::string_view kind, double param);

// E[φ(z)²] for z ~ N(0, 1) by composite Simpson quadrature on [-12, 12]; for tests and docs.
StatusOr<double> SecondMoment(std::string_view kind, double param);

// Every activation kind the tool knows, linear first.
const std::vector<std::string_view>& ActivationKinds();

}  // namespace reinit

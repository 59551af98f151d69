#include "plan/registry.h"

#include <cmath>

namespace reinit {

std::string_view SchemeKindName(SchemeKind kind) {
  switch (kind) {
    case SchemeKind::kZero:
      return "zero";
    case SchemeKind::kConstant:
      return "constant";
    case SchemeKind::kNaive:
      return "naive";
    case SchemeKind::kVarianceScaling:
      return "variance_scaling";
    case SchemeKind::kOrthogonal:
      return "orthogonal";
    case SchemeKind::kPolicy:
      return "policy";
  }
  return "?";
}

std::string_view DistributionName(Distribution distribution) {
  switch (distribution) {
    case Distribution::kNone:
      return "none";
    case Distribution::kConstant:
      return "constant";
    case Distribution::kNormal:
      return "normal";
    case Distribution::kUniform:
      return "uniform";
    case Distribution::kTruncatedNormal:
      return "truncated_normal";
    case Distribution::kOrthogonal:
      return "orthogonal";
  }
  return "?";
}

std::string_view FanModeName(FanMode mode) {
  switch (mode) {
    case FanMode::kFanIn:
      return "fan_in";
    case FanMode::kFanOut:
      return "fan_out";
    case FanMode::kFanAvg:
      return "fan_avg";
  }
  return "?";
}

const std::vector<Scheme>& Schemes() {
  using D = Distribution;
  using K = SchemeKind;
  using M = FanMode;
  static const std::vector<Scheme> kSchemes = {
      {"auto", "per layer, from the detected activation and the layer kind (README: auto)",
       K::kPolicy, D::kNone, M::kFanIn, false, true},
      // What each framework's layers hold when constructed (schemes/framework_defaults.h).
      {"torch-default",
       "PyTorch's reset_parameters: Linear/Conv W and b U(+-1/sqrt(fan_in)), RNN U(+-1/sqrt(H)), "
       "Embedding N(0,1)",
       K::kPolicy, D::kNone, M::kFanIn, false, false},
      {"keras-default",
       "Keras: kernels glorot_uniform, recurrent kernels orthogonal, bias 0, LSTM forget bias 1, "
       "Embedding U(+-0.05)",
       K::kPolicy, D::kNone, M::kFanIn, false, false},
      {"flax-default",
       "Flax: kernels lecun_normal (truncated), recurrent orthogonal, bias 0, Embed N(0, 1/D)",
       K::kPolicy, D::kNone, M::kFanIn, false, false},
      // LSUV (Mishkin & Matas 2015): orthogonal pre-initialization with gain 1, then, layer
      // by layer in the order they run, W /= sqrt(Var(output)) on a batch until
      // |Var - 1| < tolerance (src/signal/lsuv.h). Recurrent layers and embeddings get auto's
      // scheme.
      {"lsuv",
       "LSUV (Mishkin & Matas 2015): W = Q orthogonal, then per dense/conv layer in order "
       "W /= sqrt(Var(output on a batch)) until |Var - 1| < tol",
       K::kPolicy, D::kNone, M::kFanIn, false, false},
      // Recipes: a per-layer draw and the residual rule that goes with it
      // (init/schemes/residual.h; README: Residual streams).
      // Zhang, Dauphin & Ma 2019: the last layer of each residual branch and the classifier 0,
      // the branches' other layers He x L^(-1/(2m-2)), biases 0.
      {"fixup",
       "Fixup (Zhang 2019): last layer of each branch and the classifier 0, other branch layers "
       "He * L^(-1/(2m-2)) (L branches, m layers each), biases 0",
       K::kPolicy, D::kNone, M::kFanIn, false, true},
      // Radford 2019 / nanoGPT: N(0, 0.02^2) everywhere, residual branch outputs 0.02/sqrt(L).
      {"gpt2",
       "GPT-2 (Radford 2019): Linear and Embedding N(0, s^2), s = --std (default 0.02); each "
       "branch's output projection s/sqrt(2*n_layer); biases 0, LayerNorm 1/0",
       K::kPolicy, D::kNone, M::kFanIn, false, false},
      // Devlin 2019 / Hugging Face: N(0, 0.02^2) everywhere, no depth scaling (post-LN).
      {"bert",
       "BERT (Devlin 2019): Linear and Embedding N(0, s^2), s = --std (default 0.02); biases 0, "
       "LayerNorm 1/0",
       K::kPolicy, D::kNone, M::kFanIn, false, false},
      {"bert-truncated",
       "BERT as TF's truncated_normal_initializer(s): N(0, s^2) cut at +-2s (std 0.88 s), "
       "s = --std (default 0.02)",
       K::kPolicy, D::kNone, M::kFanIn, false, false},
      // Wang 2022: xavier-normal, with gain beta = (8N)^(-1/4) on the value, output and
      // feed-forward projections of N post-LN blocks; alpha = (2N)^(1/4) on the skip is the
      // graph's (a change reinit does not make).
      {"deepnet",
       "DeepNet (Wang 2022): xavier-normal; value, output and FFN projections gain "
       "(8N)^(-1/4); the skip's alpha = (2N)^(1/4) must already be in the graph",
       K::kPolicy, D::kNone, M::kFanIn, false, false},
      // W = 0: every unit computes the same thing and receives the same gradient.
      {"zero", "W = 0", K::kZero, D::kNone, M::kFanIn, false, false},
      // Normalization scales and running variances are reset to 1; a plan may set any value.
      {"constant", "W = c (c = the plan's value; 1 for normalization scales and variances)",
       K::kConstant, D::kConstant, M::kFanIn, false, false},
      // Naive draws with a fixed scale, ignoring the layer's size.
      {"uniform", "W ~ U(-a, a), a = --range (default 0.05, Keras' RandomUniform)", K::kNaive,
       D::kUniform, M::kFanIn, false, false},
      {"normal", "W ~ N(0, s^2), s = --std (default 0.01)", K::kNaive, D::kNormal, M::kFanIn, false,
       false},
      // TF's truncated_normal_initializer: s is the std before the cut, not after.
      {"truncated-normal", "W ~ N(0, s^2) cut at +-2s, s = --std (the values' std is 0.88 s)",
       K::kNaive, D::kTruncatedNormal, M::kFanIn, false, false},
      // Glorot & Bengio 2010: var = g^2 * 2 / (fan_in + fan_out).
      {"xavier-uniform", "W ~ U(-b, b), b = g * sqrt(6 / (fan_in + fan_out))", K::kVarianceScaling,
       D::kUniform, M::kFanAvg, false, true},
      {"xavier-normal", "W ~ N(0, s^2), s = g * sqrt(2 / (fan_in + fan_out))", K::kVarianceScaling,
       D::kNormal, M::kFanAvg, false, true},
      {"xavier-truncated-normal",
       "W ~ N(0, s^2) cut at +-2s, s = g * sqrt(2 / (fan_in + fan_out)) / 0.8796",
       K::kVarianceScaling, D::kTruncatedNormal, M::kFanAvg, false, true},
      // He et al. 2015: var = g^2 / n, n = fan_in (default) or fan_out (--mode).
      {"he-uniform", "W ~ U(-b, b), b = g * sqrt(3 / n), n = fan_in or fan_out (--mode)",
       K::kVarianceScaling, D::kUniform, M::kFanIn, true, true},
      {"he-normal", "W ~ N(0, s^2), s = g / sqrt(n), n = fan_in or fan_out (--mode)",
       K::kVarianceScaling, D::kNormal, M::kFanIn, true, true},
      {"he-truncated-normal", "W ~ N(0, s^2) cut at +-2s, s = g / sqrt(n) / 0.8796",
       K::kVarianceScaling, D::kTruncatedNormal, M::kFanIn, true, true},
      // LeCun et al. 1998: var = 1 / fan_in, no gain (what SELU's self-normalization needs).
      {"lecun-uniform", "W ~ U(-b, b), b = sqrt(3 / fan_in)", K::kVarianceScaling, D::kUniform,
       M::kFanIn, false, false},
      {"lecun-normal", "W ~ N(0, s^2), s = 1 / sqrt(fan_in)", K::kVarianceScaling, D::kNormal,
       M::kFanIn, false, false},
      {"lecun-truncated-normal", "W ~ N(0, s^2) cut at +-2s, s = 1 / sqrt(fan_in) / 0.8796",
       K::kVarianceScaling, D::kTruncatedNormal, M::kFanIn, false, false},
      // Saxe et al. 2013: rows = output units, the rest flattened; Q of the QR of a Gaussian
      // (max x min) matrix with column signs fixed by sign(R_ii) (Mezzadri 2007), transposed
      // when rows < cols, times g. W W^T = g^2 I (rows <= cols) or W^T W = g^2 I.
      {"orthogonal", "W = g * Q, Q with orthonormal rows or columns (QR of a Gaussian, sign-fixed)",
       K::kOrthogonal, D::kOrthogonal, M::kFanIn, false, true},
  };
  return kSchemes;
}

std::vector<std::string> SchemeNames() {
  std::vector<std::string> names;
  for (const auto& s : Schemes()) names.emplace_back(s.name);
  return names;
}

StatusOr<const Scheme*> FindScheme(std::string_view name) {
  for (const auto& s : Schemes()) {
    if (s.name == name) return &s;
  }
  std::string list;
  for (const auto& n : SchemeNames()) list += (list.empty() ? "" : ", ") + n;
  return UsageError("unknown scheme '" + std::string(name) + "'; valid schemes: " + list);
}

StatusOr<DrawParameters> ComputeParameters(const Scheme& scheme, const SchemeInputs& in) {
  DrawParameters p;
  p.gain = in.gain;
  switch (scheme.kind) {
    case SchemeKind::kPolicy:
      return ModelError(std::string(scheme.name).append(" must be resolved to a concrete scheme"));
    case SchemeKind::kZero:
    case SchemeKind::kConstant:
      return p;
    case SchemeKind::kNaive:
      if (scheme.distribution == Distribution::kUniform) {
        p.bound = in.naive_range;
      } else {
        p.std = in.naive_std;
        if (scheme.distribution == Distribution::kTruncatedNormal) p.bound = 2 * p.std;
      }
      return p;
    case SchemeKind::kOrthogonal:
      return p;
    case SchemeKind::kVarianceScaling:
      break;
  }
  const FanMode mode = scheme.follows_mode ? in.he_mode : scheme.mode;
  double n = mode == FanMode::kFanIn    ? in.fan_in
             : mode == FanMode::kFanOut ? in.fan_out
                                        : (in.fan_in + in.fan_out) / 2;
  if (!(n > 0)) return ModelError("fan " + std::to_string(n) + " must be positive");
  const double g = scheme.uses_gain ? in.gain : 1;
  const double variance = g * g / n;
  switch (scheme.distribution) {
    case Distribution::kNormal:
      p.std = std::sqrt(variance);
      break;
    case Distribution::kUniform:
      p.bound = std::sqrt(3 * variance);
      break;
    case Distribution::kTruncatedNormal:
      p.std = std::sqrt(variance) / kTruncatedStdAt2;
      p.bound = 2 * p.std;
      break;
    default:
      break;
  }
  return p;
}

}  // namespace reinit

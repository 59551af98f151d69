#include "plan/registry.h"

#include <cmath>

#include "plan/auto_policy.h"

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
  using C = LayerChoice;
  static const std::vector<Scheme> kSchemes = {
      {.name = "auto",
       .formula = "per layer, from the detected activation and the layer kind (docs/schemes.md: auto)",
       .uses_gain = true,
       .choice = C::kAuto,
       .residual = "auto"},
      // What each framework's layers hold when constructed (plan/framework_defaults.h).
      {.name = "torch-default",
       .formula = "PyTorch's reset_parameters: Linear/Conv W and b U(+-1/sqrt(fan_in)), RNN "
                  "U(+-1/sqrt(H)), Embedding N(0,1)",
       .choice = C::kFramework,
       .framework = Framework::kTorch},
      {.name = "keras-default",
       .formula = "Keras: kernels glorot_uniform, recurrent kernels orthogonal, bias 0, LSTM "
                  "forget bias 1, Embedding U(+-0.05)",
       .choice = C::kFramework,
       .framework = Framework::kKeras},
      {.name = "flax-default",
       .formula = "Flax: kernels lecun_normal (truncated), recurrent orthogonal, bias 0, Embed "
                  "N(0, 1/D)",
       .choice = C::kFramework,
       .framework = Framework::kFlax},
      // LSUV (Mishkin & Matas 2015): orthogonal pre-initialization with gain 1, then, layer
      // by layer in the order they run, W /= sqrt(Var(output)) on a batch until
      // |Var - 1| < tolerance (src/signal/lsuv.h); its scales must hold on fresh inputs, so the
      // batch is 32 random inputs by default. Recurrent layers and embeddings get auto's
      // scheme.
      {.name = "lsuv",
       .formula = "LSUV (Mishkin & Matas 2015): W = Q orthogonal, then per dense/conv layer in "
                  "order W /= sqrt(Var(output on a batch)) until |Var - 1| < tol",
       .paper = "Mishkin & Matas 2015",
       .choice = C::kRecipe,
       .draw = {.scheme = "orthogonal",
                .reason = "lsuv: orthogonal (gain 1), then scaled to unit output variance on "
                          "the batch",
                .unit_gain = true,
                .lsuv = true,
                .leaves_to_auto = "lsuv leaves this kind of layer to auto: "},
       .refuses_residual = "scales every layer to unit output variance itself",
       .batch = 32},
      // Recipes: a per-layer draw and the residual rule that goes with it
      // (plan/residual.h; docs/residual.md).
      // Zhang, Dauphin & Ma 2019: the last layer of each residual branch and the classifier 0,
      // the branches' other layers He x L^(-1/(2m-2)), biases 0.
      {.name = "fixup",
       .formula = "Fixup (Zhang 2019): last layer of each branch and the classifier 0, other "
                  "branch layers He * L^(-1/(2m-2)) (L branches, m layers each), biases 0",
       .paper = "Zhang 2019",
       .uses_gain = true,
       .choice = C::kRecipe,
       .draw = {.scheme = "he-normal", .reason = "fixup: He for the layer (Zhang 2019)"},
       .residual = "fixup"},
      // Radford 2019 / nanoGPT: N(0, 0.02^2) everywhere, residual branch outputs 0.02/sqrt(L).
      {.name = "gpt2",
       .formula = "GPT-2 (Radford 2019): Linear and Embedding N(0, s^2), s = --std (default "
                  "0.02); each branch's output projection s/sqrt(2*n_layer); biases 0, "
                  "LayerNorm 1/0",
       .paper = "Radford 2019",
       .choice = C::kRecipe,
       .draw = {.scheme = "normal",
                .reason = "gpt2: N(0, std^2) (GPT-2, Radford 2019)",
                .embeddings = true},
       .residual = "scaled",
       .keeps_variance = false,
       .default_std = 0.02},
      // Devlin 2019 / Hugging Face: N(0, 0.02^2) everywhere, no depth scaling (post-LN).
      {.name = "bert",
       .formula = "BERT (Devlin 2019): Linear and Embedding N(0, s^2), s = --std (default "
                  "0.02); biases 0, LayerNorm 1/0",
       .paper = "Devlin 2019",
       .choice = C::kRecipe,
       .draw = {.scheme = "normal",
                .reason = "bert: N(0, std^2) (BERT, Devlin 2019)",
                .embeddings = true},
       .keeps_variance = false,
       .default_std = 0.02},
      {.name = "bert-truncated",
       .formula = "BERT as TF's truncated_normal_initializer(s): N(0, s^2) cut at +-2s (std "
                  "0.88 s), s = --std (default 0.02)",
       .paper = "Devlin 2019",
       .choice = C::kRecipe,
       .draw = {.scheme = "truncated-normal",
                .reason = "bert-truncated: N(0, std^2) cut at +-2 std (BERT, Devlin 2019)",
                .embeddings = true},
       .keeps_variance = false,
       .default_std = 0.02},
      // Wang 2022: xavier-normal, with gain beta = (8N)^(-1/4) on the value, output and
      // feed-forward projections of N post-LN blocks; alpha = (2N)^(1/4) on the skip is the
      // graph's (a change reinit does not make).
      {.name = "deepnet",
       .formula = "DeepNet (Wang 2022): xavier-normal; value, output and FFN projections gain "
                  "(8N)^(-1/4); the skip's alpha = (2N)^(1/4) must already be in the graph",
       .paper = "Wang 2022",
       .choice = C::kRecipe,
       .draw = {.scheme = "xavier-normal",
                .reason = "deepnet: xavier-normal, gain 1 (Wang 2022)",
                .unit_gain = true},
       .residual = "deepnet"},
      // W = 0: every unit computes the same thing and receives the same gradient.
      {.name = "zero", .formula = "W = 0", .kind = K::kZero, .keeps_variance = false},
      // Normalization scales and running variances are reset to 1; a plan may set any value.
      {.name = "constant",
       .formula = "W = c (c = the plan's value; 1 for normalization scales and variances)",
       .kind = K::kConstant,
       .distribution = D::kConstant},
      // Naive draws with a fixed scale, ignoring the layer's size.
      {.name = "uniform",
       .formula = "W ~ U(-a, a), a = --range (default 0.05, Keras' RandomUniform)",
       .kind = K::kNaive,
       .distribution = D::kUniform,
       .keeps_variance = false},
      {.name = "normal",
       .formula = "W ~ N(0, s^2), s = --std (default 0.01)",
       .kind = K::kNaive,
       .distribution = D::kNormal,
       .keeps_variance = false},
      // TF's truncated_normal_initializer: s is the std before the cut, not after.
      {.name = "truncated-normal",
       .formula = "W ~ N(0, s^2) cut at +-2s, s = --std (the values' std is 0.88 s)",
       .kind = K::kNaive,
       .distribution = D::kTruncatedNormal,
       .keeps_variance = false},
      // Glorot & Bengio 2010: var = g^2 * 2 / (fan_in + fan_out).
      {.name = "xavier-uniform",
       .formula = "W ~ U(-b, b), b = g * sqrt(6 / (fan_in + fan_out))",
       .paper = "Glorot & Bengio 2010",
       .kind = K::kVarianceScaling,
       .distribution = D::kUniform,
       .mode = M::kFanAvg,
       .uses_gain = true},
      {.name = "xavier-normal",
       .formula = "W ~ N(0, s^2), s = g * sqrt(2 / (fan_in + fan_out))",
       .paper = "Glorot & Bengio 2010",
       .kind = K::kVarianceScaling,
       .distribution = D::kNormal,
       .mode = M::kFanAvg,
       .uses_gain = true},
      {.name = "xavier-truncated-normal",
       .formula = "W ~ N(0, s^2) cut at +-2s, s = g * sqrt(2 / (fan_in + fan_out)) / 0.8796",
       .paper = "Glorot & Bengio 2010",
       .kind = K::kVarianceScaling,
       .distribution = D::kTruncatedNormal,
       .mode = M::kFanAvg,
       .uses_gain = true},
      // He et al. 2015: var = g^2 / n, n = fan_in (default) or fan_out (--mode).
      {.name = "he-uniform",
       .formula = "W ~ U(-b, b), b = g * sqrt(3 / n), n = fan_in or fan_out (--mode)",
       .paper = "He 2015",
       .kind = K::kVarianceScaling,
       .distribution = D::kUniform,
       .follows_mode = true,
       .uses_gain = true},
      {.name = "he-normal",
       .formula = "W ~ N(0, s^2), s = g / sqrt(n), n = fan_in or fan_out (--mode)",
       .paper = "He 2015",
       .kind = K::kVarianceScaling,
       .distribution = D::kNormal,
       .follows_mode = true,
       .uses_gain = true},
      {.name = "he-truncated-normal",
       .formula = "W ~ N(0, s^2) cut at +-2s, s = g / sqrt(n) / 0.8796",
       .paper = "He 2015",
       .kind = K::kVarianceScaling,
       .distribution = D::kTruncatedNormal,
       .follows_mode = true,
       .uses_gain = true},
      // LeCun et al. 1998: var = 1 / fan_in, no gain (what SELU's self-normalization needs).
      {.name = "lecun-uniform",
       .formula = "W ~ U(-b, b), b = sqrt(3 / fan_in)",
       .paper = "LeCun 1998",
       .kind = K::kVarianceScaling,
       .distribution = D::kUniform},
      {.name = "lecun-normal",
       .formula = "W ~ N(0, s^2), s = 1 / sqrt(fan_in)",
       .paper = "LeCun 1998",
       .kind = K::kVarianceScaling,
       .distribution = D::kNormal},
      {.name = "lecun-truncated-normal",
       .formula = "W ~ N(0, s^2) cut at +-2s, s = 1 / sqrt(fan_in) / 0.8796",
       .paper = "LeCun 1998",
       .kind = K::kVarianceScaling,
       .distribution = D::kTruncatedNormal},
      // Saxe et al. 2013: rows = output units, the rest flattened; Q of the QR of a Gaussian
      // (max x min) matrix with column signs fixed by sign(R_ii) (Mezzadri 2007), transposed
      // when rows < cols, times g. W W^T = g^2 I (rows <= cols) or W^T W = g^2 I.
      {.name = "orthogonal",
       .formula = "W = g * Q, Q with orthonormal rows or columns (QR of a Gaussian, sign-fixed)",
       .paper = "Saxe 2013",
       .kind = K::kOrthogonal,
       .distribution = D::kOrthogonal,
       .uses_gain = true},
  };
  return kSchemes;
}

std::vector<std::string> SchemeNames() {
  std::vector<std::string> names;
  for (const auto& s : Schemes()) names.emplace_back(s.name);
  return names;
}

const Scheme* SchemeNamed(std::string_view name) {
  for (const auto& s : Schemes()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

StatusOr<const Scheme*> FindScheme(std::string_view name) {
  if (const Scheme* s = SchemeNamed(name)) return s;
  std::string list;
  for (const auto& n : SchemeNames()) list += (list.empty() ? "" : ", ") + n;
  return UsageError("unknown scheme '" + std::string(name) + "'; valid schemes: " + list);
}

double DefaultStd(std::string_view scheme) {
  const Scheme* s = SchemeNamed(scheme);
  return s ? s->default_std : 0.01;
}

bool NeedsData(std::string_view scheme) {
  const Scheme* s = SchemeNamed(scheme);
  return s && s->batch > 0;
}

bool ChoosesPerLayer(std::string_view scheme) {
  const Scheme* s = SchemeNamed(scheme);
  return s && (s->choice == LayerChoice::kAuto || s->choice == LayerChoice::kRecipe);
}

std::optional<LayerDraw> ChooseForLayer(std::string_view scheme, std::string_view activation,
                                        LayerKind kind, int depth) {
  const Scheme* s = SchemeNamed(scheme);
  if (!s || (s->choice != LayerChoice::kAuto && s->choice != LayerChoice::kRecipe)) {
    return std::nullopt;
  }
  const RecipeDraw& d = s->draw;
  const bool weight = kind == LayerKind::kDense || kind == LayerKind::kConv;
  if (s->choice == LayerChoice::kRecipe &&
      (weight || (d.embeddings && kind == LayerKind::kEmbedding))) {
    return LayerDraw{std::string(d.scheme), std::string(d.reason), d.unit_gain, d.lsuv};
  }
  AutoChoice choice = ChooseAuto(activation, kind, depth);
  LayerDraw draw{std::string(choice.scheme), std::move(choice.reason), choice.unit_gain, false};
  if (s->choice == LayerChoice::kRecipe) {
    draw.reason = (d.leaves_to_auto.empty() ? std::string(s->name) + " leaves this layer to auto: "
                                            : std::string(d.leaves_to_auto)) +
                  draw.reason;
  }
  return draw;
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

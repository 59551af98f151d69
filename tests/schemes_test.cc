// Every scheme, end to end through plan and apply, checked against its formula computed here
// independently: mean, variance, bounds, truncation and orthogonality, with tolerances derived
// from the sample size (5 standard errors).
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "init/apply.h"
#include "model_builder.h"
#include "option_values.h"
#include "plan/auto_policy.h"
#include "plan/framework_defaults.h"
#include "plan/plan.h"
#include "plan/registry.h"
#include "plan/residual.h"
#include "stats.h"

namespace reinit {
namespace schemes_test {
namespace {

using reinit_test::ExpectNormal;
using reinit_test::ExpectTruncated;
using reinit_test::ExpectUniform;
using reinit_test::GemmModel;
using reinit_test::MaxAbs;
using reinit_test::RawFloats;

struct Sample {
  std::vector<double> values;
  proto::Plan plan;
};

// Re-initializes a Gemm [out, in] followed by `act` with `scheme` and returns the new weights.
Sample Reinit(int64_t in, int64_t out, const std::string& act, const std::string& scheme,
              PlanOptions options = {}, const std::string& act_attrs = "") {
  auto model = GemmModel(in, out, act, act_attrs);
  options.scheme = scheme;
  auto plan = MakePlan(model, options);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  Status s = ApplyPlan(*plan, &model);
  EXPECT_TRUE(s.ok()) << s.message();
  auto raw = RawFloats(*reinit_test::FindInitializer(model, "w"));
  return {{raw.begin(), raw.end()}, *plan};
}

constexpr int64_t kIn = 300, kOut = 500;  // 150000 samples

TEST(SchemeStatistics, XavierUniformTanh) {
  auto s = Reinit(kIn, kOut, "Tanh", "xavier-uniform");
  const double g = 5.0 / 3.0;
  ExpectUniform(s.values, g * std::sqrt(6.0 / (kIn + kOut)));
}

TEST(SchemeStatistics, XavierNormalSigmoid) {
  auto s = Reinit(kIn, kOut, "Sigmoid", "xavier-normal");
  ExpectNormal(s.values, 2.0 / (kIn + kOut));
}

TEST(SchemeStatistics, XavierTruncatedNormalLinear) {
  auto s = Reinit(kIn, kOut, "", "xavier-truncated-normal");
  ExpectTruncated(s.values, 2.0 / (kIn + kOut));
}

TEST(SchemeStatistics, HeNormalRelu) {
  auto s = Reinit(kIn, kOut, "Relu", "he-normal");
  ExpectNormal(s.values, 2.0 / kIn);
}

TEST(SchemeStatistics, HeUniformLeakyReluSlopeFromGraph) {
  auto s = Reinit(kIn, kOut, "LeakyRelu", "he-uniform", {}, "<alpha = 0.2>");
  const double gain2 = 2 / (1 + 0.2 * 0.2);
  ExpectUniform(s.values, std::sqrt(3 * gain2 / kIn));
}

TEST(SchemeStatistics, HeNormalFanOutMode) {
  PlanOptions o;
  o.he_mode = FanMode::kFanOut;
  auto s = Reinit(kIn, kOut, "Relu", "he-normal", o);
  ExpectNormal(s.values, 2.0 / kOut);
}

TEST(SchemeStatistics, HeTruncatedNormalRelu) {
  auto s = Reinit(kIn, kOut, "Relu", "he-truncated-normal");
  ExpectTruncated(s.values, 2.0 / kIn);
}

TEST(SchemeStatistics, LecunNormalSelu) {
  auto s = Reinit(kIn, kOut, "Selu", "lecun-normal");
  ExpectNormal(s.values, 1.0 / kIn);
}

TEST(SchemeStatistics, LecunUniformIgnoresGain) {
  auto s = Reinit(kIn, kOut, "Relu", "lecun-uniform");
  ExpectUniform(s.values, std::sqrt(3.0 / kIn));
}

TEST(SchemeStatistics, LecunTruncatedNormal) {
  auto s = Reinit(kIn, kOut, "Tanh", "lecun-truncated-normal");
  ExpectTruncated(s.values, 1.0 / kIn);
}

TEST(SchemeStatistics, NaiveNormalDefaultAndOption) {
  ExpectNormal(Reinit(kIn, kOut, "Relu", "normal").values, 0.01 * 0.01);
  PlanOptions o;
  o.naive_std = 0.3;
  ExpectNormal(Reinit(kIn, kOut, "Relu", "normal", o).values, 0.09);
}

TEST(SchemeStatistics, NaiveUniformDefaultAndOption) {
  ExpectUniform(Reinit(kIn, kOut, "Relu", "uniform").values, 0.05);
  PlanOptions o;
  o.naive_range = 0.7;
  ExpectUniform(Reinit(kIn, kOut, "Relu", "uniform", o).values, 0.7);
}

TEST(SchemeStatistics, ZeroIsAllZero) {
  auto s = Reinit(kIn, kOut, "Relu", "zero");
  EXPECT_EQ(MaxAbs(s.values), 0);
}

// Orthogonal: the (out x in) view W has W Wᵀ = g²I when out <= in, Wᵀ W = g²I otherwise.
void ExpectOrthogonal(int64_t in, int64_t out, const std::string& act, double g) {
  auto s = Reinit(in, out, act, "orthogonal");
  Eigen::MatrixXd w(out, in);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t c = 0; c < in; ++c) w(r, c) = s.values[r * in + c];
  }
  Eigen::MatrixXd gram =
      out <= in ? Eigen::MatrixXd(w * w.transpose()) : Eigen::MatrixXd(w.transpose() * w);
  const auto eye = Eigen::MatrixXd::Identity(gram.rows(), gram.cols());
  // float32 storage: each entry is a sum of up to 500 products rounded at 2^-24.
  EXPECT_LT((gram - g * g * eye).cwiseAbs().maxCoeff(), 1e-5 * g * g * std::max(in, out));
}

TEST(SchemeStatistics, OrthogonalWideTallAndSquareWithGain) {
  ExpectOrthogonal(200, 80, "", 1.0);
  ExpectOrthogonal(80, 200, "Relu", std::sqrt(2.0));
  ExpectOrthogonal(128, 128, "Tanh", 5.0 / 3.0);
}

TEST(SchemeStatistics, OrthogonalIsHaarNotAPermutation) {
  // Entries q of a Haar-distributed n x n orthogonal matrix: E q² = 1/n and
  // E q⁴ = 3/(n(n+2)), so the kurtosis is 3n/(n+2); a permutation or a sign-flipped identity
  // would give n. SE of the sample kurtosis ≈ √(24/N) for N = n² nearly normal entries.
  const int n = 256;
  auto s = Reinit(n, n, "", "orthogonal");
  double m2 = 0, m4 = 0;
  for (double x : s.values) {
    m2 += x * x;
    m4 += x * x * x * x;
  }
  m2 /= s.values.size();
  m4 /= s.values.size();
  EXPECT_NEAR(m2, 1.0 / n, 1e-6);
  EXPECT_NEAR(m4 / (m2 * m2), 3.0 * n / (n + 2), 5 * std::sqrt(24.0 / (n * n)));
}

// Re-initializes the one layer of `text` (its weight `w` of `dims`) orthogonally; checks the
// planned output axis and returns the stored values.
std::vector<double> OrthogonalWeight(const std::string& text, const std::vector<int64_t>& dims,
                                     int output_axis) {
  auto model = reinit_test::ParseModel(text);
  reinit_test::AddFloatInitializer(&model, "w", dims);
  PlanOptions o;
  o.scheme = "orthogonal";
  auto plan = MakePlan(model, o);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return {};
  EXPECT_EQ(plan->layers(0).weight().output_axis(), output_axis);
  EXPECT_TRUE(ApplyPlan(*plan, &model).ok());
  auto v = RawFloats(*reinit_test::FindInitializer(model, "w"));
  return {v.begin(), v.end()};
}

TEST(SchemeStatistics, OrthogonalConvRowsAreOutputChannels) {
  // Conv W [16, 4, 3, 3]: rows = 16 output channels, cols = 36; 16 <= 36 so W Wᵀ = I.
  auto v = OrthogonalWeight(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 4, 8, 8] x) => (float[1, 16, 6, 6] y) { y = Conv (x, w) })",
                            {16, 4, 3, 3}, 0);
  reinit_test::ExpectOrthogonal(v, 16, 36, 1.0, "conv");
}

TEST(SchemeStatistics, OrthogonalGemmWithoutTransBUsesColumnsAsUnits) {
  // Gemm B [K=40, N=10] (transB = 0): output units index axis 1; 10 <= 40, so Bᵀ B = I: B is a
  // 40 x 10 matrix with orthonormal columns.
  auto v = OrthogonalWeight(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 40] x) => (float[1, 10] y) { y = Gemm (x, w) })",
                            {40, 10}, 1);
  reinit_test::ExpectOrthogonal(v, 40, 10, 1.0, "gemm");
}

TEST(SchemeStatistics, OrthogonalThroughATransposeIsOrthogonalAsTheLayerSeesIt) {
  // Gemm(x, Transpose(w)) with w [64, 32]: the layer sees B [32, 64] with 64 output units;
  // 64 > 32, so the units' weight vectors (w's rows) are orthonormal as columns: wᵀ w = I.
  auto v = OrthogonalWeight(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 32] x) => (float[1, 64] y) { wt = Transpose <perm = [1, 0]> (w)  y = Gemm (x, wt) })",
                            {64, 32}, 1);
  reinit_test::ExpectOrthogonal(v, 64, 32, 1.0, "w");
}

TEST(SchemeRegistry, EveryNamedSchemeHasAFormulaAndResolves) {
  for (const auto& s : Schemes()) {
    EXPECT_FALSE(s.formula.empty()) << s.name;
    auto found = FindScheme(s.name);
    ASSERT_TRUE(found.ok());
    EXPECT_EQ((*found)->name, s.name);
  }
}

TEST(SchemeRegistry, UnknownSchemeListsEveryValidName) {
  auto found = FindScheme("kaiming");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kUsage);
  for (const auto& name : SchemeNames()) {
    EXPECT_NE(found.status().message().find(name), std::string::npos) << name;
  }
}

TEST(SchemeRegistry, ParametersFollowTheFormulas) {
  SchemeInputs in;
  in.fan_in = 100;
  in.fan_out = 300;
  in.gain = 2;
  auto p = ComputeParameters(**FindScheme("xavier-uniform"), in);
  ASSERT_TRUE(p.ok());
  EXPECT_DOUBLE_EQ(p->bound, 2 * std::sqrt(6.0 / 400));
  p = ComputeParameters(**FindScheme("he-normal"), in);
  EXPECT_DOUBLE_EQ(p->std, 2 / std::sqrt(100.0));
  in.he_mode = FanMode::kFanOut;
  p = ComputeParameters(**FindScheme("he-uniform"), in);
  EXPECT_DOUBLE_EQ(p->bound, std::sqrt(3.0) * 2 / std::sqrt(300.0));
  p = ComputeParameters(**FindScheme("lecun-normal"), in);
  EXPECT_DOUBLE_EQ(p->std, 1 / std::sqrt(100.0));
  EXPECT_DOUBLE_EQ(p->gain, 2);  // recorded for the plan, not applied: lecun takes no gain
  p = ComputeParameters(**FindScheme("lecun-truncated-normal"), in);
  EXPECT_NEAR(p->std, 0.1 / 0.87962566103423978, 1e-12);
  EXPECT_NEAR(p->bound, 2 * p->std, 1e-12);
  in.fan_in = 0;
  EXPECT_FALSE(ComputeParameters(**FindScheme("lecun-normal"), in).ok());
}

TEST(SchemeRegistry, TruncationConstantIsTheStdOfTheCutNormal) {
  const double phi2 = std::exp(-2.0) / std::sqrt(2 * M_PI);
  const double unit_var = 1 - 4 * phi2 / std::erf(std::sqrt(2.0));
  EXPECT_NEAR(kTruncatedStdAt2, std::sqrt(unit_var), 1e-12);
}

// What each policy and recipe row must hold, as docs/schemes.md and docs/residual.md describe
// them; a new row fails here until it is listed. Plain schemes: every row not listed here draws
// itself, keeps variance unless it is a fixed-scale draw, and needs no data.
struct Expected {
  std::string_view name;
  LayerChoice choice;
  std::string_view draw;      // what a recipe's dense and conv layers get
  bool embeddings;            // and its embedding tables
  std::string_view residual;  // its own rule
  bool refuses_residual;
  bool keeps_variance;
  double default_std;
  int64_t batch;
  std::optional<Framework> framework;
};

const std::vector<Expected>& PolicyRows() {
  using C = LayerChoice;
  static const std::vector<Expected> kRows = {
      {"auto", C::kAuto, "", false, "auto", false, true, 0.01, 0, std::nullopt},
      {"torch-default", C::kFramework, "", false, "none", false, true, 0.01, 0, Framework::kTorch},
      {"keras-default", C::kFramework, "", false, "none", false, true, 0.01, 0, Framework::kKeras},
      {"flax-default", C::kFramework, "", false, "none", false, true, 0.01, 0, Framework::kFlax},
      {"lsuv", C::kRecipe, "orthogonal", false, "none", true, true, 0.01, 32, std::nullopt},
      {"fixup", C::kRecipe, "he-normal", false, "fixup", false, true, 0.01, 0, std::nullopt},
      {"gpt2", C::kRecipe, "normal", true, "scaled", false, false, 0.02, 0, std::nullopt},
      {"bert", C::kRecipe, "normal", true, "none", false, false, 0.02, 0, std::nullopt},
      {"bert-truncated", C::kRecipe, "truncated-normal", true, "none", false, false, 0.02, 0,
       std::nullopt},
      {"deepnet", C::kRecipe, "xavier-normal", false, "deepnet", false, true, 0.01, 0,
       std::nullopt},
  };
  return kRows;
}

TEST(SchemeRegistry, PolicyAndRecipeRowsHoldTheDocumentedValues) {
  for (const auto& e : PolicyRows()) {
    const Scheme* s = SchemeNamed(e.name);
    ASSERT_NE(s, nullptr) << e.name;
    EXPECT_EQ(s->kind, SchemeKind::kPolicy) << e.name;
    EXPECT_EQ(s->choice, e.choice) << e.name;
    EXPECT_EQ(s->draw.scheme, e.draw) << e.name;
    EXPECT_EQ(s->draw.embeddings, e.embeddings) << e.name;
    EXPECT_EQ(s->residual, e.residual) << e.name;
    EXPECT_EQ(!s->refuses_residual.empty(), e.refuses_residual) << e.name;
    EXPECT_EQ(s->keeps_variance, e.keeps_variance) << e.name;
    EXPECT_EQ(s->default_std, e.default_std) << e.name;
    EXPECT_EQ(DefaultStd(e.name), e.default_std) << e.name;
    EXPECT_EQ(s->batch, e.batch) << e.name;
    EXPECT_EQ(NeedsData(e.name), e.batch > 0) << e.name;
    EXPECT_EQ(DefaultBatch(e.name), e.batch > 0 ? e.batch : 8) << e.name;
    EXPECT_EQ(FrameworkFor(e.name), e.framework) << e.name;
    EXPECT_EQ(ChoosesPerLayer(e.name), e.choice == LayerChoice::kAuto || !e.draw.empty()) << e.name;
    if (!e.draw.empty()) {
      ASSERT_NE(SchemeNamed(e.draw), nullptr) << e.name;  // a recipe draws a plain scheme
      EXPECT_EQ(SchemeNamed(e.draw)->kind == SchemeKind::kPolicy, false) << e.name;
    }
    if (!s->paper.empty()) {  // cited by the formula `reinit schemes` shows or the plan's reason
      EXPECT_TRUE(s->formula.find(s->paper) != std::string::npos ||
                  s->draw.reason.find(s->paper) != std::string::npos)
          << e.name;
    }
  }
}

TEST(SchemeRegistry, EveryOtherRowIsAPlainSchemeThatDrawsItself) {
  const std::vector<std::string_view> fixed_scale = {"zero", "uniform", "normal",
                                                     "truncated-normal"};
  for (const auto& s : Schemes()) {
    bool listed = false;
    for (const auto& e : PolicyRows()) listed |= e.name == s.name;
    if (listed) continue;
    EXPECT_NE(s.kind, SchemeKind::kPolicy) << s.name << ": a policy row needs its PolicyRows() row";
    EXPECT_EQ(s.choice, LayerChoice::kSelf) << s.name;
    EXPECT_EQ(s.residual, "none") << s.name;
    EXPECT_TRUE(s.refuses_residual.empty()) << s.name;
    const bool fixed =
        std::find(fixed_scale.begin(), fixed_scale.end(), s.name) != fixed_scale.end();
    EXPECT_EQ(s.keeps_variance, !fixed) << s.name;
    EXPECT_EQ(s.default_std, 0.01) << s.name;
    EXPECT_EQ(s.batch, 0) << s.name;
    EXPECT_FALSE(s.framework.has_value()) << s.name;
    EXPECT_FALSE(ChooseForLayer(s.name, "relu", LayerKind::kDense, 1).has_value()) << s.name;
  }
}

TEST(SchemeRegistry, RecipesDrawTheirLayersAndLeaveTheRestToAuto) {
  const auto dense = ChooseForLayer("gpt2", "gelu", LayerKind::kDense, 1);
  ASSERT_TRUE(dense.has_value());
  EXPECT_EQ(dense->scheme, "normal");
  EXPECT_EQ(dense->reason, "gpt2: N(0, std^2) (GPT-2, Radford 2019)");
  EXPECT_EQ(ChooseForLayer("bert", "linear", LayerKind::kEmbedding, 0)->scheme, "normal");
  EXPECT_EQ(
      ChooseForLayer("fixup", "linear", LayerKind::kEmbedding, 0)->reason,
      "fixup leaves this layer to auto: " + ChooseAuto("linear", LayerKind::kEmbedding, 0).reason);
  const auto deepnet = ChooseForLayer("deepnet", "relu", LayerKind::kConv, 1);
  EXPECT_EQ(deepnet->scheme, "xavier-normal");
  EXPECT_TRUE(deepnet->unit_gain);
  EXPECT_FALSE(deepnet->lsuv);
  const auto lsuv = ChooseForLayer("lsuv", "relu", LayerKind::kDense, 1);
  EXPECT_EQ(lsuv->scheme, "orthogonal");
  EXPECT_TRUE(lsuv->unit_gain && lsuv->lsuv);
  const auto lsuv_table = ChooseForLayer("lsuv", "linear", LayerKind::kEmbedding, 0);
  EXPECT_FALSE(lsuv_table->lsuv);
  EXPECT_EQ(lsuv_table->reason, "lsuv leaves this kind of layer to auto: " +
                                    ChooseAuto("linear", LayerKind::kEmbedding, 0).reason);
  const auto automatic = ChooseForLayer("auto", "tanh", LayerKind::kDense, kDeepChain);
  EXPECT_EQ(automatic->scheme, "orthogonal");
  EXPECT_EQ(automatic->reason, ChooseAuto("tanh", LayerKind::kDense, kDeepChain).reason);
}

TEST(SchemeRegistry, ResidualRulePerRecipeAndNormalization) {
  const std::vector<std::pair<std::string_view, std::vector<std::string_view>>> rules = {
      // the scheme's own rule for streams with no norm, pre-norm and post-norm branches, and
      // those whose normalization could not be established (auto: no rule)
      {"auto", {"fixup", "scaled", "none", "none"}},
      {"fixup", {"fixup", "fixup", "fixup", "fixup"}},
      {"gpt2", {"scaled", "scaled", "scaled", "scaled"}},
      {"deepnet", {"deepnet", "deepnet", "deepnet", "deepnet"}},
      {"bert", {"none", "none", "none", "none"}},
      {"lsuv", {"none", "none", "none", "none"}},
      {"he-normal", {"none", "none", "none", "none"}},
  };
  const StreamNorm norms[] = {StreamNorm::kNone, StreamNorm::kPreNorm, StreamNorm::kPostNorm,
                              StreamNorm::kUnknown};
  for (const auto& [scheme, want] : rules) {
    for (int n = 0; n < 4; ++n) {
      EXPECT_EQ(ResidualRuleFor("", scheme, norms[n]), want[n]) << scheme << " " << n;
    }
    EXPECT_EQ(ResidualRuleFor("zero", scheme, StreamNorm::kPreNorm),
              scheme == "lsuv" ? "none" : "zero")
        << scheme;
  }
  EXPECT_TRUE(CheckResidual("none", "lsuv").ok());
  EXPECT_TRUE(CheckResidual("", "lsuv").ok());
  EXPECT_TRUE(CheckResidual("fixup", "gpt2").ok());
  EXPECT_EQ(CheckResidual("scaled", "lsuv").message(),
            "--scheme lsuv scales every layer to unit output variance itself; it takes no "
            "--residual rule (only none)");
  EXPECT_EQ(CheckResidual("sometimes", "lsuv").message(),
            "unknown --residual 'sometimes'; valid: auto, none, scaled, fixup, zero");
}

}  // namespace
}  // namespace schemes_test
}  // namespace reinit

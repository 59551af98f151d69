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
#include "plan/plan.h"
#include "plan/registry.h"
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

}  // namespace
}  // namespace schemes_test
}  // namespace reinit

// torch-default, keras-default and flax-default against what each framework's layers hold when
// constructed (REFERENCE.md §3), with fans counted the framework's way; the expected
// parameters are computed here from the frameworks' formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "init/apply.h"
#include "model_builder.h"
#include "plan/plan.h"
#include "stats.h"

namespace reinit {
namespace framework_defaults_test {
namespace {

using reinit_test::AddFloatInitializer;
using reinit_test::ExpectNormal;
using reinit_test::ExpectOrthogonal;
using reinit_test::ExpectTruncated;
using reinit_test::ExpectUniform;
using reinit_test::FindInitializer;
using reinit_test::ParseModel;
using reinit_test::RawFloats;

std::vector<double> Values(const onnx::ModelProto& m, const std::string& name) {
  auto v = RawFloats(*FindInitializer(m, name));
  return {v.begin(), v.end()};
}

onnx::ModelProto Reinit(onnx::ModelProto model, const std::string& scheme) {
  PlanOptions o;
  o.scheme = scheme;
  auto plan = MakePlan(model, o);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (plan.ok()) {
    EXPECT_TRUE(ApplyPlan(*plan, &model).ok());
  }
  return model;
}

constexpr int64_t kK = 200, kN = 300;

onnx::ModelProto Linear() {
  auto m = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 200] x) => (float[1, 300] y) { y = Gemm <transB = 1> (x, w, b) })");
  AddFloatInitializer(&m, "w", {kN, kK});
  AddFloatInitializer(&m, "b", {kN});
  return m;
}

// Depthwise 3x3 conv over 64 channels with multiplier 2, and a transposed conv.
onnx::ModelProto Convs() {
  auto m = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 64, 8, 8] x) => (y) {
  d = Conv <group = 64, pads = [1, 1, 1, 1]> (x, dw, db)
  y = ConvTranspose <strides = [2, 2], group = 2> (d, tw)
})");
  AddFloatInitializer(&m, "dw", {128, 1, 3, 3});
  AddFloatInitializer(&m, "db", {128});
  AddFloatInitializer(&m, "tw", {128, 32, 4, 4});  // [C, M/g, k, k]
  return m;
}

onnx::ModelProto Embedding() {
  auto m = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (int64[5] ids) => (float[5, 64] y) { y = Gather (t, ids) })");
  AddFloatInitializer(&m, "t", {2000, 64});
  return m;
}

constexpr int64_t kI = 48, kH = 64;

onnx::ModelProto Lstm() {
  auto m = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[5, 1, 48] x) => (y) { y = LSTM <hidden_size = 64> (x, W, R, B) })");
  AddFloatInitializer(&m, "W", {1, 4 * kH, kI});
  AddFloatInitializer(&m, "R", {1, 4 * kH, kH});
  AddFloatInitializer(&m, "B", {1, 8 * kH});
  return m;
}

TEST(TorchDefault, LinearWeightAndBiasAreUniformOneOverSqrtFanIn) {
  auto m = Reinit(Linear(), "torch-default");
  ExpectUniform(Values(m, "w"), 1 / std::sqrt(double(kK)), "weight");
  // 300 values only: the bound checks still hold, the moments within their wider SEs.
  ExpectUniform(Values(m, "b"), 1 / std::sqrt(double(kK)), "bias");
}

TEST(TorchDefault, ConvolutionsUsePyTorchsFansIgnoringGroupsAndTransposition) {
  auto m = Reinit(Convs(), "torch-default");
  // Depthwise [128, 1, 3, 3]: torch fan_in = 1·9.
  ExpectUniform(Values(m, "dw"), 1 / 3.0, "depthwise weight");
  // ConvTranspose [128, 32, 4, 4]: torch fan_in = shape[1]·16 = 512.
  ExpectUniform(Values(m, "tw"), 1 / std::sqrt(512.0), "transposed weight");
}

TEST(TorchDefault, EmbeddingIsStandardNormalAndRnnUniformOneOverSqrtH) {
  ExpectNormal(Values(Reinit(Embedding(), "torch-default"), "t"), 1.0, "embedding");
  auto m = Reinit(Lstm(), "torch-default");
  for (const char* t : {"W", "R", "B"}) ExpectUniform(Values(m, t), 1 / std::sqrt(double(kH)), t);
}

TEST(KerasDefault, GlorotUniformWithKerasFansAndZeroBias) {
  auto m = Reinit(Linear(), "keras-default");
  ExpectUniform(Values(m, "w"), std::sqrt(6.0 / (kK + kN)), "kernel");
  for (double v : Values(m, "b")) EXPECT_EQ(v, 0);
  // Keras' depthwise kernel is [3, 3, C=64, multiplier=2]: fans (64·9, 2·9).
  auto c = Reinit(Convs(), "keras-default");
  ExpectUniform(Values(c, "dw"), std::sqrt(6.0 / (64 * 9 + 2 * 9)), "depthwise kernel");
  ExpectUniform(Values(Reinit(Embedding(), "keras-default"), "t"), 0.05, "embedding");
}

TEST(KerasDefault, LstmKernelsOverAllGatesAndUnitForgetBias) {
  auto m = Reinit(Lstm(), "keras-default");
  // kernel [I, 4H] glorot_uniform: fan_in I, fan_out 4H.
  ExpectUniform(Values(m, "W"), std::sqrt(6.0 / (kI + 4 * kH)), "kernel");
  // recurrent_kernel [H, 4H] orthogonal: stored as [4H, H], its columns orthonormal.
  ExpectOrthogonal(Values(m, "R"), 4 * kH, kH, 1.0, "recurrent kernel");
  const auto b = Values(m, "B");
  for (int64_t k = 0; k < 8 * kH; ++k) {
    EXPECT_EQ(b[k], k >= 2 * kH && k < 3 * kH ? 1.0 : 0.0) << k;  // gates i, o, f, c: f is 2
  }
}

TEST(FlaxDefault, LecunNormalTruncatedKernelsAndEmbedNormalOneOverD) {
  auto m = Reinit(Linear(), "flax-default");
  ExpectTruncated(Values(m, "w"), 1.0 / kK, "kernel");
  for (double v : Values(m, "b")) EXPECT_EQ(v, 0);
  ExpectNormal(Values(Reinit(Embedding(), "flax-default"), "t"), 1.0 / 64, "embed");
}

TEST(FlaxDefault, LstmPerGateLecunAndOrthogonal) {
  auto m = Reinit(Lstm(), "flax-default");
  const auto w = Values(m, "W"), r = Values(m, "R");
  for (int64_t g = 0; g < 4; ++g) {
    ExpectTruncated({w.begin() + g * kH * kI, w.begin() + (g + 1) * kH * kI}, 1.0 / kI,
                    "gate " + std::to_string(g));
    ExpectOrthogonal({r.begin() + g * kH * kH, r.begin() + (g + 1) * kH * kH}, kH, kH, 1.0,
                     "recurrent gate " + std::to_string(g));
  }
}

}  // namespace
}  // namespace framework_defaults_test
}  // namespace reinit

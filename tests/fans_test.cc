#include "graph/fans.h"

#include <gtest/gtest.h>
#include <onnx/defs/parser.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace reinit {
namespace fans_test {
namespace {

using reinit_test::Contains;
using Shape = std::vector<int64_t>;
constexpr FanConvention kOnnx = FanConvention::kOnnx;
constexpr FanConvention kTorch = FanConvention::kTorch;

const LayerRule& RuleFor(WeightLayout layout) {
  for (const auto& rule : LayerRules()) {
    if (rule.layout == layout) return rule;
  }
  ADD_FAILURE() << "no rule for layout " << static_cast<int>(layout);
  return LayerRules().front();
}

onnx::NodeProto ParseNode(const std::string& text) {
  onnx::NodeProto node;
  const auto status = onnx::OnnxParser::Parse(node, text.c_str());
  EXPECT_TRUE(status.IsOK()) << status.ErrorMessage() << "\n" << text;
  return node;
}

// The fans of a weight of `shape` on the node written as `node_text`; a failure if it errors.
Fans FansOf(WeightLayout layout, const std::string& node_text, const Shape& shape,
            FanConvention convention) {
  auto fans = ComputeFans(RuleFor(layout), ParseNode(node_text), shape, convention);
  EXPECT_TRUE(fans.ok()) << fans.status().message();
  return fans.ok() ? *fans : Fans{-1, -1, -1};
}

// The error message, or "" (and a failure) if ComputeFans succeeds.
std::string ErrorOf(WeightLayout layout, const std::string& node_text, const Shape& shape,
                    FanConvention convention) {
  auto fans = ComputeFans(RuleFor(layout), ParseNode(node_text), shape, convention);
  EXPECT_FALSE(fans.ok()) << "fans " << fans->in << ", " << fans->out;
  return fans.ok() ? "" : fans.status().message();
}

void ExpectFans(const Fans& fans, double in, double out, int axis) {
  EXPECT_DOUBLE_EQ(fans.in, in);
  EXPECT_DOUBLE_EQ(fans.out, out);
  EXPECT_EQ(fans.output_axis, axis);
}

// --- Gemm: B [K, N], or [N, K] with transB = 1; Linear's [N, K] in both conventions.

TEST(Gemm, TransB0IsKByN) {
  const int64_t k = 32, n = 64;
  for (auto convention : {kOnnx, kTorch}) {
    ExpectFans(FansOf(WeightLayout::kGemm, "y = Gemm (x, w, b)", {k, n}, convention), k, n, 1);
  }
}

TEST(Gemm, TransB1IsNByK) {
  const int64_t k = 32, n = 64;
  for (auto convention : {kOnnx, kTorch}) {
    ExpectFans(FansOf(WeightLayout::kGemm, "y = Gemm <transB = 1> (x, w, b)", {n, k}, convention),
               k, n, 0);
  }
}

TEST(Gemm, RankOtherThanTwoIsAnError) {
  const std::string msg = ErrorOf(WeightLayout::kGemm, "y = Gemm (x, w)", {2, 3, 4}, kOnnx);
  EXPECT_TRUE(Contains(msg, "[2, 3, 4]"));
  EXPECT_TRUE(Contains(msg, "Gemm's B must have rank 2"));
}

// --- MatMul with a constant B [..., K, N] or a constant A [..., M, K].

TEST(MatMul, ConstantBIsKByN) {
  const int64_t k = 32, n = 64;
  for (auto convention : {kOnnx, kTorch}) {
    ExpectFans(FansOf(WeightLayout::kMatMulB, "y = MatMul (x, w)", {k, n}, convention), k, n, 1);
  }
}

TEST(MatMul, BatchedBUsesTheLastTwoDims) {
  const int64_t b = 4, k = 32, n = 64;
  for (auto convention : {kOnnx, kTorch}) {
    ExpectFans(FansOf(WeightLayout::kMatMulB, "y = MatMul (x, w)", {b, k, n}, convention), k, n, 2);
  }
}

TEST(MatMul, OneDimensionalBHasOneOutput) {
  const int64_t k = 32;
  for (auto convention : {kOnnx, kTorch}) {
    ExpectFans(FansOf(WeightLayout::kMatMulB, "y = MatMul (x, w)", {k}, convention), k, 1, 0);
  }
}

TEST(MatMul, ConstantAIsMByK) {
  const int64_t m = 16, k = 32;
  for (auto convention : {kOnnx, kTorch}) {
    ExpectFans(FansOf(WeightLayout::kMatMulA, "y = MatMul (w, x)", {m, k}, convention), k, m, 0);
    ExpectFans(FansOf(WeightLayout::kMatMulA, "y = MatMul (w, x)", {3, m, k}, convention), k, m, 1);
  }
}

TEST(MatMul, ScalarIsAnError) {
  const std::string msg = ErrorOf(WeightLayout::kMatMulB, "y = MatMul (x, w)", {}, kOnnx);
  EXPECT_TRUE(Contains(msg, "rank >= 1"));
}

// --- Conv W [M, C/g, k...]: onnx fan_in = (C/g)·∏k, fan_out = (M/g)·∏k;
// torch fan_in = shape[1]·∏k, fan_out = shape[0]·∏k.

TEST(Conv, OneDimensional) {
  const int64_t m = 6, c = 4, k = 5;
  ExpectFans(FansOf(WeightLayout::kConv, "y = Conv (x, w)", {m, c, k}, kOnnx), c * k, m * k, 0);
  ExpectFans(FansOf(WeightLayout::kConv, "y = Conv (x, w)", {m, c, k}, kTorch), c * k, m * k, 0);
}

TEST(Conv, TwoDimensionalWithARectangularKernel) {
  const int64_t m = 16, c = 8, kh = 3, kw = 5;
  for (auto convention : {kOnnx, kTorch}) {
    ExpectFans(FansOf(WeightLayout::kConv, "y = Conv (x, w, b)", {m, c, kh, kw}, convention),
               c * kh * kw, m * kh * kw, 0);
  }
}

TEST(Conv, ThreeDimensional) {
  const int64_t m = 4, c = 2, k = 3;
  for (auto convention : {kOnnx, kTorch}) {
    ExpectFans(FansOf(WeightLayout::kConv, "y = Conv (x, w)", {m, c, k, k, k}, convention),
               c * k * k * k, m * k * k * k, 0);
  }
}

TEST(Conv, GroupedOnnxDividesFanOutByGroup) {
  const int64_t g = 4, c = 8, m = 16, k = 3;  // W [M, C/g, k, k]
  const Shape w = {m, c / g, k, k};
  const std::string node = "y = Conv <group = 4> (x, w)";
  ExpectFans(FansOf(WeightLayout::kConv, node, w, kOnnx), (c / g) * k * k, (m / g) * k * k, 0);
  // PyTorch ignores groups: fan_out = shape[0]·∏k.
  ExpectFans(FansOf(WeightLayout::kConv, node, w, kTorch), (c / g) * k * k, m * k * k, 0);
}

TEST(Conv, Depthwise) {
  const int64_t c = 8, k = 3;  // group = C, W [C, 1, k, k]
  const Shape w = {c, 1, k, k};
  const std::string node = "y = Conv <group = 8> (x, w)";
  ExpectFans(FansOf(WeightLayout::kConv, node, w, kOnnx), k * k, k * k, 0);
  ExpectFans(FansOf(WeightLayout::kConv, node, w, kTorch), k * k, c * k * k, 0);  // pytorch#23854
}

// --- ConvTranspose W [C, M/g, k...]: onnx fan_in = (C/g)·∏(k/s), fan_out = (M/g)·∏k;
// torch fan_in = shape[1]·∏k, fan_out = shape[0]·∏k.

TEST(ConvTranspose, StrideOne) {
  const int64_t c = 8, m = 6, k = 3;
  const Shape w = {c, m, k, k};
  const std::string node = "y = ConvTranspose (x, w)";
  ExpectFans(FansOf(WeightLayout::kConvTranspose, node, w, kOnnx), c * k * k, m * k * k, 1);
  ExpectFans(FansOf(WeightLayout::kConvTranspose, node, w, kTorch), m * k * k, c * k * k, 1);
}

TEST(ConvTranspose, StrideTwo) {
  const int64_t c = 8, m = 6, k = 4, s = 2;
  const Shape w = {c, m, k, k};
  const std::string node = "y = ConvTranspose <strides = [2, 2]> (x, w)";
  const double taps = (double(k) / s) * (double(k) / s);
  ExpectFans(FansOf(WeightLayout::kConvTranspose, node, w, kOnnx), c * taps, m * k * k, 1);
  ExpectFans(FansOf(WeightLayout::kConvTranspose, node, w, kTorch), m * k * k, c * k * k, 1);
}

TEST(ConvTranspose, StrideThatDoesNotDivideTheKernelAveragesTaps) {
  const int64_t c = 4, m = 2, k = 3, s = 2;  // 1.5 taps per dim on average
  const Shape w = {c, m, k};
  const double taps = double(k) / s;
  ExpectFans(
      FansOf(WeightLayout::kConvTranspose, "y = ConvTranspose <strides = [2]> (x, w)", w, kOnnx),
      c * taps, m * k, 1);
}

TEST(ConvTranspose, GroupsAndStride) {
  const int64_t g = 2, c = 8, m = 6, k = 4, s = 2;  // W [C, M/g, k, k]
  const Shape w = {c, m / g, k, k};
  const std::string node = "y = ConvTranspose <group = 2, strides = [2, 2]> (x, w)";
  const double taps = (double(k) / s) * (double(k) / s);
  ExpectFans(FansOf(WeightLayout::kConvTranspose, node, w, kOnnx), (c / g) * taps, (m / g) * k * k,
             1);
  ExpectFans(FansOf(WeightLayout::kConvTranspose, node, w, kTorch), (m / g) * k * k, c * k * k, 1);
}

TEST(ConvTranspose, KernelSmallerThanStrideCountsTheOutputsThatGetATap) {
  // k = 1, s = 2: half the outputs get no tap, the others exactly one per input channel, so
  // per dimension the tap count is max(1, k/s) = 1, not 0.5.
  const int64_t c = 6, m = 4;
  const Shape w = {c, m, 1, 3};
  const std::string node = "y = ConvTranspose <strides = [2, 2]> (x, w)";
  ExpectFans(FansOf(WeightLayout::kConvTranspose, node, w, kOnnx), c * 1.0 * 1.5, m * 3, 1);
}

TEST(InputChannels, ConvNeedsGroupTimesWeightChannels) {
  const Shape w = {6, 1, 3, 3};
  const auto node = ParseNode("y = Conv <group = 3> (x, w)");
  EXPECT_TRUE(CheckInputChannels(RuleFor(WeightLayout::kConv), node, w, 3).ok());
  EXPECT_TRUE(CheckInputChannels(RuleFor(WeightLayout::kConv), node, w, -1).ok());  // unknown
  Status s = CheckInputChannels(RuleFor(WeightLayout::kConv), node, w, 4);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "expects 3 input channels, but input 'x' has 4"))
      << s.message();
}

TEST(InputChannels, ConvTransposeNeedsWeightDimZero) {
  const Shape w = {8, 2, 3, 3};
  const auto node = ParseNode("y = ConvTranspose <group = 2> (x, w)");
  EXPECT_TRUE(CheckInputChannels(RuleFor(WeightLayout::kConvTranspose), node, w, 8).ok());
  Status s = CheckInputChannels(RuleFor(WeightLayout::kConvTranspose), node, w, 4);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "expects 8 input channels")) << s.message();
  // Dense layers are not checked here (shape inference does).
  EXPECT_TRUE(
      CheckInputChannels(RuleFor(WeightLayout::kGemm), ParseNode("y = Gemm (x, w)"), {3, 4}, 99)
          .ok());
}

TEST(ConvTranspose, StridesOfTheWrongLengthAreAnError) {
  const std::string msg = ErrorOf(WeightLayout::kConvTranspose,
                                  "y = ConvTranspose <strides = [2]> (x, w)", {4, 2, 3, 3}, kOnnx);
  EXPECT_TRUE(Contains(msg, "strides has 1 values for 2 spatial dims"));
}

TEST(ConvTranspose, ZeroStrideIsAnError) {
  const std::string msg =
      ErrorOf(WeightLayout::kConvTranspose, "y = ConvTranspose <strides = [1, 0]> (x, w)",
              {4, 2, 3, 3}, kOnnx);
  EXPECT_TRUE(Contains(msg, "stride 0 must be >= 1"));
}

// --- Errors.

TEST(Errors, GroupZero) {
  for (auto convention : {kOnnx, kTorch}) {
    const std::string msg =
        ErrorOf(WeightLayout::kConv, "y = Conv <group = 0> (x, w)", {8, 2, 3, 3}, convention);
    EXPECT_TRUE(Contains(msg, "group 0 must be >= 1"));
    EXPECT_TRUE(Contains(msg, "[8, 2, 3, 3]"));
  }
}

TEST(Errors, GroupThatDoesNotDivideOutputChannels) {
  // An invalid model whatever the convention.
  for (auto convention : {kOnnx, kTorch}) {
    const std::string msg =
        ErrorOf(WeightLayout::kConv, "y = Conv <group = 3> (x, w)", {16, 2, 3, 3}, convention);
    EXPECT_TRUE(Contains(msg, "group 3 does not divide 16 output channels"));
  }
}

TEST(Errors, GroupThatDoesNotDivideTransposedInputChannels) {
  for (auto convention : {kOnnx, kTorch}) {
    const std::string msg = ErrorOf(WeightLayout::kConvTranspose,
                                    "y = ConvTranspose <group = 3> (x, w)", {8, 2, 3}, convention);
    EXPECT_TRUE(Contains(msg, "group 3 does not divide 8 input channels"));
  }
}

TEST(Errors, ZeroOrNegativeDimension) {
  for (const Shape& w : {Shape{8, 0, 3, 3}, Shape{8, 2, -1, 3}}) {
    const std::string msg = ErrorOf(WeightLayout::kConv, "y = Conv (x, w)", w, kOnnx);
    EXPECT_TRUE(Contains(msg, "has a dimension <= 0"));
  }
  const std::string msg = ErrorOf(WeightLayout::kGemm, "y = Gemm (x, w)", {0, 4}, kTorch);
  EXPECT_TRUE(Contains(msg, "weight shape [0, 4]: has a dimension <= 0"));
}

TEST(Errors, ConvRankTooSmall) {
  for (auto layout : {WeightLayout::kConv, WeightLayout::kConvTranspose}) {
    const std::string msg =
        ErrorOf(layout, "y = " + std::string(RuleFor(layout).op) + " (x, w)", {8, 2}, kOnnx);
    EXPECT_TRUE(Contains(msg, "weight shape [8, 2]: " + std::string(RuleFor(layout).op) +
                                  " weight must have rank >= 3"));
  }
}

}  // namespace
}  // namespace fans_test
}  // namespace reinit

// QDQ weights: drawn in float, requantized with new scales, zero points kept.
#include "io/quantize.h"

#include <gtest/gtest.h>

#include <cmath>

#include "init/apply.h"
#include "io/tensor_codec.h"
#include "model_builder.h"
#include "plan/plan.h"
#include "stats.h"

namespace reinit {
namespace quantize_test {
namespace {

using reinit_test::FindInitializer;
using reinit_test::ParseModel;

onnx::TensorProto* AddTensor(onnx::ModelProto* m, const std::string& name, int32_t type,
                             std::vector<int64_t> dims, const std::vector<int32_t>& ints,
                             const std::vector<float>& floats = {}) {
  auto* t = m->mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  if (!floats.empty()) {
    for (float f : floats) t->add_float_data(f);
  } else {
    std::string raw;
    for (int32_t v : ints) raw.push_back(static_cast<char>(v));
    t->set_raw_data(raw);
  }
  return t;
}

// Gemm(x, DequantizeLinear(Wq, scale, zp)) with W [16, 64] (transB = 1) followed by Relu.
onnx::ModelProto Qdq(int32_t type, bool per_axis) {
  auto m = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 64] x) => (float[1, 16] y) {
  w = DequantizeLinear <axis = 0> (wq, scale, zp)
  h = Gemm <transB = 1> (x, w)
  y = Relu (h)
})");
  const int32_t z = type == onnx::TensorProto::INT8 ? 0 : 128;
  std::vector<int32_t> q(16 * 64);
  for (size_t i = 0; i < q.size(); ++i) q[i] = z + static_cast<int32_t>(i % 50) - 25;
  AddTensor(&m, "wq", type, {16, 64}, q);
  const int64_t n = per_axis ? 16 : 1;
  std::vector<int64_t> dims = per_axis ? std::vector<int64_t>{16} : std::vector<int64_t>{};
  AddTensor(&m, "scale", onnx::TensorProto::FLOAT, dims, {}, std::vector<float>(n, 0.01f));
  AddTensor(&m, "zp", type, dims, std::vector<int32_t>(n, z));
  return m;
}

void CheckRequantized(int32_t type, bool per_axis) {
  SCOPED_TRACE(std::string(type == onnx::TensorProto::INT8 ? "int8" : "uint8") +
               (per_axis ? " per axis" : " per tensor"));
  auto model = Qdq(type, per_axis);
  const std::string zp_before = FindInitializer(model, "zp")->SerializeAsString();
  auto plan = MakePlan(model, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const auto& w = plan->layers(0).weight();
  EXPECT_EQ(plan->layers(0).skipped(), "");
  EXPECT_EQ(w.name(), "wq");
  EXPECT_EQ(w.quant_scale(), "scale");
  EXPECT_EQ(w.quant_axis(), per_axis ? 0 : -1);
  EXPECT_EQ(plan->layers(0).fan_in(), 64);
  ASSERT_TRUE(ApplyPlan(*plan, &model).ok());
  EXPECT_EQ(FindInitializer(model, "zp")->SerializeAsString(), zp_before) << "zero points kept";
  auto q = ReadIntegers(*FindInitializer(model, "wq"));
  auto scales = ReadValues(*FindInitializer(model, "scale"));
  ASSERT_TRUE(q.ok() && scales.ok());
  const int32_t z = type == onnx::TensorProto::INT8 ? 0 : 128;
  const int32_t qmin = type == onnx::TensorProto::INT8 ? -128 : 0;
  const int32_t qmax = type == onnx::TensorProto::INT8 ? 127 : 255;
  std::vector<double> dequantized;
  for (int64_t r = 0; r < 16; ++r) {
    const double s = (*scales)[per_axis ? r : 0];
    int32_t hi = z, lo = z;
    for (int64_t c = 0; c < 64; ++c) {
      const int32_t v = (*q)[r * 64 + c];
      ASSERT_GE(v, qmin);
      ASSERT_LE(v, qmax);
      hi = std::max(hi, v);
      lo = std::min(lo, v);
      dequantized.push_back((v - z) * s);
    }
    // The scale is tight: some value of the row (or tensor) reaches an end of the range.
    if (per_axis) {
      EXPECT_TRUE(hi == qmax || lo == qmin) << "row " << r;
    }
  }
  // He normal for ReLU: variance 2/64, plus quantization noise of variance s²/12 (small).
  reinit_test::ExpectNormal(dequantized, 2.0 / 64, "dequantized weight");
}

TEST(Quantized, Int8PerTensorAndUint8PerAxisAreRequantized) {
  CheckRequantized(onnx::TensorProto::INT8, false);
  CheckRequantized(onnx::TensorProto::INT8, true);
  CheckRequantized(onnx::TensorProto::UINT8, true);
}

TEST(Quantized, Int8WithoutDequantizeLinearIsSkippedAndSaysWhy) {
  auto m = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (int8[1, 4] x) => (y) { y = MatMul (x, w) })");
  AddTensor(&m, "w", onnx::TensorProto::INT8, {4, 4}, std::vector<int32_t>(16, 1));
  auto plan = MakePlan(m, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_NE(plan->layers(0).skipped().find("only through DequantizeLinear"), std::string::npos)
      << plan->layers(0).skipped();
}

TEST(Quantized, RequantizeKeepsZeroPointsAndFitsTheRange) {
  // Closed form: per tensor, values ±1 with z = 10 in int8: scale = max(1/117, 1/138) = 1/117.
  auto r =
      Requantize(std::vector<float>{1.0f, -1.0f, 0.5f}, {3}, -1, {10}, onnx::TensorProto::INT8);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->scales[0], 1.0 / 117);
  // 0.5 · 117 = 58.5 rounds half to even, as ONNX's QuantizeLinear does: 58.
  EXPECT_EQ(r->q, (std::vector<int32_t>{127, 10 - 117, 10 + 58}));
}

}  // namespace
}  // namespace quantize_test
}  // namespace reinit

// QDQ weights: drawn in float, requantized into their own type and layout (per tensor, per
// axis, blocked) with new scales, zero points kept; the integers' packing; the closed forms of
// the scale rules; what cannot be requantized, and why.
#include "io/quantize.h"

#include <gtest/gtest.h>

#include <Eigen/Core>
#include <cmath>

#include "init/apply.h"
#include "io/codes.h"
#include "io/minifloat.h"
#include "io/tensor_codec.h"
#include "model_builder.h"
#include "plan/plan.h"
#include "stats.h"

namespace reinit {
namespace quantize_test {
namespace {

using onnx::TensorProto;
using reinit_test::FindInitializer;
using reinit_test::ParseModel;

// An initializer of `type` holding `values`: integers and FLOAT8/FLOAT4 codes through io/codes,
// the others (scales) through the float codec.
TensorProto* AddTensor(onnx::ModelProto* m, const std::string& name, int32_t type,
                       const std::vector<int64_t>& dims, const std::vector<double>& values) {
  auto* t = m->mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  Status s;
  if (CodeBits(type) != 0 && !FindMinifloat(type)) {
    s = WriteIntegers(std::vector<int32_t>(values.begin(), values.end()), t);
  } else {
    s = WriteValues(std::span<const double>(values), t);
  }
  EXPECT_TRUE(s.ok()) << s.message();
  return t;
}

// ---- Integers: reading and writing ------------------------------------------------------------

TEST(Quantized, Int4AndUint4PackTwoAByteLowNibbleFirst) {
  TensorProto t;
  t.set_name("q");
  t.set_data_type(TensorProto::INT4);
  t.add_dims(5);
  // -1, 2, -8, 7, 0 -> nibbles f, 2, 8, 7, 0 -> 0x2f, 0x78, 0x00.
  ASSERT_TRUE(WriteIntegers(std::vector<int32_t>{-1, 2, -8, 7, 0}, &t).ok());
  EXPECT_EQ(t.raw_data(), std::string("\x2f\x78\x00", 3));
  EXPECT_EQ(*ReadIntegers(t), (std::vector<int32_t>{-1, 2, -8, 7, 0}));
  EXPECT_EQ(WriteIntegers(std::vector<int32_t>{8, 0, 0, 0, 0}, &t).message(),
            "tensor 'q': 8 is out of the range of INT4");

  t.set_data_type(TensorProto::UINT4);
  ASSERT_TRUE(WriteIntegers(std::vector<int32_t>{15, 0, 1, 8, 9}, &t).ok());
  EXPECT_EQ(t.raw_data(), std::string("\x0f\x81\x09", 3));
  EXPECT_EQ(*ReadIntegers(t), (std::vector<int32_t>{15, 0, 1, 8, 9}));

  // int32_data: one packed byte an entry (onnx.helper.make_tensor(..., raw=False)).
  t.set_data_type(TensorProto::INT4);
  t.clear_raw_data();
  t.add_int32_data(47);  // 0x2f
  t.add_int32_data(8);
  t.add_int32_data(0);
  EXPECT_EQ(*ReadIntegers(t), (std::vector<int32_t>{-1, 2, -8, 0, 0}));
}

TEST(Quantized, Int8KeepsItsSignedInt32Data) {
  TensorProto t;
  t.set_name("q");
  t.set_data_type(TensorProto::INT8);
  t.add_dims(3);
  for (int v : {-5, 0, 127}) t.add_int32_data(v);
  EXPECT_EQ(*ReadIntegers(t), (std::vector<int32_t>{-5, 0, 127}));
  ASSERT_TRUE(WriteIntegers(std::vector<int32_t>{-128, 1, -1}, &t).ok());
  EXPECT_EQ(std::vector<int32_t>(t.int32_data().begin(), t.int32_data().end()),
            (std::vector<int32_t>{-128, 1, -1}));
  t.set_data_type(TensorProto::FLOAT8E4M3FN);
  EXPECT_EQ(ReadIntegers(t).status().message(), "tensor 'q' is not INT8, UINT8, INT4 or UINT4");
}

TEST(Quantized, TypeNames) {
  EXPECT_EQ(QuantizedTypeNames(),
            "INT8, UINT8, INT4, UINT4, FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, "
            "FLOAT4E2M1");
  EXPECT_TRUE(IsQuantizedType(TensorProto::INT4));
  EXPECT_TRUE(IsQuantizedType(TensorProto::FLOAT8E5M2));
  EXPECT_FALSE(IsQuantizedType(TensorProto::INT16));
  EXPECT_FALSE(IsQuantizedType(TensorProto::FLOAT));
}

// ---- The scale rules, in closed form ----------------------------------------------------------

std::vector<int32_t> Integers(const Requantized& r, int32_t type) {
  TensorProto t;
  t.set_data_type(type);
  t.add_dims(static_cast<int64_t>(r.codes.size()));
  EXPECT_TRUE(WriteCodes(r.codes, &t).ok());
  return *ReadIntegers(t);
}

TEST(Quantized, RequantizeRoundsHalfToEvenAroundTheZeroPoint) {
  // Per tensor, int8, z = 10: scale = max(117 / 117, 1 / 138) = 1, exact in FLOAT; q =
  // round(w) + 10 with ties to even (2.5 -> 2, 3.5 -> 4, -2.5 -> -2), as QuantizeLinear does.
  const std::vector<float> w = {117, 2.5, 3.5, -2.5, -0.5};
  auto r = Requantize(w, {5}, {}, std::vector<int32_t>{10}, TensorProto::INT8, TensorProto::FLOAT);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scales, std::vector<double>{1.0});
  EXPECT_EQ(Integers(*r, TensorProto::INT8), (std::vector<int32_t>{127, 12, 14, 8, 10}));
}

TEST(Quantized, RequantizePerAxisInt4) {
  // Rows of [2, 3] along axis 0, zero points 0 and 1.
  // Row 0: scale max(7 / 7, 3.5 / 8) = 1; -3.5 -> -4 (even). Row 1: scale max(2.5 / 6, 9 / 9) =
  // 1; 2.5 -> 2 (even) + 1.
  const std::vector<float> w = {7, -3.5, 1, -9, 2.5, 0};
  auto r = Requantize(w, {2, 3}, {.axis = 0}, std::vector<int32_t>{0, 1}, TensorProto::INT4,
                      TensorProto::FLOAT);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scales, (std::vector<double>{1.0, 1.0}));
  EXPECT_EQ(Integers(*r, TensorProto::INT4), (std::vector<int32_t>{7, -4, 1, -8, 3, 1}));
  EXPECT_EQ(r->codes, (std::vector<uint8_t>{0x7, 0xc, 0x1, 0x8, 0x3, 0x1}));
}

TEST(Quantized, RequantizeBlockedUint4) {
  // [2, 5] in blocks of 2 along axis 1: scales [2, 3], the last block of each row one element.
  // z = 8: a block's scale is max(w / 7, w / -8). Row 0: {1, -2} -> 0.25, {0.5, 0.25} -> 0.5/7,
  // {3} -> 3/7. Row 1 is zeros: scale 1.
  const std::vector<float> w = {1, -2, 0.5, 0.25, 3, 0, 0, 0, 0, 0};
  auto r = Requantize(w, {2, 5}, {.axis = 1, .block_size = 2}, std::vector<int32_t>{8},
                      TensorProto::UINT4, TensorProto::FLOAT);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::vector<double> scales = {
      0.25, static_cast<float>(0.5 / 7), static_cast<float>(3.0 / 7), 1, 1, 1};
  EXPECT_EQ(r->scales, scales);
  const auto q = Integers(*r, TensorProto::UINT4);
  EXPECT_EQ(q[0], 12);  // 1 / 0.25 + 8
  EXPECT_EQ(q[1], 0);   // -2 / 0.25 + 8
  EXPECT_EQ(q[2], 15);  // the block's largest reaches qmax
  EXPECT_EQ(q[4], 15);
  for (int i = 5; i < 10; ++i) EXPECT_EQ(q[i], 8) << i;
}

// Blocks along axis 0 of [5, 2] (blocks of 2: scale [3, 2]): element (r, c) uses scale
// (r / 2, c); a distinct value per block shows which scale each element got.
TEST(Quantized, RequantizeBlockedAlongTheFirstAxis) {
  const std::vector<float> w = {1, 10, 2, 20, 3, 30, 4, 40, 5, 50};
  auto r = Requantize(w, {5, 2}, {.axis = 0, .block_size = 2}, {}, TensorProto::INT8,
                      TensorProto::FLOAT);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::vector<double> want = {2 / 127.0,  20 / 127.0, 4 / 127.0,
                                    40 / 127.0, 5 / 127.0,  50 / 127.0};
  ASSERT_EQ(r->scales.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(r->scales[k], static_cast<float>(want[k])) << k;
  }
  EXPECT_EQ(Integers(*r, TensorProto::INT8)[8], 127);  // 5 alone in the last block of column 0
}

TEST(Quantized, RequantizeFloat8PerAxisSaturatesTheLargest) {
  // E4M3FN, rows along axis 0: row 0's max |w| is 896, scale 896 / 448 = 2: 896 -> 448 (0x7e),
  // -1 -> -0.5 (0xb0). Row 1 is zeros: scale 1, codes 0.
  const std::vector<float> w = {896, -1, 0, 0};
  auto r = Requantize(w, {2, 2}, {.axis = 0}, {}, TensorProto::FLOAT8E4M3FN, TensorProto::FLOAT);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scales, (std::vector<double>{2, 1}));
  EXPECT_EQ(r->codes, (std::vector<uint8_t>{0x7e, 0xb0, 0, 0}));
  // FLOAT4E2M1: max 6; 3 / (3 / 6) = 6 (0x7), -1.25 / 0.5 = -2.5 -> -2 (even: 0xc).
  r = Requantize(std::vector<float>{3, -1.25}, {2}, {}, {}, TensorProto::FLOAT4E2M1,
                 TensorProto::FLOAT);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->scales, std::vector<double>{0.5});
  EXPECT_EQ(r->codes, (std::vector<uint8_t>{0x7, 0xc}));
}

// A FLOAT16 scale is rounded first, and q computed with the rounded scale: 1/127 is not a
// float16, and the largest value still maps to 127.
TEST(Quantized, ScalesAreRoundedToTheirTypeBeforeQuantizing) {
  const std::vector<float> w = {1.0f, -0.3f};
  for (int32_t type : {TensorProto::FLOAT16, TensorProto::BFLOAT16}) {
    auto r = Requantize(w, {2}, {}, {}, TensorProto::INT8, type);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const double stored =
        type == TensorProto::FLOAT16
            ? static_cast<double>(static_cast<float>(Eigen::half(1.0f / 127)))
            : static_cast<double>(static_cast<float>(Eigen::bfloat16(1.0f / 127)));
    EXPECT_EQ(r->scales, std::vector<double>{stored}) << type;
    EXPECT_NE(stored, 1.0 / 127);
    EXPECT_EQ(Integers(*r, TensorProto::INT8),
              (std::vector<int32_t>{127, static_cast<int32_t>(std::nearbyint(-0.3f / stored))}));
  }
  // A scale too small for FLOAT16 (1e-9 / 127 underflows) is doubled until it is not 0.
  auto tiny =
      Requantize(std::vector<float>{1e-9f}, {1}, {}, {}, TensorProto::INT8, TensorProto::FLOAT16);
  ASSERT_TRUE(tiny.ok()) << tiny.status().message();
  EXPECT_GT(tiny->scales[0], 0);
  EXPECT_EQ(tiny->scales[0], 0x1p-24);  // the smallest float16
}

TEST(Quantized, RequantizeRefusesBadZeroPointsAndLayouts) {
  const std::vector<float> w(6, 1.0f);
  EXPECT_EQ(Requantize(w, {2, 3}, {.axis = 0}, std::vector<int32_t>{1, 2, 3}, TensorProto::INT8,
                       TensorProto::FLOAT)
                .status()
                .message(),
            "3 zero points for 2 scales");
  EXPECT_EQ(Requantize(w, {6}, {}, std::vector<int32_t>{16}, TensorProto::UINT4, TensorProto::FLOAT)
                .status()
                .message(),
            "zero point 16 out of range");
  EXPECT_EQ(
      Requantize(w, {6}, {}, std::vector<int32_t>{1}, TensorProto::FLOAT8E5M2, TensorProto::FLOAT)
          .status()
          .message(),
      "zero point 1 out of range");
  EXPECT_EQ(Requantize(w, {2, 3}, {.axis = 2}, {}, TensorProto::INT8, TensorProto::FLOAT)
                .status()
                .message(),
            "axis 2 out of range for rank 2");
  EXPECT_EQ(Requantize(w, {6}, {}, {}, TensorProto::INT16, TensorProto::FLOAT).status().message(),
            "INT16 is not a quantized type (INT8, UINT8, INT4, UINT4, FLOAT8E4M3FN, "
            "FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1)");
}

// ---- What can be requantized -----------------------------------------------------------------

TensorProto Tensor(const std::string& name, int32_t type, std::vector<int64_t> dims) {
  TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  int64_t n = 1;
  for (int64_t d : dims) {
    t.add_dims(d);
    n *= d;
  }
  t.set_raw_data(std::string(static_cast<size_t>(CodeBits(type) == 4   ? (n + 1) / 2
                                                 : CodeBits(type) == 8 ? n
                                                                       : 4 * n),
                             '\0'));
  return t;
}

TEST(Quantized, QuantizationProblemsSayWhy) {
  const TensorProto q = Tensor("wq", TensorProto::INT4, {16, 64});
  const TensorProto blocked = Tensor("s", TensorProto::FLOAT, {16, 4});
  EXPECT_EQ(QuantizationProblem(q, blocked, nullptr, {.axis = 1, .block_size = 16}), "");
  EXPECT_EQ(QuantizationProblem(q, blocked, nullptr, {.axis = 1, .block_size = 32}),
            "its scale 's' has dims [16, 4], expected [16, 2] for dims [16, 64] along axis 1 in "
            "blocks of 32");
  EXPECT_EQ(QuantizationProblem(q, Tensor("s", TensorProto::FLOAT, {64}), nullptr, {.axis = 0}),
            "its scale 's' has dims [64], expected [16] for dims [16, 64] along axis 0");
  EXPECT_EQ(QuantizationProblem(q, Tensor("s", TensorProto::FLOAT, {2}), nullptr, {}),
            "its scale 's' has dims [2], expected one element");
  EXPECT_EQ(QuantizationProblem(q, Tensor("s", TensorProto::DOUBLE, {}), nullptr, {}),
            "its scale 's' has data type DOUBLE; a scale is FLOAT, FLOAT16 or BFLOAT16");
  EXPECT_EQ(QuantizationProblem(q, blocked, nullptr, {.axis = 2}),
            "DequantizeLinear's axis 2 out of range for rank 2");
  EXPECT_EQ(QuantizationProblem(Tensor("wq", TensorProto::INT16, {4}),
                                Tensor("s", TensorProto::FLOAT, {}), nullptr, {}),
            "dequantized from INT16; only INT8, UINT8, INT4, UINT4, FLOAT8E4M3FN, FLOAT8E4M3FNUZ, "
            "FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1 can be requantized");
  const TensorProto uint4_zp = Tensor("zp", TensorProto::UINT4, {16, 4});
  EXPECT_EQ(QuantizationProblem(q, blocked, &uint4_zp, {.axis = 1, .block_size = 16}),
            "its zero point 'zp' (UINT4 [16, 4]) is not INT4 [16, 4] as its scale");
  const TensorProto int4_zp = Tensor("zp", TensorProto::INT4, {16, 4});
  EXPECT_EQ(QuantizationProblem(q, blocked, &int4_zp, {.axis = 1, .block_size = 16}), "");
  // FLOAT8 zero points must be 0.
  const TensorProto f8 = Tensor("wq", TensorProto::FLOAT8E4M3FN, {4});
  TensorProto f8_zp = Tensor("zp", TensorProto::FLOAT8E4M3FN, {});
  EXPECT_EQ(QuantizationProblem(f8, Tensor("s", TensorProto::FLOAT16, {}), &f8_zp, {}), "");
  f8_zp.set_raw_data(std::string(1, '\x38'));  // 1.0
  EXPECT_EQ(QuantizationProblem(f8, Tensor("s", TensorProto::FLOAT16, {}), &f8_zp, {}),
            "its zero point: tensor 'zp' holds 1; a FLOAT8E4M3FN zero point must be 0");
}

// ---- Through the plan and apply ---------------------------------------------------------------

// Gemm(x, DequantizeLinear(wq, scale, zp)) with W [kRows, kCols] (transB = 1) and Relu after it:
// He normal, variance 2 / kCols.
constexpr int64_t kRows = 64, kCols = 256;

struct QdqCase {
  std::string name;
  int32_t type;
  QuantLayout layout;
  int32_t scale_type = TensorProto::FLOAT;
  bool zero_point = true;
  bool typed = false;  // q in int32_data rather than raw_data
};

std::vector<int64_t> ScaleDims(const QdqCase& c) {
  if (c.layout.axis < 0) return {};
  if (c.layout.block_size == 0) return {c.layout.axis == 0 ? kRows : kCols};
  std::vector<int64_t> dims = {kRows, kCols};
  dims[c.layout.axis] = (dims[c.layout.axis] + c.layout.block_size - 1) / c.layout.block_size;
  return dims;
}

// The zero points: integers spread around the middle of the range (a different one per scale),
// FLOAT8 zeros.
std::vector<double> ZeroPoints(const QdqCase& c, int64_t n) {
  std::vector<double> z(static_cast<size_t>(n), 0.0);
  if (FindMinifloat(c.type)) return z;
  const int32_t mid = c.type == TensorProto::UINT8 ? 128 : c.type == TensorProto::UINT4 ? 8 : 0;
  const int32_t spread = CodeBits(c.type) == 4 ? 1 : 3;
  for (int64_t k = 0; k < n; ++k) z[k] = mid + static_cast<int32_t>(k % (2 * spread + 1)) - spread;
  return z;
}

onnx::ModelProto QdqModel(const QdqCase& c) {
  std::string attrs = c.layout.axis < 0 ? "" : "axis = " + std::to_string(c.layout.axis);
  if (c.layout.block_size) attrs += ", block_size = " + std::to_string(c.layout.block_size);
  if (!attrs.empty()) attrs = "<" + attrs + ">";
  auto m = ParseModel(
      "<ir_version: 10, opset_import: [\"\" : 21]>\n"
      "g (float[1, " +
      std::to_string(kCols) + "] x) => (float[1, " + std::to_string(kRows) +
      "] y) {\n"
      "  w = DequantizeLinear " +
      attrs + (c.zero_point ? " (wq, scale, zp)\n" : " (wq, scale)\n") +
      "  h = Gemm <transB = 1> (x, w)\n"
      "  y = Relu (h)\n}");
  m.mutable_graph()->mutable_node(1)->set_name("fc");
  std::vector<double> old(static_cast<size_t>(kRows * kCols));
  for (size_t i = 0; i < old.size(); ++i) old[i] = FindMinifloat(c.type) ? 0.5 : i % 3;
  TensorProto* q = AddTensor(&m, "wq", c.type, {kRows, kCols}, old);
  if (c.typed) {
    const std::string raw = q->raw_data();
    q->clear_raw_data();
    for (char b : raw) q->add_int32_data(static_cast<uint8_t>(b));
  }
  const std::vector<int64_t> dims = ScaleDims(c);
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  AddTensor(&m, "scale", c.scale_type, dims, std::vector<double>(static_cast<size_t>(n), 0.01));
  if (c.zero_point) AddTensor(&m, "zp", c.type, dims, ZeroPoints(c, n));
  return m;
}

// Every element's scale index, as DequantizeLinear broadcasts the scale.
int64_t SliceOf(const QdqCase& c, int64_t r, int64_t col) {
  const auto& l = c.layout;
  if (l.axis < 0) return 0;
  if (l.block_size == 0) return l.axis == 0 ? r : col;
  const int64_t blocks = (kCols + l.block_size - 1) / l.block_size;
  return l.axis == 0 ? (r / l.block_size) * kCols + col : r * blocks + col / l.block_size;
}

void CheckRequantized(const QdqCase& c) {
  SCOPED_TRACE(c.name);
  auto model = QdqModel(c);
  const std::string zp_before =
      c.zero_point ? FindInitializer(model, "zp")->SerializeAsString() : "";
  const std::string q_before = FindInitializer(model, "wq")->SerializeAsString();
  auto plan = MakePlan(model, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const auto& layer = plan->layers(0);
  const auto& w = layer.weight();
  ASSERT_EQ(layer.skipped(), "");
  EXPECT_EQ(w.name(), "wq");
  EXPECT_EQ(w.data_type(), DataTypeName(c.type));
  EXPECT_EQ(w.quant_scale(), "scale");
  EXPECT_EQ(w.quant_zero_point(), c.zero_point ? "zp" : "");
  EXPECT_EQ(w.quant_axis(), c.layout.axis);
  EXPECT_EQ(w.has_quant_block_size(), c.layout.block_size > 0);
  EXPECT_EQ(w.quant_block_size(), c.layout.block_size);
  EXPECT_EQ(layer.fan_in(), kCols);
  EXPECT_EQ(plan->layers_size(), 1) << "the scale and zero point are no loose parameters";

  ASSERT_TRUE(ApplyPlan(*plan, &model).ok());
  const TensorProto& q = *FindInitializer(model, "wq");
  const TensorProto& scale = *FindInitializer(model, "scale");
  if (c.zero_point) {
    EXPECT_EQ(FindInitializer(model, "zp")->SerializeAsString(), zp_before) << "zero points kept";
  }
  EXPECT_NE(q.SerializeAsString(), q_before);
  EXPECT_EQ(q.has_raw_data(), !c.typed) << "the storage field is kept";
  EXPECT_EQ(scale.data_type(), c.scale_type);
  auto scales = ReadValues(scale);
  ASSERT_TRUE(scales.ok()) << scales.status().message();
  std::vector<double> zps(scales->size(), 0.0);
  if (c.zero_point) zps = ZeroPoints(c, static_cast<int64_t>(scales->size()));

  // Dequantize as DequantizeLinear does; every slice reaches the end of the range (the tightest
  // scale), and the quantization noise is at most step² / 12 an element.
  const MinifloatFormat* format = FindMinifloat(c.type);
  std::vector<double> values, ints;
  if (format) {
    values = *ReadValues(q);
  } else {
    auto read = ReadIntegers(q);
    ASSERT_TRUE(read.ok());
    values.assign(read->begin(), read->end());
  }
  // hi, lo: each slice's largest and smallest stored value.
  std::vector<double> dequantized, hi(scales->size(), -1e9), lo(scales->size(), 1e9);
  double noise = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t col = 0; col < kCols; ++col) {
      const int64_t k = SliceOf(c, r, col);
      const double v = values[r * kCols + col];
      const double s = (*scales)[k];
      dequantized.push_back((v - zps[k]) * s);
      hi[k] = std::max(hi[k], v);
      lo[k] = std::min(lo[k], v);
      double step = s;
      if (format) {
        const int e = std::max(std::ilogb(v == 0 ? 1e-30 : v), 1 - format->bias);
        step = s * std::ldexp(1.0, e - format->mantissa_bits);
      }
      noise += step * step / 12;
    }
  }
  for (size_t k = 0; k < hi.size(); ++k) {
    if (format) {
      EXPECT_EQ(std::max(hi[k], -lo[k]), format->max) << "slice " << k;
    } else {
      const double qmax = c.type == TensorProto::INT8    ? 127
                          : c.type == TensorProto::UINT8 ? 255
                          : c.type == TensorProto::INT4  ? 7
                                                         : 15;
      const double qmin = c.type == TensorProto::INT8 ? -128 : c.type == TensorProto::INT4 ? -8 : 0;
      EXPECT_TRUE(hi[k] == qmax || lo[k] == qmin)
          << "slice " << k << " spans [" << lo[k] << ", " << hi[k] << "] around " << zps[k];
    }
  }
  // He normal: variance 2 / kCols, within 5 standard errors, plus the mean quantization noise.
  const double var = 2.0 / kCols, n = static_cast<double>(dequantized.size());
  const double se = var * std::sqrt(2 / (n - 1));
  EXPECT_NEAR(reinit_test::Mean(dequantized), 0, 5 * std::sqrt(var / n));
  EXPECT_GT(reinit_test::Variance(dequantized), var - 5 * se);
  EXPECT_LT(reinit_test::Variance(dequantized), var + noise / n + 5 * se);
}

TEST(Quantized, EveryTypeAndLayoutIsRequantized) {
  using T = TensorProto;
  const QdqCase cases[] = {
      {"int8 per tensor", T::INT8, {}},
      {"int8 per axis 0", T::INT8, {.axis = 0}},
      {"uint8 per axis 0", T::UINT8, {.axis = 0}},
      {"uint8 int32_data", T::UINT8, {.axis = 0}, T::FLOAT, true, true},
      {"int8 blocked 32 along axis 1", T::INT8, {.axis = 1, .block_size = 32}},
      {"int4 blocked 32 along axis 1", T::INT4, {.axis = 1, .block_size = 32}},
      {"int4 blocked 16 along axis 0", T::INT4, {.axis = 0, .block_size = 16}},
      {"int4 blocked 48 (a partial block)", T::INT4, {.axis = 1, .block_size = 48}},
      {"int4 per axis 0, float16 scales", T::INT4, {.axis = 0}, T::FLOAT16},
      {"int4 int32_data, bfloat16 scales", T::INT4, {.axis = 0}, T::BFLOAT16, true, true},
      {"uint4 per axis 1", T::UINT4, {.axis = 1}},
      {"uint4 per tensor", T::UINT4, {}},
      {"e4m3fn per tensor", T::FLOAT8E4M3FN, {}},
      {"e4m3fn per axis, no zero point", T::FLOAT8E4M3FN, {.axis = 0}, T::FLOAT, false},
      {"e4m3fnuz blocked", T::FLOAT8E4M3FNUZ, {.axis = 1, .block_size = 64}},
      {"e5m2 per tensor, float16 scale", T::FLOAT8E5M2, {}, T::FLOAT16},
      {"e5m2fnuz per axis", T::FLOAT8E5M2FNUZ, {.axis = 0}},
      {"e2m1 blocked 32", T::FLOAT4E2M1, {.axis = 1, .block_size = 32}, T::FLOAT, false},
  };
  for (const auto& c : cases) CheckRequantized(c);
}

TEST(Quantized, UnsupportedQuantizationIsSkippedAndSaysWhy) {
  // A FLOAT8 zero point that is not 0.
  QdqCase c{"e4m3fn", TensorProto::FLOAT8E4M3FN, {}};
  auto m = QdqModel(c);
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.name() == "zp") t.set_raw_data(std::string(1, '\x38'));  // 1.0
  }
  auto plan = MakePlan(m, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->layers(0).skipped(),
            "weight 'wq': its zero point: tensor 'zp' holds 1; a FLOAT8E4M3FN zero point must be "
            "0");
  // A blocked scale of the wrong shape.
  c = {"int4", TensorProto::INT4, {.axis = 1, .block_size = 32}};
  m = QdqModel(c);
  auto* node = m.mutable_graph()->mutable_node(0);
  for (auto& a : *node->mutable_attribute()) {
    if (a.name() == "block_size") a.set_i(64);
  }
  plan = MakePlan(m, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->layers(0).skipped(),
            "weight 'wq': its scale 'scale' has dims [64, 8], expected [64, 4] for dims [64, 256] "
            "along axis 1 in blocks of 64");
}

TEST(Quantized, IntegersWithoutDequantizeLinearAreSkippedAndSayWhy) {
  for (int32_t type : {TensorProto::INT8, TensorProto::INT4}) {
    auto m = ParseModel(R"(<ir_version: 10, opset_import: ["" : 21]>
g (float[1, 4] x) => (y) { y = MatMul (x, w) })");
    AddTensor(&m, "w", type, {4, 4}, std::vector<double>(16, 1));
    auto plan = MakePlan(m, {});
    ASSERT_TRUE(plan.ok());
    EXPECT_NE(plan->layers(0).skipped().find("(" + DataTypeName(type) +
                                             " only through DequantizeLinear)"),
              std::string::npos)
        << plan->layers(0).skipped();
  }
}

// A FLOAT8 or FLOAT4 weight seen through a Cast is drawn directly: the draw a FLOAT weight of the
// same name gets (the streams depend on the seed and the name only), cast with rounding to
// nearest even and saturation.
onnx::ModelProto CastGemm(int32_t type) {
  auto m = ParseModel(
      "<ir_version: 11, opset_import: [\"\" : 23]>\n"
      "g (float[1, 256] x) => (float[1, 64] y) {\n"
      "  w = Cast <to = 1> (w8)\n"
      "  y = Gemm <transB = 1> (x, w)\n}");
  AddTensor(&m, "w8", type, {64, 256}, std::vector<double>(64 * 256, 1.0));
  return m;
}

TEST(Quantized, PlainFloat8AndFloat4WeightsAreDrawnDirectly) {
  PlanOptions options;
  options.overrides.push_back({"*", "he-normal"});
  auto reference = CastGemm(TensorProto::FLOAT);
  auto plan = MakePlan(reference, options);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_TRUE(ApplyPlan(*plan, &reference).ok());
  const std::vector<double> drawn = *ReadValues(*FindInitializer(reference, "w8"));
  reinit_test::ExpectNormal(drawn, 1.0 / 256, "the FLOAT draw");
  for (const MinifloatFormat& f : MinifloatFormats()) {
    SCOPED_TRACE(DataTypeName(f.data_type));
    auto m = CastGemm(f.data_type);
    plan = MakePlan(m, options);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    const auto& w = plan->layers(0).weight();
    ASSERT_EQ(plan->layers(0).skipped(), "");
    EXPECT_EQ(w.name(), "w8");
    EXPECT_EQ(w.data_type(), DataTypeName(f.data_type));
    EXPECT_EQ(w.quant_scale(), "");
    ASSERT_TRUE(ApplyPlan(*plan, &m).ok());
    const TensorProto& t = *FindInitializer(m, "w8");
    EXPECT_EQ(t.raw_data().size(), static_cast<size_t>(CodeBytes(f.data_type, 64 * 256)));
    const std::vector<double> values = *ReadValues(t);
    ASSERT_EQ(values.size(), drawn.size());
    for (size_t i = 0; i < values.size(); ++i) {
      const double want = DecodeMinifloat(f, EncodeMinifloat(f, static_cast<float>(drawn[i])));
      ASSERT_EQ(values[i], want) << i << ": " << drawn[i];
    }
  }
}

}  // namespace
}  // namespace quantize_test
}  // namespace reinit

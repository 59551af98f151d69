// FLOAT8 and FLOAT4 codes: decoding against hand-computed values, encoding against a brute-force
// nearest-value search (ties to the even code), the saturation, NaN and zero rules.
#include "io/minifloat.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <string>

namespace reinit {
namespace minifloat_test {
namespace {

using onnx::TensorProto;

const MinifloatFormat& Format(int32_t type) {
  const MinifloatFormat* f = FindMinifloat(type);
  EXPECT_NE(f, nullptr) << type;
  return *f;
}

std::string Hex(int code) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02x", code);
  return text;
}

int Codes(const MinifloatFormat& f) { return 1 << (1 + f.exponent_bits + f.mantissa_bits); }

TEST(Minifloat, FindsTheFiveFormats) {
  EXPECT_EQ(MinifloatFormats().size(), 5u);
  for (int32_t type :
       {TensorProto::FLOAT8E4M3FN, TensorProto::FLOAT8E4M3FNUZ, TensorProto::FLOAT8E5M2,
        TensorProto::FLOAT8E5M2FNUZ, TensorProto::FLOAT4E2M1}) {
    ASSERT_NE(FindMinifloat(type), nullptr) << type;
    EXPECT_EQ(FindMinifloat(type)->data_type, type);
  }
  EXPECT_EQ(FindMinifloat(TensorProto::FLOAT16), nullptr);
  EXPECT_EQ(FindMinifloat(TensorProto::INT4), nullptr);
  EXPECT_EQ(FindMinifloat(TensorProto::FLOAT8E8M0), nullptr);  // a scale type, not here
}

// Values worked out by hand from the formats' definitions (onnx's technical notes).
TEST(Minifloat, DecodesHandComputedCodes) {
  struct Case {
    int32_t type;
    uint8_t code;
    double value;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const Case cases[] = {
      // E4M3FN, bias 7: 1.0 = 0.0111.000; the largest 1.1111.110 = 1.75·2^8; the smallest
      // subnormal 2^-6·2^-3.
      {TensorProto::FLOAT8E4M3FN, 0x38, 1.0},
      {TensorProto::FLOAT8E4M3FN, 0xb8, -1.0},
      {TensorProto::FLOAT8E4M3FN, 0x7e, 448},
      {TensorProto::FLOAT8E4M3FN, 0xfe, -448},
      {TensorProto::FLOAT8E4M3FN, 0x01, 0x1p-9},
      {TensorProto::FLOAT8E4M3FN, 0x07, 7 * 0x1p-9},
      {TensorProto::FLOAT8E4M3FN, 0x08, 0x1p-6},
      {TensorProto::FLOAT8E4M3FN, 0x78, 256},  // exponent all ones is finite here
      {TensorProto::FLOAT8E4M3FN, 0x7f, nan},
      {TensorProto::FLOAT8E4M3FN, 0xff, nan},
      // E4M3FNUZ, bias 8: 1.0 = 0.1000.000, max 0.1111.111 = 1.875·2^7, 0x80 the only NaN.
      {TensorProto::FLOAT8E4M3FNUZ, 0x40, 1.0},
      {TensorProto::FLOAT8E4M3FNUZ, 0x7f, 240},
      {TensorProto::FLOAT8E4M3FNUZ, 0xff, -240},
      {TensorProto::FLOAT8E4M3FNUZ, 0x01, 0x1p-10},
      {TensorProto::FLOAT8E4M3FNUZ, 0x80, nan},
      // E5M2, bias 15: IEEE-like, 0x7c is inf, 0x7b = 1.75·2^15.
      {TensorProto::FLOAT8E5M2, 0x3c, 1.0},
      {TensorProto::FLOAT8E5M2, 0x7b, 57344},
      {TensorProto::FLOAT8E5M2, 0x7c, inf},
      {TensorProto::FLOAT8E5M2, 0xfc, -inf},
      {TensorProto::FLOAT8E5M2, 0x7d, nan},
      {TensorProto::FLOAT8E5M2, 0x01, 0x1p-16},
      {TensorProto::FLOAT8E5M2, 0x80, -0.0},
      // E5M2FNUZ, bias 16.
      {TensorProto::FLOAT8E5M2FNUZ, 0x40, 1.0},
      {TensorProto::FLOAT8E5M2FNUZ, 0x7f, 57344},
      {TensorProto::FLOAT8E5M2FNUZ, 0x01, 0x1p-17},
      {TensorProto::FLOAT8E5M2FNUZ, 0x80, nan},
      // E2M1: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives; no NaN.
      {TensorProto::FLOAT4E2M1, 0x0, 0},
      {TensorProto::FLOAT4E2M1, 0x1, 0.5},
      {TensorProto::FLOAT4E2M1, 0x2, 1},
      {TensorProto::FLOAT4E2M1, 0x3, 1.5},
      {TensorProto::FLOAT4E2M1, 0x4, 2},
      {TensorProto::FLOAT4E2M1, 0x5, 3},
      {TensorProto::FLOAT4E2M1, 0x6, 4},
      {TensorProto::FLOAT4E2M1, 0x7, 6},
      {TensorProto::FLOAT4E2M1, 0x8, -0.0},
      {TensorProto::FLOAT4E2M1, 0xf, -6},
  };
  for (const Case& c : cases) {
    const double v = DecodeMinifloat(Format(c.type), c.code);
    SCOPED_TRACE(std::to_string(c.type) + " " + Hex(c.code));
    if (std::isnan(c.value)) {
      EXPECT_TRUE(std::isnan(v)) << v;
    } else {
      EXPECT_EQ(v, c.value);
      EXPECT_EQ(std::signbit(v), std::signbit(c.value));
    }
  }
}

// The largest finite value, as decoding finds it, is the table's max.
TEST(Minifloat, MaxIsTheLargestFiniteCode) {
  for (const MinifloatFormat& f : MinifloatFormats()) {
    double largest = 0;
    for (int c = 0; c < Codes(f); ++c) {
      const double v = DecodeMinifloat(f, static_cast<uint8_t>(c));
      if (std::isfinite(v)) largest = std::max(largest, v);
    }
    EXPECT_EQ(largest, f.max) << f.data_type;
  }
}

// Every code that is a number encodes back to itself (the FNUZ formats have no -0 to return to).
TEST(Minifloat, EveryNumberRoundTrips) {
  for (const MinifloatFormat& f : MinifloatFormats()) {
    for (int c = 0; c < Codes(f); ++c) {
      const double v = DecodeMinifloat(f, static_cast<uint8_t>(c));
      if (std::isnan(v) || std::isinf(v)) continue;
      EXPECT_EQ(EncodeMinifloat(f, v), c) << f.data_type << " " << Hex(c) << " " << v;
    }
  }
}

// Every code's value.
std::vector<double> Table(const MinifloatFormat& f) {
  std::vector<double> table(static_cast<size_t>(Codes(f)));
  for (int c = 0; c < Codes(f); ++c) table[c] = DecodeMinifloat(f, static_cast<uint8_t>(c));
  return table;
}

// The reference: the finite code nearest to x, a tie going to the code whose last bit is 0
// (the even mantissa); beyond max, ±max; a zero result keeps x's sign where the format has a
// -0. Brute force over the codes' values, nothing shared with the encoder.
uint8_t Nearest(const MinifloatFormat& f, const std::vector<double>& table, double x) {
  const bool has_minus_zero = f.nan != MinifloatFormat::Nan::kNegativeZero;
  int best = -1;
  double best_distance = 0;
  for (int c = 0; c < static_cast<int>(table.size()); ++c) {
    const double v = table[c];
    if (!std::isfinite(v)) continue;
    if (v == 0 && has_minus_zero && std::signbit(v) != std::signbit(x)) continue;
    const double d = std::fabs(std::clamp(x, -f.max, f.max) - v);
    if (best < 0 || d < best_distance || (d == best_distance && (c & 1) == 0)) {
      best = c;
      best_distance = d;
    }
  }
  return static_cast<uint8_t>(best);
}

// Every float16 value (finite ones, both signs, subnormals included) and the midpoints between
// the formats' neighbouring values (the ties), against the brute-force reference.
TEST(Minifloat, EncodeRoundsToNearestEvenAndSaturates) {
  for (const MinifloatFormat& f : MinifloatFormats()) {
    SCOPED_TRACE(f.data_type);
    const std::vector<double> table = Table(f);
    int checked = 0;
    for (uint32_t bits = 0; bits < 0x10000; ++bits) {
      const double x =
          static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(static_cast<uint16_t>(bits)));
      if (!std::isfinite(x)) continue;
      ASSERT_EQ(EncodeMinifloat(f, x), Nearest(f, table, x)) << x;
      ++checked;
    }
    EXPECT_EQ(checked, 63488);
    std::vector<double> values;
    for (double v : table) {
      if (std::isfinite(v) && v >= 0) values.push_back(v);
    }
    std::sort(values.begin(), values.end());
    for (size_t i = 0; i + 1 < values.size(); ++i) {
      const double tie = (values[i] + values[i + 1]) / 2;
      for (double x : {tie, -tie, std::nextafter(tie, 0.0), std::nextafter(tie, 1e9)}) {
        ASSERT_EQ(EncodeMinifloat(f, x), Nearest(f, table, x)) << x;
      }
    }
  }
}

TEST(Minifloat, TiesGoToTheEvenCode) {
  const auto& e4m3 = Format(TensorProto::FLOAT8E4M3FN);
  EXPECT_EQ(EncodeMinifloat(e4m3, 1 + 0x1p-4), 0x38);      // 1.0625: 1 or 1.125 -> 1
  EXPECT_EQ(EncodeMinifloat(e4m3, 1 + 3 * 0x1p-4), 0x3a);  // 1.1875: 1.125 or 1.25 -> 1.25
  EXPECT_EQ(EncodeMinifloat(e4m3, 0x1p-10), 0x00);         // half the smallest subnormal -> 0
  EXPECT_EQ(EncodeMinifloat(e4m3, 3 * 0x1p-10), 0x02);     // 1.5 subnormal steps -> 2
  EXPECT_EQ(EncodeMinifloat(e4m3, 400), 0x7c);             // 384 or 416 -> 384
  EXPECT_EQ(EncodeMinifloat(e4m3, 432), 0x7e);             // 416 or 448 -> 448
  const auto& e2m1 = Format(TensorProto::FLOAT4E2M1);
  EXPECT_EQ(EncodeMinifloat(e2m1, 5), 0x6);      // 4 or 6 -> 4
  EXPECT_EQ(EncodeMinifloat(e2m1, 0.75), 0x2);   // 0.5 or 1 -> 1
  EXPECT_EQ(EncodeMinifloat(e2m1, 0.25), 0x0);   // 0 or 0.5 -> 0
  EXPECT_EQ(EncodeMinifloat(e2m1, -0.25), 0x8);  // -0
  EXPECT_EQ(EncodeMinifloat(e2m1, 2.5), 0x4);    // 2 or 3 -> 2
}

// Saturation (ONNX's saturate = 1): beyond max and the infinities go to ±max; E4M3FN's 464, a
// tie between 448 and 480 (which it cannot hold), and 470 both give 448.
TEST(Minifloat, SaturatesInfinityAndOverflow) {
  const double inf = std::numeric_limits<double>::infinity();
  for (const MinifloatFormat& f : MinifloatFormats()) {
    const uint8_t max = EncodeMinifloat(f, f.max);
    const uint8_t sign = static_cast<uint8_t>(1 << (f.exponent_bits + f.mantissa_bits));
    EXPECT_EQ(DecodeMinifloat(f, max), f.max);
    for (double x : {inf, 1e30, 2 * f.max, f.max * (1 + 1e-3)}) {
      EXPECT_EQ(EncodeMinifloat(f, x), max) << f.data_type << " " << x;
      EXPECT_EQ(EncodeMinifloat(f, -x), max | sign) << f.data_type << " " << -x;
    }
  }
  const auto& e4m3 = Format(TensorProto::FLOAT8E4M3FN);
  EXPECT_EQ(EncodeMinifloat(e4m3, 464), 0x7e);
  EXPECT_EQ(EncodeMinifloat(e4m3, 470), 0x7e);
  EXPECT_EQ(EncodeMinifloat(Format(TensorProto::FLOAT8E5M2), 61440), 0x7b);  // would be 65536
}

// NaN: E4M3FN 0x7f/0xff and E5M2 0x7e/0xfe with their sign (as ml_dtypes writes them), the
// FNUZ formats 0x80, FLOAT4E2M1 (no NaN) +6. -0: kept, except in the FNUZ formats.
TEST(Minifloat, NanAndSignedZero) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    int32_t type;
    uint8_t nan, minus_nan, minus_zero;
  };
  const Case cases[] = {
      {TensorProto::FLOAT8E4M3FN, 0x7f, 0xff, 0x80}, {TensorProto::FLOAT8E4M3FNUZ, 0x80, 0x80, 0},
      {TensorProto::FLOAT8E5M2, 0x7e, 0xfe, 0x80},   {TensorProto::FLOAT8E5M2FNUZ, 0x80, 0x80, 0},
      {TensorProto::FLOAT4E2M1, 0x7, 0x7, 0x8},
  };
  for (const Case& c : cases) {
    const auto& f = Format(c.type);
    EXPECT_EQ(EncodeMinifloat(f, nan), c.nan) << c.type;
    EXPECT_EQ(EncodeMinifloat(f, -nan), c.minus_nan) << c.type;
    EXPECT_EQ(EncodeMinifloat(f, -0.0), c.minus_zero) << c.type;
    EXPECT_EQ(EncodeMinifloat(f, -1e-30), c.minus_zero) << c.type;  // rounds to -0
    EXPECT_EQ(EncodeMinifloat(f, 0.0), 0) << c.type;
  }
}

TEST(Minifloat, EncodeMinifloatsIsElementwise) {
  const auto& f = Format(TensorProto::FLOAT8E5M2);
  const std::vector<float> in = {1.0f, -2.5f, 1e9f, 0.0f};
  std::vector<uint8_t> codes(in.size());
  EncodeMinifloats(f, in, codes.data());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(codes[i], EncodeMinifloat(f, in[i])) << i;
}

}  // namespace
}  // namespace minifloat_test
}  // namespace reinit

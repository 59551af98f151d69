#include "io/tensor_codec.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <Eigen/Core>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace reinit {
namespace tensor_codec_test {
namespace {

using onnx::TensorProto;

// A tensor with fields the codec must leave alone, dims {2, 3}.
TensorProto MakeTensor(int32_t data_type) {
  TensorProto t;
  t.set_name("fc1.weight");
  t.set_doc_string("a doc string");
  t.set_data_type(data_type);
  t.add_dims(2);
  t.add_dims(3);
  auto* entry = t.add_external_data();  // metadata only; data_location stays DEFAULT
  entry->set_key("note");
  entry->set_value("kept");
  return t;
}

// The tensor without its data fields, to compare everything else.
TensorProto WithoutData(TensorProto t) {
  t.clear_raw_data();
  t.clear_float_data();
  t.clear_double_data();
  t.clear_int32_data();
  return t;
}

bool SameExceptData(const TensorProto& a, const TensorProto& b) {
  return google::protobuf::util::MessageDifferencer::Equals(WithoutData(a), WithoutData(b));
}

// Fills float_data or double_data without the codec, for setting up inputs.
void StoreTyped(const std::vector<double>& values, TensorProto* t) {
  for (double v : values) {
    switch (t->data_type()) {
      case TensorProto::FLOAT:
        t->add_float_data(static_cast<float>(v));
        break;
      case TensorProto::DOUBLE:
        t->add_double_data(v);
        break;
      default:
        ADD_FAILURE() << "StoreTyped: use int32_data directly for 16-bit types";
    }
  }
}

uint16_t RawWord16(const TensorProto& t, size_t i) {
  uint16_t w;
  std::memcpy(&w, t.raw_data().data() + 2 * i, 2);
  return w;
}

// Values exactly representable in every supported type (small integers and halves).
const std::vector<double> kExact = {0.0, 1.0, -2.0, 0.5, 3.0, -0.25};
// Values that need rounding in the narrow types.
const std::vector<double> kInexact = {0.1, -1.0 / 3.0, 2.718281828459045, 1e-3, -123.456, 7.0};

// v rounded to nearest-even with `bits` significand bits, for v in the type's normal range:
// scale by the ulp 2^(e - bits + 1), round to an integer (nearbyint ties to even), scale back.
// All steps are exact in double, and no 16-bit conversion code is shared with the codec.
double RoundToBits(double v, int bits) {
  if (v == 0) return v;
  const double ulp = std::ldexp(1.0, std::ilogb(v) - bits + 1);
  return std::nearbyint(v / ulp) * ulp;
}

double RoundedTo(int32_t type, double v) {
  switch (type) {
    case TensorProto::FLOAT:
      return static_cast<float>(v);
    case TensorProto::DOUBLE:
      return v;
    case TensorProto::FLOAT16:
      return RoundToBits(v, 11);
    default:
      return RoundToBits(v, 8);
  }
}

class RoundTripTest : public ::testing::TestWithParam<std::tuple<int32_t, bool>> {};

TEST_P(RoundTripTest, WriteThenReadKeepsStorageAndOtherFields) {
  const auto [type, raw] = GetParam();
  TensorProto t = MakeTensor(type);
  // Start from zeros in the chosen field.
  if (raw) {
    const size_t bytes = type == TensorProto::DOUBLE ? 8 : type == TensorProto::FLOAT ? 4 : 2;
    t.set_raw_data(std::string(6 * bytes, '\0'));
  } else if (type == TensorProto::FLOAT16 || type == TensorProto::BFLOAT16) {
    for (int i = 0; i < 6; ++i) t.add_int32_data(0);
  } else {
    StoreTyped(std::vector<double>(6, 0.0), &t);
  }
  const TensorProto before = t;

  for (const auto& values : {kExact, kInexact}) {
    ASSERT_TRUE(WriteValues(std::span<const double>(values), &t).ok());
    EXPECT_EQ(t.has_raw_data(), raw);
    if (raw) {
      EXPECT_EQ(t.float_data_size() + t.double_data_size() + t.int32_data_size(), 0);
    }
    EXPECT_TRUE(SameExceptData(t, before)) << t.DebugString();
    ASSERT_TRUE(CheckStoredSize(t).ok()) << CheckStoredSize(t).message();
    StatusOr<std::vector<double>> read = ReadValues(t);
    ASSERT_TRUE(read.ok()) << read.status().message();
    ASSERT_EQ(read->size(), values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ((*read)[i], RoundedTo(type, values[i])) << i;
    }
    // The float overload stores the same values.
    std::vector<float> as_float(values.begin(), values.end());
    TensorProto t2 = before;
    ASSERT_TRUE(WriteValues(std::span<const float>(as_float), &t2).ok());
    if (type != TensorProto::DOUBLE) {
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(t, t2));
    }
    EXPECT_EQ(*ReadValues(t2),
              (type == TensorProto::DOUBLE ? std::vector<double>(as_float.begin(), as_float.end())
                                           : *read));
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypesAndStorages, RoundTripTest,
    ::testing::Combine(::testing::Values(TensorProto::FLOAT, TensorProto::FLOAT16,
                                         TensorProto::BFLOAT16, TensorProto::DOUBLE),
                       ::testing::Bool()),
    [](const auto& info) {
      return DataTypeName(std::get<0>(info.param)) + (std::get<1>(info.param) ? "_Raw" : "_Typed");
    });

TEST(TensorCodecTest, NoDataGetsRawData) {
  TensorProto t = MakeTensor(TensorProto::FLOAT);
  const TensorProto before = t;
  EXPECT_EQ(CheckStoredSize(t).message(),
            "tensor 'fc1.weight': has no data (neither raw_data nor float_data), expected 6 "
            "FLOAT values");
  ASSERT_TRUE(WriteValues(std::span<const double>(kExact), &t).ok());
  ASSERT_TRUE(t.has_raw_data());
  EXPECT_EQ(t.raw_data().size(), 24u);
  EXPECT_TRUE(SameExceptData(t, before));
  EXPECT_EQ(*ReadValues(t), kExact);
}

TEST(TensorCodecTest, RawFloatAndDoubleAreLittleEndian) {
  TensorProto f = MakeTensor(TensorProto::FLOAT);
  f.clear_dims();
  f.add_dims(1);
  f.set_raw_data("");
  const float one = 1.0f;
  ASSERT_TRUE(WriteValues(std::span<const float>(&one, 1), &f).ok());
  EXPECT_EQ(f.raw_data(), std::string("\x00\x00\x80\x3f", 4));

  TensorProto d = MakeTensor(TensorProto::DOUBLE);
  d.clear_dims();  // a scalar: one element
  d.set_raw_data("");
  const double minus_two = -2.0;
  ASSERT_TRUE(WriteValues(std::span<const double>(&minus_two, 1), &d).ok());
  EXPECT_EQ(d.raw_data(), std::string("\x00\x00\x00\x00\x00\x00\x00\xc0", 8));
}

// Encodes one value in a 1-element 16-bit tensor (typed or raw) and returns its bit pattern.
template <typename Src>
uint16_t Bits16(int32_t type, Src value, bool raw) {
  TensorProto t;
  t.set_name("x");
  t.set_data_type(type);
  if (raw) {
    t.set_raw_data("");
  } else {
    t.add_int32_data(0);
  }
  Status s = WriteValues(std::span<const Src>(&value, 1), &t);
  EXPECT_TRUE(s.ok()) << s.message();
  if (raw) return RawWord16(t, 0);
  EXPECT_EQ(t.int32_data_size(), 1);
  return static_cast<uint16_t>(t.int32_data(0));
}

TEST(TensorCodecTest, Float16BitPatterns) {
  for (bool raw : {false, true}) {
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, 1.0f, raw), 0x3C00);
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, -2.0f, raw), 0xC000);
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, 65504.0f, raw), 0x7BFF);  // largest finite
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, 1.0f / 3.0f, raw), 0x3555);
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, 1.0 / 3.0, raw), 0x3555);
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, 65520.0f, raw), 0x7C00);  // rounds to infinity
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, std::ldexp(1.0f, -24), raw), 0x0001);  // subnormal
    // 1 + 2^-11 is halfway between 0x3C00 and 0x3C01: ties to even.
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, 1.0f + std::ldexp(1.0f, -11), raw), 0x3C00);
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, 1.0f + 3 * std::ldexp(1.0f, -11), raw), 0x3C02);
    // Just above the midpoint by less than a float ulp: a double must not be rounded to float
    // first (that would make it a tie and round down).
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40), raw),
              0x3C01);
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, -1.0 - std::ldexp(1.0, -11) - std::ldexp(1.0, -40), raw),
              0xBC01);
    EXPECT_EQ(Bits16(TensorProto::FLOAT16, 1.0 + std::ldexp(1.0, -11) - std::ldexp(1.0, -40), raw),
              0x3C00);
  }
}

TEST(TensorCodecTest, Bfloat16BitPatterns) {
  for (bool raw : {false, true}) {
    EXPECT_EQ(Bits16(TensorProto::BFLOAT16, 1.0f, raw), 0x3F80);
    EXPECT_EQ(Bits16(TensorProto::BFLOAT16, -2.0f, raw), 0xC000);
    // 0x3F808000 = 1.00390625 is halfway between 0x3F80 and 0x3F81: ties to even.
    EXPECT_EQ(Bits16(TensorProto::BFLOAT16, std::bit_cast<float>(0x3F808000u), raw), 0x3F80);
    // 0x3F818000 is halfway between 0x3F81 and 0x3F82: ties to even, up.
    EXPECT_EQ(Bits16(TensorProto::BFLOAT16, std::bit_cast<float>(0x3F818000u), raw), 0x3F82);
    EXPECT_EQ(Bits16(TensorProto::BFLOAT16, std::bit_cast<float>(0x3F808001u), raw), 0x3F81);
    EXPECT_EQ(Bits16(TensorProto::BFLOAT16, 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40), raw),
              0x3F81);
    EXPECT_EQ(Bits16(TensorProto::BFLOAT16, 1.0 / 3.0, raw), 0x3EAB);
  }
}

TEST(TensorCodecTest, ReadsIndependentlyEncodedPatterns) {
  TensorProto h = MakeTensor(TensorProto::FLOAT16);
  h.clear_dims();
  h.add_dims(4);
  for (int bits : {0x3C00, 0xC000, 0x7BFF, 0x3555}) h.add_int32_data(bits);
  EXPECT_EQ(*ReadValues(h), (std::vector<double>{1.0, -2.0, 65504.0, 0.333251953125}));
  // A sign-extended pattern reads as its low 16 bits.
  h.set_int32_data(1, static_cast<int16_t>(0xC000));
  EXPECT_EQ((*ReadValues(h))[1], -2.0);

  TensorProto b = MakeTensor(TensorProto::BFLOAT16);
  b.clear_dims();
  b.add_dims(3);
  b.set_raw_data(std::string("\x80\x3f\x00\xc0\x82\x3f", 6));
  EXPECT_EQ(*ReadValues(b), (std::vector<double>{1.0, -2.0, 1.015625}));
}

TEST(TensorCodecTest, SizeMismatchErrorsNameTheTensor) {
  TensorProto t = MakeTensor(TensorProto::FLOAT);
  t.clear_dims();
  t.add_dims(4);
  t.set_raw_data(std::string(12, '\0'));
  EXPECT_EQ(CheckStoredSize(t).message(),
            "tensor 'fc1.weight': raw_data holds 12 bytes, expected 16 for 4 FLOAT values");
  EXPECT_EQ(ReadValues(t).status().message(), CheckStoredSize(t).message());
  EXPECT_EQ(CheckStoredSize(t).code(), StatusCode::kModel);

  TensorProto h = MakeTensor(TensorProto::FLOAT16);
  h.add_int32_data(0x3C00);
  EXPECT_EQ(CheckStoredSize(h).message(),
            "tensor 'fc1.weight': int32_data holds 1 values, expected 6 FLOAT16 values");

  TensorProto d = MakeTensor(TensorProto::DOUBLE);
  for (int i = 0; i < 7; ++i) d.add_double_data(i);
  EXPECT_EQ(CheckStoredSize(d).message(),
            "tensor 'fc1.weight': double_data holds 7 values, expected 6 DOUBLE values");

  TensorProto both = MakeTensor(TensorProto::FLOAT);
  both.set_raw_data(std::string(24, '\0'));
  both.add_float_data(1.0f);
  EXPECT_EQ(CheckStoredSize(both).message(),
            "tensor 'fc1.weight': holds both raw_data and float_data");
}

TEST(TensorCodecTest, WriteRejectsWrongCountAndLeavesTensorAlone) {
  TensorProto t = MakeTensor(TensorProto::FLOAT);
  StoreTyped(kExact, &t);
  const TensorProto before = t;
  const std::vector<double> five(5, 1.0);
  Status s = WriteValues(std::span<const double>(five), &t);
  EXPECT_EQ(s.message(), "tensor 'fc1.weight': got 5 values to write, expected 6 FLOAT values");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(t, before));
}

TEST(TensorCodecTest, EmptyTensor) {
  TensorProto t = MakeTensor(TensorProto::FLOAT);
  t.set_dims(1, 0);
  EXPECT_EQ(*ElementCount(t), 0);
  EXPECT_TRUE(CheckStoredSize(t).ok());
  EXPECT_TRUE(ReadValues(t)->empty());
  EXPECT_TRUE(WriteValues(std::span<const float>(), &t).ok());
}

TEST(TensorCodecTest, ElementCount) {
  TensorProto t = MakeTensor(TensorProto::FLOAT);
  EXPECT_EQ(*ElementCount(t), 6);
  t.clear_dims();
  EXPECT_EQ(*ElementCount(t), 1);  // a scalar

  t.add_dims(3);
  t.add_dims(-2);
  EXPECT_EQ(ElementCount(t).status().message(),
            "tensor 'fc1.weight': dimension 1 is -2, expected a size >= 0");
  EXPECT_EQ(CheckStoredSize(t).message(), ElementCount(t).status().message());

  t.clear_dims();
  t.add_dims(int64_t{1} << 32);
  t.add_dims(int64_t{1} << 30);
  EXPECT_EQ(*ElementCount(t), int64_t{1} << 62);  // the largest power of two that fits
  t.add_dims(2);                                  // 2^63 does not
  EXPECT_EQ(ElementCount(t).status().message(),
            "tensor 'fc1.weight': element count of dims [4294967296, 1073741824, 2] overflows "
            "int64");
  EXPECT_EQ(CheckStoredSize(t).message(), ElementCount(t).status().message());
}

TEST(TensorCodecTest, UnsupportedTypeAndExternalData) {
  TensorProto i = MakeTensor(TensorProto::INT32);
  for (int k = 0; k < 6; ++k) i.add_int32_data(k);
  const std::string expected =
      "tensor 'fc1.weight': data type INT32 is not supported (FLOAT, FLOAT16, BFLOAT16, DOUBLE, "
      "FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1)";
  EXPECT_EQ(CheckStoredSize(i).message(), expected);
  EXPECT_EQ(ReadValues(i).status().message(), expected);
  EXPECT_EQ(WriteValues(std::span<const double>(kExact), &i).message(), expected);
  EXPECT_FALSE(IsSupportedFloatType(TensorProto::INT32));
  EXPECT_TRUE(IsSupportedFloatType(TensorProto::BFLOAT16));

  TensorProto e = MakeTensor(TensorProto::FLOAT);
  e.set_data_location(TensorProto::EXTERNAL);
  const TensorProto before = e;
  EXPECT_EQ(WriteValues(std::span<const double>(kExact), &e).message(),
            "tensor 'fc1.weight': external data is not supported yet");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(e, before));
  EXPECT_EQ(CheckStoredSize(e).message(),
            "tensor 'fc1.weight': external data is not supported yet");
}

// FLOAT8 and FLOAT4 values as bytes worked out by hand: 1, -2, 0.5, 448 and 1000 (which
// saturates in E4M3FN and E4M3FNUZ, rounds to 1024 in the E5M2 types and to 6 in E2M1), one
// byte each, FLOAT4E2M1 two a byte, low nibble first; int32_data one stored byte an entry.
TEST(TensorCodecTest, Float8AndFloat4HandComputedBytes) {
  const std::vector<double> values = {1, -2, 0.5, 448, 1000};
  struct Case {
    int32_t type;
    std::vector<int> bytes;
    std::vector<double> read;
  };
  const Case cases[] = {
      {TensorProto::FLOAT8E4M3FN, {0x38, 0xc0, 0x30, 0x7e, 0x7e}, {1, -2, 0.5, 448, 448}},
      {TensorProto::FLOAT8E4M3FNUZ, {0x40, 0xc8, 0x38, 0x7f, 0x7f}, {1, -2, 0.5, 240, 240}},
      {TensorProto::FLOAT8E5M2, {0x3c, 0xc0, 0x38, 0x5f, 0x64}, {1, -2, 0.5, 448, 1024}},
      {TensorProto::FLOAT8E5M2FNUZ, {0x40, 0xc4, 0x3c, 0x63, 0x68}, {1, -2, 0.5, 448, 1024}},
      {TensorProto::FLOAT4E2M1, {0xc2, 0x71, 0x07}, {1, -2, 0.5, 6, 6}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(DataTypeName(c.type));
    EXPECT_TRUE(IsSupportedFloatType(c.type));
    TensorProto t;
    t.set_name("w");
    t.set_data_type(c.type);
    t.add_dims(5);
    ASSERT_TRUE(WriteValues(std::span<const double>(values), &t).ok());
    std::string bytes;
    for (int b : c.bytes) bytes.push_back(static_cast<char>(b));
    EXPECT_EQ(t.raw_data(), bytes);
    EXPECT_EQ(RawBytes(c.type, 5), bytes.size());
    EXPECT_EQ(*ReadValues(t), c.read);
    // The float overload and EncodeRaw give the same bytes.
    const std::vector<float> floats(values.begin(), values.end());
    TensorProto f = t;
    ASSERT_TRUE(WriteValues(std::span<const float>(floats), &f).ok());
    EXPECT_EQ(f.raw_data(), bytes);
    std::string raw(bytes.size(), '\0');
    EncodeRaw(floats, c.type, raw.data());
    EXPECT_EQ(raw, bytes);
    // int32_data stays int32_data.
    TensorProto typed = t;
    typed.clear_raw_data();
    for (size_t i = 0; i < bytes.size(); ++i) typed.add_int32_data(0);
    ASSERT_TRUE(WriteValues(std::span<const double>(values), &typed).ok());
    EXPECT_FALSE(typed.has_raw_data());
    EXPECT_EQ(std::vector<int>(typed.int32_data().begin(), typed.int32_data().end()), c.bytes);
    EXPECT_EQ(*ReadValues(typed), c.read);
    EXPECT_TRUE(CheckStoredSize(typed).ok());
    typed.add_int32_data(0);
    EXPECT_FALSE(CheckStoredSize(typed).ok());
  }
}

TEST(TensorCodecTest, DataTypeName) {
  EXPECT_EQ(DataTypeName(TensorProto::FLOAT), "FLOAT");
  EXPECT_EQ(DataTypeName(TensorProto::INT64), "INT64");
  EXPECT_EQ(DataTypeName(TensorProto::BFLOAT16), "BFLOAT16");
  EXPECT_EQ(DataTypeName(999), "type 999");
}

// The reference for the bulk encoders: Eigen's conversions, which the codec's writer uses.
uint16_t EigenHalfBits(float f) { return Eigen::numext::bit_cast<uint16_t>(Eigen::half(f)); }
uint16_t EigenBfloat16Bits(float f) {
  return Eigen::numext::bit_cast<uint16_t>(Eigen::bfloat16(f));
}

// Every sign, exponent and top 7 mantissa bits (all 65536 upper halves of the float bits),
// each with low halves that decide the rounding: zero and all ones; the binary16 half-way
// point of the 13 dropped bits (0x1000) with the kept last bit clear and set (0x3000) and
// their neighbours; the bfloat16 half-way point 0x8000 and its neighbours; and pseudo-random
// ones. Below 2^-14 the binary16 rounding point moves into the upper half, which is covered
// whole. Not a multiple of the vector width, so the loops' tails run too.
std::vector<float> EncoderInputs() {
  std::vector<uint32_t> low = {0x0000, 0xffff, 0x0fff, 0x1000, 0x1001, 0x2fff, 0x3000, 0x3001,
                               0x2000, 0xefff, 0xf000, 0x7fff, 0x8000, 0x8001, 0x0001, 0xe000};
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  for (int k = 0; k < 8; ++k) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    low.push_back(static_cast<uint32_t>(state >> 48));
  }
  std::vector<float> in;
  for (uint32_t high = 0; high < 0x10000; ++high) {
    for (uint32_t l : low) in.push_back(std::bit_cast<float>(high << 16 | l));
  }
  // Every low half around the binary16 boundaries: 2^-25 (rounds to 0 or the smallest
  // subnormal), 2^-14 (subnormal / normal), 65504 to 65536 (largest finite / inf), inf / NaN.
  for (uint32_t high : {0x3300u, 0x3380u, 0x387fu, 0x3880u, 0x477fu, 0x4780u, 0x7f80u, 0x7fc0u,
                        0xff80u, 0x0000u, 0x8000u, 0x7f7fu}) {
    for (uint32_t l = 0; l < 0x10000; ++l) in.push_back(std::bit_cast<float>(high << 16 | l));
  }
  in.push_back(1.0f);  // odd count
  return in;
}

bool IsQuietHalfNan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x0200) != 0; }

TEST(EncodeFloat16Test, MatchesEigenBitForBit) {
  const std::vector<float> in = EncoderInputs();
  std::vector<uint16_t> out(in.size());
  EncodeFloat16(in, out.data());
  size_t nans = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const uint16_t expected = EigenHalfBits(in[i]);
    if (std::isnan(in[i])) {
      ++nans;
      ASSERT_TRUE(IsQuietHalfNan(out[i])) << std::hex << std::bit_cast<uint32_t>(in[i]);
      ASSERT_EQ(out[i] >> 15, std::bit_cast<uint32_t>(in[i]) >> 31);
#if defined(EIGEN_HAS_FP16_C)
      continue;  // Eigen uses F16C (clang builds), which keeps payload bits
#endif
    }
    ASSERT_EQ(out[i], expected) << std::hex << "float bits " << std::bit_cast<uint32_t>(in[i])
                                << ": got " << out[i] << ", Eigen " << expected;
  }
  EXPECT_GT(nans, 100000u);
}

TEST(EncodeBFloat16Test, MatchesEigenBitForBit) {
  const std::vector<float> in = EncoderInputs();
  std::vector<uint16_t> out(in.size());
  EncodeBFloat16(in, out.data());
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(out[i], EigenBfloat16Bits(in[i]))
        << std::hex << "float bits " << std::bit_cast<uint32_t>(in[i]) << ": got " << out[i];
  }
}

TEST(EncodeFloat16Test, EdgeCases) {
  const float max_half = 65504.0f;
  const std::vector<std::pair<float, uint16_t>> cases = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {1.0f, 0x3c00},
      {-2.0f, 0xc000},
      {max_half, 0x7bff},
      {std::nextafter(65520.0f, 0.0f), 0x7bff},  // just below the half-way point to 2^16
      {65520.0f, 0x7c00},                        // half-way: ties to even, which is inf
      {std::numeric_limits<float>::max(), 0x7c00},
      {std::numeric_limits<float>::infinity(), 0x7c00},
      {-std::numeric_limits<float>::infinity(), 0xfc00},
      {0x1p-24f, 0x0001},                        // smallest subnormal
      {0x1p-25f, 0x0000},                        // half of it: ties to even, 0
      {std::nextafter(0x1p-25f, 1.0f), 0x0001},  // just above: rounds up
      {0x1.8p-24f, 0x0002},                      // 1.5 steps: ties to even, 2
      {0x1p-14f - 0x1p-25f, 0x0400},             // half-way to the smallest normal: even
      {0x1p-14f, 0x0400},                        // smallest normal
      {std::numeric_limits<float>::denorm_min(), 0x0000},
      {1.0f + 0x1p-11f, 0x3c00},             // tie, last kept bit clear: down
      {1.0f + 0x1p-10f + 0x1p-11f, 0x3c02},  // tie, last kept bit set: up
  };
  for (const auto& [f, bits] : cases) {
    uint16_t got = 0;
    EncodeFloat16(std::span<const float>(&f, 1), &got);
    EXPECT_EQ(got, bits) << f;
    EXPECT_EQ(got, EigenHalfBits(f)) << f;
  }
  // NaNs, signaling or with a payload, become the quiet NaN with their sign.
  for (uint32_t bits : {0x7f800001u, 0x7fc00000u, 0x7fffffffu}) {
    for (uint32_t sign : {0u, 0x80000000u}) {
      const float nan = std::bit_cast<float>(bits | sign);
      uint16_t got = 0;
      EncodeFloat16(std::span<const float>(&nan, 1), &got);
      EXPECT_EQ(got, 0x7e00 | sign >> 16) << std::hex << (bits | sign);
    }
  }
}

TEST(EncodeBFloat16Test, EdgeCases) {
  const std::vector<std::pair<float, uint16_t>> cases = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {1.0f, 0x3f80},
      {std::bit_cast<float>(0x3f808000u), 0x3f80},  // tie, last kept bit clear: down
      {std::bit_cast<float>(0x3f818000u), 0x3f82},  // tie, last kept bit set: up
      {std::bit_cast<float>(0x3f808001u), 0x3f81},
      {std::numeric_limits<float>::max(), 0x7f80},  // rounds past the largest bfloat16
      {std::bit_cast<float>(0x7f7f7fffu), 0x7f7f},
      {std::numeric_limits<float>::infinity(), 0x7f80},
      {-std::numeric_limits<float>::infinity(), 0xff80},
      {std::numeric_limits<float>::denorm_min(), 0x0000},
      {std::bit_cast<float>(0x00018000u), 0x0002},  // subnormals round like the rest
      {std::bit_cast<float>(0x7f800001u), 0x7fc0},  // NaN whose payload would round away
      {std::bit_cast<float>(0xffffffffu), 0xffc0},
  };
  for (const auto& [f, bits] : cases) {
    uint16_t got = 0;
    EncodeBFloat16(std::span<const float>(&f, 1), &got);
    EXPECT_EQ(got, bits) << std::hex << std::bit_cast<uint32_t>(f);
    EXPECT_EQ(got, EigenBfloat16Bits(f)) << std::hex << std::bit_cast<uint32_t>(f);
  }
}

}  // namespace
}  // namespace tensor_codec_test
}  // namespace reinit

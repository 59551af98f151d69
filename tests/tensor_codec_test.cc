#include "tensor_codec.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace reinit {
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
      "tensor 'fc1.weight': data type INT32 is not supported (FLOAT, FLOAT16, BFLOAT16 or "
      "DOUBLE)";
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

TEST(TensorCodecTest, DataTypeName) {
  EXPECT_EQ(DataTypeName(TensorProto::FLOAT), "FLOAT");
  EXPECT_EQ(DataTypeName(TensorProto::INT64), "INT64");
  EXPECT_EQ(DataTypeName(TensorProto::BFLOAT16), "BFLOAT16");
  EXPECT_EQ(DataTypeName(999), "type 999");
}

}  // namespace
}  // namespace reinit

// Codes of 8 bits and fewer: the bytes written and read against hand-packed ones, in raw_data
// and int32_data, odd counts, and the size errors.
#include "io/codes.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace reinit {
namespace codes_test {
namespace {

using onnx::TensorProto;

TensorProto Tensor(int32_t type, std::vector<int64_t> dims) {
  TensorProto t;
  t.set_name("q");
  t.set_data_type(type);
  for (int64_t d : dims) t.add_dims(d);
  return t;
}

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

TEST(Codes, Widths) {
  for (int32_t type :
       {TensorProto::INT8, TensorProto::UINT8, TensorProto::FLOAT8E4M3FN,
        TensorProto::FLOAT8E4M3FNUZ, TensorProto::FLOAT8E5M2, TensorProto::FLOAT8E5M2FNUZ}) {
    EXPECT_EQ(CodeBits(type), 8) << type;
    EXPECT_EQ(CodeBytes(type, 5), 5u) << type;
  }
  for (int32_t type : {TensorProto::INT4, TensorProto::UINT4, TensorProto::FLOAT4E2M1}) {
    EXPECT_EQ(CodeBits(type), 4) << type;
    EXPECT_EQ(CodeBytes(type, 5), 3u) << type;
    EXPECT_EQ(CodeBytes(type, 4), 2u) << type;
  }
  EXPECT_EQ(CodeBits(TensorProto::FLOAT), 0);
  EXPECT_EQ(CodeBits(TensorProto::INT16), 0);
}

// Element 0 in the low nibble: codes 1, 2, 3 -> 0x21, 0x03 (the odd count's high nibble 0).
TEST(Codes, FourBitCodesPackLowNibbleFirst) {
  TensorProto t = Tensor(TensorProto::UINT4, {3});
  ASSERT_TRUE(WriteCodes(std::vector<uint8_t>{1, 2, 3}, &t).ok());
  EXPECT_EQ(t.raw_data(), Bytes({0x21, 0x03}));
  EXPECT_EQ(*ReadCodes(t), (std::vector<uint8_t>{1, 2, 3}));
  // INT4 -1, 2, -8 are the nibbles 0xf, 0x2, 0x8 (onnx.helper.make_tensor's bytes).
  TensorProto i4 = Tensor(TensorProto::INT4, {3});
  i4.set_raw_data(Bytes({0x2f, 0x08}));
  EXPECT_EQ(*ReadCodes(i4), (std::vector<uint8_t>{0xf, 0x2, 0x8}));
  // A set high nibble after an odd count is not an element.
  i4.set_raw_data(Bytes({0x2f, 0xf8}));
  EXPECT_EQ(*ReadCodes(i4), (std::vector<uint8_t>{0xf, 0x2, 0x8}));
  // Only the low nibble of a code is written.
  TensorProto f4 = Tensor(TensorProto::FLOAT4E2M1, {2});
  ASSERT_TRUE(WriteCodes(std::vector<uint8_t>{0x1f, 0xf7}, &f4).ok());
  EXPECT_EQ(f4.raw_data(), Bytes({0x7f}));
}

// int32_data: one stored byte an entry. 4-bit types: a packed pair; 8-bit: one element, INT8
// sign-extended, the others unsigned (onnx.helper.make_tensor(..., raw=False)).
TEST(Codes, Int32DataHoldsOneByteAnEntry) {
  TensorProto i4 = Tensor(TensorProto::INT4, {3});
  i4.add_int32_data(47);
  i4.add_int32_data(8);
  EXPECT_EQ(*ReadCodes(i4), (std::vector<uint8_t>{0xf, 0x2, 0x8}));
  ASSERT_TRUE(WriteCodes(std::vector<uint8_t>{0x7, 0x8, 0x9}, &i4).ok());
  EXPECT_FALSE(i4.has_raw_data());
  EXPECT_EQ(std::vector<int32_t>(i4.int32_data().begin(), i4.int32_data().end()),
            (std::vector<int32_t>{0x87, 0x09}));
  // A sign-extended packed byte reads as its low 8 bits.
  i4.set_int32_data(0, -15);  // 0xf1
  EXPECT_EQ(*ReadCodes(i4), (std::vector<uint8_t>{0x1, 0xf, 0x9}));

  TensorProto i8 = Tensor(TensorProto::INT8, {2});
  i8.add_int32_data(0);
  i8.add_int32_data(0);
  ASSERT_TRUE(WriteCodes(std::vector<uint8_t>{0xff, 0x02}, &i8).ok());
  EXPECT_EQ(std::vector<int32_t>(i8.int32_data().begin(), i8.int32_data().end()),
            (std::vector<int32_t>{-1, 2}));
  EXPECT_EQ(*ReadCodes(i8), (std::vector<uint8_t>{0xff, 0x02}));

  TensorProto f8 = Tensor(TensorProto::FLOAT8E4M3FN, {2});
  f8.add_int32_data(0);
  f8.add_int32_data(0);
  ASSERT_TRUE(WriteCodes(std::vector<uint8_t>{0xb8, 0x40}, &f8).ok());
  EXPECT_EQ(std::vector<int32_t>(f8.int32_data().begin(), f8.int32_data().end()),
            (std::vector<int32_t>{184, 64}));
}

TEST(Codes, NoDataGetsRawData) {
  TensorProto t = Tensor(TensorProto::FLOAT8E5M2, {2, 2});
  ASSERT_TRUE(WriteCodes(std::vector<uint8_t>{1, 2, 3, 4}, &t).ok());
  EXPECT_EQ(t.raw_data(), Bytes({1, 2, 3, 4}));
}

TEST(Codes, SizeErrorsNameTheTensor) {
  TensorProto t = Tensor(TensorProto::INT4, {5});
  t.set_raw_data(Bytes({0, 0}));
  EXPECT_EQ(CheckCodes(t).message(),
            "tensor 'q': raw_data holds 2 bytes, expected 3 for 5 INT4 values");
  EXPECT_FALSE(ReadCodes(t).ok());
  t.clear_raw_data();
  t.add_int32_data(0);
  EXPECT_EQ(CheckCodes(t).message(),
            "tensor 'q': int32_data holds 1 entries, expected 3 for 5 INT4 values");
  t.add_int32_data(256);
  t.add_int32_data(0);
  EXPECT_EQ(CheckCodes(t).message(), "tensor 'q': int32_data holds 256, not a byte");
  t.set_raw_data(Bytes({0, 0, 0}));
  EXPECT_EQ(CheckCodes(t).message(), "tensor 'q': holds both raw_data and int32_data");
  TensorProto f = Tensor(TensorProto::FLOAT, {1});
  EXPECT_EQ(CheckCodes(f).message(),
            "tensor 'q': data type FLOAT is not stored in codes of 8 bits or fewer");
  TensorProto w = Tensor(TensorProto::UINT8, {2});
  EXPECT_EQ(WriteCodes(std::vector<uint8_t>{1}, &w).message(),
            "tensor 'q': got 1 values to write, expected 2");
  EXPECT_FALSE(w.has_raw_data());
}

TEST(Codes, PackNibbles) {
  std::vector<uint8_t> out(3, 0xaa);
  PackNibbles(std::vector<uint8_t>{0x1, 0x2, 0x3, 0x4, 0x5}, out.data());
  EXPECT_EQ(out, (std::vector<uint8_t>{0x21, 0x43, 0x05}));
}

}  // namespace
}  // namespace codes_test
}  // namespace reinit

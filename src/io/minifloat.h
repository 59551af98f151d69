// The floating-point formats of 8 bits and fewer that ONNX stores one code an element (IR 9 and
// 11): FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ and FLOAT4E2M1. A code is the
// element's bits, sign first (bit 7, or bit 3 for FLOAT4E2M1). Decoding is exact; encoding
// rounds to nearest even and saturates, as ONNX's Cast and QuantizeLinear do with saturate = 1
// (their default): a finite value beyond the largest finite one, and an infinity, become that
// largest value with its sign. A NaN becomes the format's NaN (FLOAT4E2M1 has none and writes
// +6, as onnx's technical note on float4 says); the FNUZ formats have no negative zero, so -0
// and the negative values that round to zero are written as +0.
#pragma once

#include <cstdint>
#include <span>

namespace reinit {

struct MinifloatFormat {
  int32_t data_type;  // the TensorProto.DataType
  int exponent_bits;
  int mantissa_bits;
  int bias;
  bool has_infinity;  // E5M2: exponent all ones with mantissa 0 is ±inf
  // How NaN is written: kIeee, exponent all ones with a nonzero mantissa (E5M2); kAllOnes,
  // exponent and mantissa all ones (E4M3FN, whose other codes of that exponent are finite);
  // kNegativeZero, the code of -0 (the FNUZ formats); kNone (FLOAT4E2M1).
  enum class Nan { kIeee, kAllOnes, kNegativeZero, kNone } nan;
  double max;  // the largest finite value
};

// The five formats, in the order above.
std::span<const MinifloatFormat> MinifloatFormats();

// The format of `data_type`, or nullptr if it is not one of the five.
const MinifloatFormat* FindMinifloat(int32_t data_type);

// The value of `code` (its low 1 + exponent_bits + mantissa_bits bits).
double DecodeMinifloat(const MinifloatFormat& format, uint8_t code);

// The code of `x`, rounded to nearest even and saturated (see above).
uint8_t EncodeMinifloat(const MinifloatFormat& format, double x);

// EncodeMinifloat of each value, into codes[0, in.size()).
void EncodeMinifloats(const MinifloatFormat& format, std::span<const float> in, uint8_t* codes);

}  // namespace reinit

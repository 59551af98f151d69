#include "io/minifloat.h"

#include <onnx/onnx_pb.h>

#include <cmath>

namespace reinit {

namespace {

using onnx::TensorProto;
using Nan = MinifloatFormat::Nan;

// The formats' parameters, from onnx's technical notes on float8 and float4 (max: E4M3FN
// 1.75·2^8, E4M3FNUZ 1.875·2^7, E5M2 and E5M2FNUZ 1.75·2^15, E2M1 1.5·2^2).
constexpr MinifloatFormat kMinifloatFormats[] = {
    {TensorProto::FLOAT8E4M3FN, 4, 3, 7, false, Nan::kAllOnes, 448},
    {TensorProto::FLOAT8E4M3FNUZ, 4, 3, 8, false, Nan::kNegativeZero, 240},
    {TensorProto::FLOAT8E5M2, 5, 2, 15, true, Nan::kIeee, 57344},
    {TensorProto::FLOAT8E5M2FNUZ, 5, 2, 16, false, Nan::kNegativeZero, 57344},
    {TensorProto::FLOAT4E2M1, 2, 1, 1, false, Nan::kNone, 6},
};

int SignBit(const MinifloatFormat& f) { return f.exponent_bits + f.mantissa_bits; }

int MaxExponentField(const MinifloatFormat& f) { return (1 << f.exponent_bits) - 1; }

// The code of the finite value v >= 0, exactly representable and at most max.
uint8_t MagnitudeCode(const MinifloatFormat& f, double v) {
  const int emin = 1 - f.bias;  // the exponent of the smallest normal value
  if (v < std::ldexp(1.0, emin)) {
    return static_cast<uint8_t>(v / std::ldexp(1.0, emin - f.mantissa_bits));  // subnormal
  }
  const int e = std::ilogb(v);
  const int mantissa =
      static_cast<int>(v / std::ldexp(1.0, e - f.mantissa_bits)) - (1 << f.mantissa_bits);
  return static_cast<uint8_t>(((e + f.bias) << f.mantissa_bits) | mantissa);
}

uint8_t NanCode(const MinifloatFormat& f, bool negative) {
  const uint8_t sign = static_cast<uint8_t>(negative ? 1 << SignBit(f) : 0);
  switch (f.nan) {
    case Nan::kIeee:  // the quiet NaN: the top mantissa bit
      return sign | static_cast<uint8_t>(MaxExponentField(f) << f.mantissa_bits) |
             static_cast<uint8_t>(1 << (f.mantissa_bits - 1));
    case Nan::kAllOnes:
      return sign | static_cast<uint8_t>((1 << SignBit(f)) - 1);
    case Nan::kNegativeZero:
      return static_cast<uint8_t>(1 << SignBit(f));
    case Nan::kNone:
      return MagnitudeCode(f, f.max);
  }
  return 0;
}

}  // namespace

std::span<const MinifloatFormat> MinifloatFormats() { return kMinifloatFormats; }

const MinifloatFormat* FindMinifloat(int32_t data_type) {
  for (const auto& f : kMinifloatFormats) {
    if (f.data_type == data_type) return &f;
  }
  return nullptr;
}

double DecodeMinifloat(const MinifloatFormat& f, uint8_t code) {
  const bool negative = (code >> SignBit(f)) & 1;
  const int exponent = (code >> f.mantissa_bits) & MaxExponentField(f);
  const int mantissa = code & ((1 << f.mantissa_bits) - 1);
  const int magnitude = code & ((1 << SignBit(f)) - 1);
  switch (f.nan) {
    case Nan::kIeee:
      if (exponent == MaxExponentField(f)) {
        if (mantissa != 0) return std::nan("");
        return negative ? -INFINITY : INFINITY;
      }
      break;
    case Nan::kAllOnes:
      if (magnitude == (1 << SignBit(f)) - 1) return std::nan("");
      break;
    case Nan::kNegativeZero:
      if (negative && magnitude == 0) return std::nan("");
      break;
    case Nan::kNone:
      break;
  }
  const double value = exponent == 0 ? std::ldexp(mantissa, 1 - f.bias - f.mantissa_bits)
                                     : std::ldexp(mantissa + (1 << f.mantissa_bits),
                                                  exponent - f.bias - f.mantissa_bits);
  return negative ? -value : value;
}

// |x| rounded to the format's grid: the quantum of |x|'s binade (never finer than the
// subnormals') is a power of two, so |x| / quantum is exact and nearbyint rounds it to nearest
// even; a result above max saturates.
uint8_t EncodeMinifloat(const MinifloatFormat& f, double x) {
  const bool negative = std::signbit(x);
  if (std::isnan(x)) return NanCode(f, negative);
  const double a = std::fabs(x);
  double rounded = f.max;
  if (a < f.max) {
    const int emin = 1 - f.bias;
    const int e = a == 0 ? emin : std::max(std::ilogb(a), emin);
    const double quantum = std::ldexp(1.0, e - f.mantissa_bits);
    rounded = std::min(std::nearbyint(a / quantum) * quantum, f.max);
  }
  const uint8_t magnitude = MagnitudeCode(f, rounded);
  if (magnitude == 0 && f.nan == Nan::kNegativeZero) return 0;
  return magnitude | static_cast<uint8_t>(negative ? 1 << SignBit(f) : 0);
}

void EncodeMinifloats(const MinifloatFormat& format, std::span<const float> in, uint8_t* codes) {
  for (size_t i = 0; i < in.size(); ++i) codes[i] = EncodeMinifloat(format, in[i]);
}

}  // namespace reinit

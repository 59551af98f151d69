#include "io/tensor_codec.h"

#include <Eigen/Core>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "io/codes.h"
#include "io/minifloat.h"

namespace reinit {
namespace {

// raw_data is little-endian; copying host words byte for byte is only right on such a host.
static_assert(std::endian::native == std::endian::little, "raw_data codec assumes little-endian");

using onnx::TensorProto;

enum class Storage { kNone, kRaw, kTyped };

std::string Quoted(const TensorProto& tensor) { return "tensor '" + tensor.name() + "'"; }

size_t ElementSize(int32_t data_type) {
  switch (data_type) {
    case TensorProto::FLOAT:
      return 4;
    case TensorProto::DOUBLE:
      return 8;
    case TensorProto::FLOAT16:
    case TensorProto::BFLOAT16:
      return 2;
    default:
      return 0;
  }
}

// The typed field the format assigns to a supported type.
const char* TypedFieldName(int32_t data_type) {
  switch (data_type) {
    case TensorProto::FLOAT:
      return "float_data";
    case TensorProto::DOUBLE:
      return "double_data";
    default:
      return "int32_data";
  }
}

int TypedFieldSize(const TensorProto& tensor) {
  switch (tensor.data_type()) {
    case TensorProto::FLOAT:
      return tensor.float_data_size();
    case TensorProto::DOUBLE:
      return tensor.double_data_size();
    default:
      return tensor.int32_data_size();
  }
}

// Errors shared by reading, checking and writing: the type, the location and which field
// holds the data. Both raw_data and the typed field set is ambiguous (the ONNX checker rejects
// it), so it is an error rather than a guess.
StatusOr<Storage> StorageOf(const TensorProto& tensor) {
  if (!IsSupportedFloatType(tensor.data_type())) {
    return ModelError(Quoted(tensor) + ": data type " + DataTypeName(tensor.data_type()) +
                      " is not supported (" + FloatTypeNames() + ")");
  }
  if (tensor.data_location() == TensorProto::EXTERNAL) {
    return ModelError(Quoted(tensor) + ": external data is not supported yet");
  }
  const bool typed = TypedFieldSize(tensor) > 0;
  if (tensor.has_raw_data() && typed) {
    return ModelError(Quoted(tensor) + ": holds both raw_data and " +
                      TypedFieldName(tensor.data_type()));
  }
  if (tensor.has_raw_data()) return Storage::kRaw;
  return typed ? Storage::kTyped : Storage::kNone;
}

// Double to float rounding to odd: the truncation of x, with the last bit set if inexact.
// Rounding that to a format of at most 22 significand bits with nearest-even then equals
// rounding x directly (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved
// algorithms using rounding to odd", 2008); plain double -> float -> half can round twice
// (e.g. 1 + 2^-11 + 2^-40 would tie at 1 + 2^-11 and go down to 1).
float ToFloatRoundToOdd(double x) {
  const float f = static_cast<float>(x);
  if (!std::isfinite(f) || static_cast<double>(f) == x) return f;
  uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 1) == 0) {
    // f is the even neighbour of x; the odd one is one step toward x in magnitude.
    bits += std::abs(static_cast<double>(f)) > std::abs(x) ? -1u : 1u;
  }
  return std::bit_cast<float>(bits);
}

template <typename Src>
uint16_t ToHalfBits(Src v) {
  if constexpr (std::is_same_v<Src, double>) {
    return Eigen::numext::bit_cast<uint16_t>(Eigen::half(ToFloatRoundToOdd(v)));
  } else {
    return Eigen::numext::bit_cast<uint16_t>(Eigen::half(v));
  }
}

template <typename Src>
uint16_t ToBfloat16Bits(Src v) {
  if constexpr (std::is_same_v<Src, double>) {
    return Eigen::numext::bit_cast<uint16_t>(Eigen::bfloat16(ToFloatRoundToOdd(v)));
  } else {
    return Eigen::numext::bit_cast<uint16_t>(Eigen::bfloat16(v));
  }
}

double FromHalfBits(uint16_t bits) {
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(bits));
}

double FromBfloat16Bits(uint16_t bits) {
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::bfloat16>(bits));
}

template <typename Word>
Word LoadLittleEndian(const char* p) {
  Word w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}

template <typename Word>
void StoreLittleEndian(Word w, char* p) {
  std::memcpy(p, &w, sizeof(w));
}

template <typename Src>
Status WriteValuesImpl(std::span<const Src> values, TensorProto* tensor) {
  StatusOr<Storage> storage = StorageOf(*tensor);
  REINIT_RETURN_IF_ERROR(storage.status());
  StatusOr<int64_t> count = ElementCount(*tensor);
  REINIT_RETURN_IF_ERROR(count.status());
  if (values.size() != static_cast<uint64_t>(*count)) {
    return ModelError(Quoted(*tensor) + ": got " + std::to_string(values.size()) +
                      " values to write, expected " + std::to_string(*count) + " " +
                      DataTypeName(tensor->data_type()) + " values");
  }
  const int32_t type = tensor->data_type();
  if (const MinifloatFormat* format = FindMinifloat(type)) {
    std::vector<uint8_t> codes(values.size());
    for (size_t i = 0; i < values.size(); ++i) codes[i] = EncodeMinifloat(*format, values[i]);
    return WriteCodes(codes, tensor);
  }
  if (*storage == Storage::kTyped) {
    switch (type) {
      case TensorProto::FLOAT: {
        auto* field = tensor->mutable_float_data();
        field->Clear();
        field->Reserve(static_cast<int>(values.size()));
        for (Src v : values) field->Add(static_cast<float>(v));
        break;
      }
      case TensorProto::DOUBLE: {
        auto* field = tensor->mutable_double_data();
        field->Clear();
        field->Reserve(static_cast<int>(values.size()));
        for (Src v : values) field->Add(static_cast<double>(v));
        break;
      }
      default: {
        auto* field = tensor->mutable_int32_data();
        field->Clear();
        field->Reserve(static_cast<int>(values.size()));
        const bool half = type == TensorProto::FLOAT16;
        for (Src v : values) field->Add(half ? ToHalfBits(v) : ToBfloat16Bits(v));
        break;
      }
    }
    return Status::Ok();
  }
  // raw_data, either kept or given to a tensor that had no data.
  const size_t size = ElementSize(type);
  std::string raw(values.size() * size, '\0');
  if constexpr (std::is_same_v<Src, float>) {
    // The vectorized encoders, bit-identical to the element-wise conversions below.
    if (type == TensorProto::FLOAT16 || type == TensorProto::BFLOAT16) {
      std::vector<uint16_t> bits(values.size());
      if (type == TensorProto::FLOAT16) {
        EncodeFloat16(values, bits.data());
      } else {
        EncodeBFloat16(values, bits.data());
      }
      std::memcpy(raw.data(), bits.data(), raw.size());
      tensor->set_raw_data(std::move(raw));
      return Status::Ok();
    }
  }
  char* p = raw.data();
  for (Src v : values) {
    switch (type) {
      case TensorProto::FLOAT:
        StoreLittleEndian(static_cast<float>(v), p);
        break;
      case TensorProto::DOUBLE:
        StoreLittleEndian(static_cast<double>(v), p);
        break;
      case TensorProto::FLOAT16:
        StoreLittleEndian(ToHalfBits(v), p);
        break;
      default:
        StoreLittleEndian(ToBfloat16Bits(v), p);
        break;
    }
    p += size;
  }
  tensor->set_raw_data(std::move(raw));
  return Status::Ok();
}

}  // namespace

bool IsSupportedFloatType(int32_t data_type) {
  return ElementSize(data_type) != 0 || FindMinifloat(data_type) != nullptr;
}

std::string FloatTypeNames() {
  std::string names = "FLOAT, FLOAT16, BFLOAT16, DOUBLE";
  for (const auto& f : MinifloatFormats()) names += ", " + DataTypeName(f.data_type);
  return names;
}

std::string DataTypeName(int32_t data_type) {
  if (!onnx::TensorProto_DataType_IsValid(data_type)) {
    return "type " + std::to_string(data_type);
  }
  return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(data_type));
}

// count = product of dims (1 for a scalar, dims = []); every dim must be >= 0 and the product
// must fit in int64.
StatusOr<int64_t> ElementCount(const TensorProto& tensor) {
  int64_t count = 1;
  for (int d = 0; d < tensor.dims_size(); ++d) {
    const int64_t dim = tensor.dims(d);
    if (dim < 0) {
      return ModelError(Quoted(tensor) + ": dimension " + std::to_string(d) + " is " +
                        std::to_string(dim) + ", expected a size >= 0");
    }
    if (__builtin_mul_overflow(count, dim, &count)) {
      std::string dims;
      for (int e = 0; e < tensor.dims_size(); ++e) {
        dims += (e ? ", " : "") + std::to_string(tensor.dims(e));
      }
      return ModelError(Quoted(tensor) + ": element count of dims [" + dims + "] overflows int64");
    }
  }
  return count;
}

// raw_data: bytes == count * element size; typed field: size == count. A tensor with neither
// is only valid when it has no elements.
Status CheckStoredSize(const TensorProto& tensor) {
  StatusOr<Storage> storage = StorageOf(tensor);
  REINIT_RETURN_IF_ERROR(storage.status());
  if (FindMinifloat(tensor.data_type())) return CheckCodes(tensor);
  StatusOr<int64_t> count = ElementCount(tensor);
  REINIT_RETURN_IF_ERROR(count.status());
  const std::string type = DataTypeName(tensor.data_type());
  const std::string what = std::to_string(*count) + " " + type + " values";
  switch (*storage) {
    case Storage::kRaw: {
      uint64_t expected = 0;
      if (__builtin_mul_overflow(static_cast<uint64_t>(*count), ElementSize(tensor.data_type()),
                                 &expected)) {
        return ModelError(Quoted(tensor) + ": raw_data holds " +
                          std::to_string(tensor.raw_data().size()) + " bytes, expected " + what +
                          " (more than 2^64 bytes)");
      }
      if (tensor.raw_data().size() != expected) {
        return ModelError(Quoted(tensor) + ": raw_data holds " +
                          std::to_string(tensor.raw_data().size()) + " bytes, expected " +
                          std::to_string(expected) + " for " + what);
      }
      return Status::Ok();
    }
    case Storage::kTyped:
      if (TypedFieldSize(tensor) != *count) {
        return ModelError(Quoted(tensor) + ": " + TypedFieldName(tensor.data_type()) + " holds " +
                          std::to_string(TypedFieldSize(tensor)) + " values, expected " + what);
      }
      return Status::Ok();
    case Storage::kNone:
      if (*count != 0) {
        return ModelError(Quoted(tensor) + ": has no data (neither raw_data nor " +
                          TypedFieldName(tensor.data_type()) + "), expected " + what);
      }
      return Status::Ok();
  }
  return Status::Ok();
}

StatusOr<std::vector<double>> ReadValues(const TensorProto& tensor) {
  REINIT_RETURN_IF_ERROR(CheckStoredSize(tensor));
  const int32_t type = tensor.data_type();
  if (const MinifloatFormat* format = FindMinifloat(type)) {
    auto codes = ReadCodes(tensor);
    if (!codes.ok()) return codes.status();
    std::vector<double> values(codes->size());
    for (size_t i = 0; i < values.size(); ++i) values[i] = DecodeMinifloat(*format, (*codes)[i]);
    return values;
  }
  const size_t count = static_cast<size_t>(*ElementCount(tensor));
  std::vector<double> values(count);
  if (tensor.has_raw_data()) {
    const char* p = tensor.raw_data().data();
    const size_t size = ElementSize(type);
    for (size_t i = 0; i < count; ++i, p += size) {
      switch (type) {
        case TensorProto::FLOAT:
          values[i] = LoadLittleEndian<float>(p);
          break;
        case TensorProto::DOUBLE:
          values[i] = LoadLittleEndian<double>(p);
          break;
        case TensorProto::FLOAT16:
          values[i] = FromHalfBits(LoadLittleEndian<uint16_t>(p));
          break;
        default:
          values[i] = FromBfloat16Bits(LoadLittleEndian<uint16_t>(p));
          break;
      }
    }
    return values;
  }
  for (size_t i = 0; i < count; ++i) {
    const int n = static_cast<int>(i);
    switch (type) {
      case TensorProto::FLOAT:
        values[i] = tensor.float_data(n);
        break;
      case TensorProto::DOUBLE:
        values[i] = tensor.double_data(n);
        break;
      // int32_data holds the 16-bit pattern; the low 16 bits are taken so that writers that
      // stored it sign-extended (-1 for 0xFFFF) read the same.
      case TensorProto::FLOAT16:
        values[i] = FromHalfBits(static_cast<uint16_t>(tensor.int32_data(n)));
        break;
      default:
        values[i] = FromBfloat16Bits(static_cast<uint16_t>(tensor.int32_data(n)));
        break;
    }
  }
  return values;
}

Status WriteValues(std::span<const float> values, TensorProto* tensor) {
  return WriteValuesImpl(values, tensor);
}

Status WriteValues(std::span<const double> values, TensorProto* tensor) {
  return WriteValuesImpl(values, tensor);
}

uint64_t RawBytes(int32_t data_type, uint64_t count) {
  if (FindMinifloat(data_type)) return CodeBytes(data_type, count);
  return count * ElementSize(data_type);
}

void EncodeRaw(std::span<const float> values, int32_t data_type, char* out) {
  if (const MinifloatFormat* format = FindMinifloat(data_type)) {
    auto* bytes = reinterpret_cast<uint8_t*>(out);
    if (CodeBits(data_type) == 8) {
      EncodeMinifloats(*format, values, bytes);
      return;
    }
    std::vector<uint8_t> codes(values.size());
    EncodeMinifloats(*format, values, codes.data());
    PackNibbles(codes, bytes);
    return;
  }
  if (data_type == TensorProto::FLOAT16 || data_type == TensorProto::BFLOAT16) {
    std::vector<uint16_t> bits(values.size());
    if (data_type == TensorProto::FLOAT16) {
      EncodeFloat16(values, bits.data());
    } else {
      EncodeBFloat16(values, bits.data());
    }
    std::memcpy(out, bits.data(), bits.size() * sizeof(uint16_t));
    return;
  }
  std::memcpy(out, values.data(), values.size() * sizeof(float));
}

// binary16 from the float bits x, a = |x|, per range (after Giesen, "float->half variants"):
//   a >= 2^16 (0x47800000): inf 0x7c00, or for a NaN the quiet NaN 0x7e00;
//   2^-14 <= a < 2^16:      rebias the exponent (-112 << 23) and round the 13 dropped bits to
//                           nearest even by adding 0xfff + (bit 13); a carry into the exponent
//                           is the correct rounding, up to inf for a >= 65520;
//   a < 2^-14:              a + 0.5 in float rounds a to a multiple of 2^-24 (the subnormal
//                           step) to nearest even, and its low bits are then the subnormal.
// All three are computed and the right one selected, so the loop has no branches.
void EncodeFloat16(std::span<const float> in, uint16_t* out) {
  const size_t n = in.size();
  const float* src = in.data();
  for (size_t i = 0; i < n; ++i) {
    uint32_t x;
    std::memcpy(&x, src + i, 4);
    const uint32_t a = x & 0x7fffffffu;
    const uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
    float shifted;
    std::memcpy(&shifted, &a, 4);
    shifted += 0.5f;
    uint32_t subnormal;
    std::memcpy(&subnormal, &shifted, 4);
    subnormal -= 0x3f000000u;
    // Selection by masks (all ones or zero): GCC turns ?: chains here into branches.
    const uint32_t is_nan = 0u - static_cast<uint32_t>(a > 0x7f800000u);
    const uint32_t is_big = 0u - static_cast<uint32_t>(a >= 0x47800000u);
    const uint32_t is_small = 0u - static_cast<uint32_t>(a < 0x38800000u);
    const uint32_t special = 0x7c00u | (is_nan & 0x200u);
    const uint32_t magnitude =
        (special & is_big) | (subnormal & is_small) | (normal & ~(is_big | is_small));
    out[i] = static_cast<uint16_t>(magnitude | ((x >> 16) & 0x8000u));
  }
}

// bfloat16 from the float bits x: add 0x7fff + (bit 16) and keep the high half, which rounds
// to nearest even and carries into the exponent (up to inf) where it should; NaNs would carry
// into the exponent or lose their payload, so they become the quiet NaN with their sign.
void EncodeBFloat16(std::span<const float> in, uint16_t* out) {
  const size_t n = in.size();
  const float* src = in.data();
  for (size_t i = 0; i < n; ++i) {
    uint32_t x;
    std::memcpy(&x, src + i, 4);
    const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    const uint32_t nan = ((x >> 16) & 0x8000u) | 0x7fc0u;
    const uint32_t is_nan = 0u - static_cast<uint32_t>((x & 0x7fffffffu) > 0x7f800000u);
    out[i] = static_cast<uint16_t>((nan & is_nan) | (rounded & ~is_nan));
  }
}

}  // namespace reinit

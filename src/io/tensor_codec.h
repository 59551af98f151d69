// Reading and writing the values of an ONNX floating-point tensor without changing how it is
// stored: FLOAT, FLOAT16, BFLOAT16 and DOUBLE, in raw_data (little-endian) or in the typed
// field the format assigns (float_data; double_data; int32_data holding one 16-bit pattern per
// element for FLOAT16/BFLOAT16); and the formats of 8 bits and fewer (FLOAT8E4M3FN,
// FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1: io/minifloat), stored as codes
// (io/codes). Conversion to the narrower types rounds to nearest even; to the FLOAT8 and FLOAT4
// types it also saturates, as ONNX's Cast does by default.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "status.h"

namespace reinit {

// FLOAT, FLOAT16, BFLOAT16, DOUBLE, a FLOAT8 type or FLOAT4E2M1.
bool IsSupportedFloatType(int32_t data_type);

// "FLOAT, FLOAT16, BFLOAT16, DOUBLE, FLOAT8E4M3FN, ...": the supported float types, for messages.
std::string FloatTypeNames();

// "FLOAT", "INT64", ... (the TensorProto.DataType enum name), or "type <n>" if unknown.
std::string DataTypeName(int32_t data_type);

// Product of dims, or an error for a negative dim or an overflowing product.
StatusOr<int64_t> ElementCount(const onnx::TensorProto& tensor);

// Checks that the tensor's stored data holds exactly ElementCount values (raw_data length or
// typed-field size). External data and tensors with no data at all are errors here.
Status CheckStoredSize(const onnx::TensorProto& tensor);

// The tensor's values as doubles. Errors name the tensor.
StatusOr<std::vector<double>> ReadValues(const onnx::TensorProto& tensor);

// Replaces the tensor's values, keeping data_type, dims and the storage field in use (a tensor
// with no data gets raw_data). values.size() must equal ElementCount.
Status WriteValues(std::span<const float> values, onnx::TensorProto* tensor);
Status WriteValues(std::span<const double> values, onnx::TensorProto* tensor);

// The raw_data bytes of `count` values of a supported float type.
uint64_t RawBytes(int32_t data_type, uint64_t count);

// The raw_data bytes of `values` (FLOAT, FLOAT16, BFLOAT16, a FLOAT8 type or FLOAT4E2M1) into
// out[0, RawBytes(data_type, values.size())), the same bytes WriteValues stores; for FLOAT4E2M1
// the values start at an even element of the tensor (two share a byte).
void EncodeRaw(std::span<const float> values, int32_t data_type, char* out);

// The IEEE binary16 / bfloat16 bit pattern of each float, rounded to nearest even, into
// out[0, in.size()). Bit-identical to Eigen::half(float) and Eigen::bfloat16(float) as built
// here (GCC; Eigen's portable conversions) for every input: normal numbers, results that round
// to subnormals or zero, overflow to infinity (|x| >= 65520 for binary16, |x| >= 0x1.ffp127
// for bfloat16), infinities and signed zeros. A NaN becomes the quiet NaN 0x7e00 / 0x7fc0
// with its sign (payload dropped; x86's F16C instruction, which Eigen uses under clang, would
// keep the top payload bits). Branch-free per element, so the loops vectorize.
void EncodeFloat16(std::span<const float> in, uint16_t* out);
void EncodeBFloat16(std::span<const float> in, uint16_t* out);

}  // namespace reinit

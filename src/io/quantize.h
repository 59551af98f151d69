// Quantized weights (QDQ): an initializer q read through DequantizeLinear as
// w = (q - zero_point) · scale, with one scale for the tensor, one per index along an axis, or
// one per block of `block_size` indices along an axis (opset 21: the scale then has q's rank,
// with ceil(D / block_size) along the axis). The quantized types are the integers INT8, UINT8,
// INT4 and UINT4 and the floats FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ and
// FLOAT4E2M1 (whose zero point, if given, is 0). reinit draws w in float, then requantizes it
// into the same type and layout with new scales computed from the new values, one per slice
// (the elements a scale applies to), the zero points kept:
//   integers: scale = max over the slice of  w / (qmax - z)  for w > 0,  w / (qmin - z)  for w < 0
//             q = clamp(round(w / scale) + z, qmin, qmax), rounding half to even
//   floats:   scale = max |w| over the slice / the type's largest finite value
//             q = w / scale, rounded to nearest even and saturated (io/minifloat)
// A slice of zeros gets scale 1. The scales are rounded to the scale tensor's type (FLOAT,
// FLOAT16 or BFLOAT16) before q is computed, so that q and the stored scales agree.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "status.h"

namespace reinit {

// One of the types above.
bool IsQuantizedType(int32_t data_type);

// "INT8, UINT8, INT4, UINT4, FLOAT8E4M3FN, ...": the quantized types, for messages.
std::string QuantizedTypeNames();

// The integer values of an INT8, UINT8, INT4 or UINT4 tensor (raw_data or int32_data, 4-bit ones
// packed two a byte); an error naming the tensor if the stored size does not match its dims.
StatusOr<std::vector<int32_t>> ReadIntegers(const onnx::TensorProto& tensor);

// Replaces the values, keeping the storage field in use.
Status WriteIntegers(std::span<const int32_t> values, onnx::TensorProto* tensor);

// Which elements share a scale: one scale (axis < 0); one per index along `axis`
// (block_size 0); one per block of block_size indices along `axis`.
struct QuantLayout {
  int axis = -1;
  int64_t block_size = 0;
};

// Why DequantizeLinear(q, scale, zero_point) with `layout` cannot be requantized, or "" if it
// can: q of a quantized type, the scale FLOAT, FLOAT16 or BFLOAT16 and shaped as the layout
// asks, the zero point (nullptr if none) of q's type and the scale's shape, FLOAT8 and FLOAT4
// zero points 0, and every stored size right.
std::string QuantizationProblem(const onnx::TensorProto& q, const onnx::TensorProto& scale,
                                const onnx::TensorProto* zero_point, const QuantLayout& layout);

// The zero points' integer values; for a FLOAT8 or FLOAT4 tensor, zeros (an error if one is not).
StatusOr<std::vector<int32_t>> ReadZeroPoints(const onnx::TensorProto& zero_point);

struct Requantized {
  std::vector<uint8_t> codes;  // one per element, as io/codes stores them
  std::vector<double> scales;  // one per slice, as the scale's type holds them
};

// `w` in the tensor's row-major `shape`; `zero_points` has one entry per scale, or one for all,
// or none (all 0); `data_type` is q's type, `scale_type` the scale's.
StatusOr<Requantized> Requantize(std::span<const float> w, const std::vector<int64_t>& shape,
                                 const QuantLayout& layout, std::span<const int32_t> zero_points,
                                 int32_t data_type, int32_t scale_type);

}  // namespace reinit

// Quantized weights (QDQ): an INT8/UINT8 initializer read through DequantizeLinear, as
// w = (q - zero_point) · scale, per tensor or per axis. reinit draws w in float, then
// requantizes it with new scales computed from the new values so that every value fits the
// integer range around the zero points, which are kept:
//   scale_k = max over the slice of  w / (qmax - z_k)  for w > 0,  w / (qmin - z_k)  for w < 0
//   q = clamp(round(w / scale_k) + z_k, qmin, qmax)
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <span>
#include <vector>

#include "status.h"

namespace reinit {

// INT8 or UINT8.
bool IsQuantizedType(int32_t data_type);

// The integer values of an INT8/UINT8 tensor (raw_data or int32_data); an error naming the
// tensor if the stored size does not match its dims.
StatusOr<std::vector<int32_t>> ReadIntegers(const onnx::TensorProto& tensor);

// Replaces the values, keeping the storage field in use.
Status WriteIntegers(std::span<const int32_t> values, onnx::TensorProto* tensor);

struct Requantized {
  std::vector<int32_t> q;
  std::vector<double> scales;
};

// `w` in the tensor's row-major `shape`; `axis` < 0 for one scale, else one per index along
// that axis; `zero_points` has one entry, or one per index along the axis.
StatusOr<Requantized> Requantize(std::span<const float> w, const std::vector<int64_t>& shape,
                                 int axis, const std::vector<int32_t>& zero_points,
                                 int32_t data_type);

}  // namespace reinit

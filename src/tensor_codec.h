// Reading and writing the values of an ONNX floating-point tensor without changing how it is
// stored: FLOAT, FLOAT16, BFLOAT16 and DOUBLE, in raw_data (little-endian) or in the typed
// field the format assigns (float_data; double_data; int32_data holding one 16-bit pattern per
// element for FLOAT16/BFLOAT16). float16/bfloat16 conversion rounds to nearest even.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "status.h"

namespace reinit {

// FLOAT, FLOAT16, BFLOAT16 or DOUBLE.
bool IsSupportedFloatType(int32_t data_type);

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

}  // namespace reinit

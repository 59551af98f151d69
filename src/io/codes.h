// The stored codes of the ONNX types of 8 bits or fewer an element: INT8, UINT8 and the FLOAT8
// types one byte each, INT4, UINT4 and FLOAT4E2M1 two a byte, element 0 in the low nibble (an
// odd count leaves the last high nibble 0). A code is the element's bits (an INT8's two's
// complement byte, an INT4's nibble). They sit in raw_data, or in int32_data one stored byte
// an entry (one element of 8 bits; a packed pair of 4-bit ones). What the codes mean is for
// the callers: quantize (integers) and tensor_codec (FLOAT8, FLOAT4).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <span>
#include <vector>

#include "status.h"

namespace reinit {

// 8 or 4 for the types above, else 0.
int CodeBits(int32_t data_type);

// The bytes `count` codes of the type take: count, or ceil(count / 2) for 4-bit types.
uint64_t CodeBytes(int32_t data_type, uint64_t count);

// Checks that the tensor's stored data holds exactly its elements' codes (raw_data length or
// int32_data size; each int32_data entry one byte, from -128 to 255); errors name the tensor.
Status CheckCodes(const onnx::TensorProto& tensor);

// Every element's code, unpacked.
StatusOr<std::vector<uint8_t>> ReadCodes(const onnx::TensorProto& tensor);

// Replaces the codes (one per element, 4-bit ones in the low nibble), keeping the storage field
// in use (a tensor with no data gets raw_data). An INT8 entry of int32_data is written as its
// signed value, as onnx's helpers write it.
Status WriteCodes(std::span<const uint8_t> codes, onnx::TensorProto* tensor);

// Packs 4-bit codes two a byte, low nibble first, into out[0, ceil(codes.size() / 2)).
void PackNibbles(std::span<const uint8_t> codes, uint8_t* out);

}  // namespace reinit

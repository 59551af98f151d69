// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N,
// N bytes of JSON — {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
// ..., "__metadata__": {string: string}} — padded with spaces so that the data starts on an
// 8-byte boundary, then every tensor's little-endian bytes, contiguous, in the order of their
// offsets (relative to the start of the data). Written here without the library: the tensors
// go in order of decreasing element size (stable), as the library writes them, so that each
// starts aligned to its element size.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "export/tensor.h"
#include "status.h"

namespace reinit {

// "F32", "F16", "BF16", "F64", "I64", ...; empty for a type safetensors has no name for.
std::string SafetensorsDtype(int32_t onnx_type);

StatusOr<std::string> EncodeSafetensors(const std::vector<ExportedTensor>& tensors,
                                        const std::map<std::string, std::string>& metadata);

}  // namespace reinit

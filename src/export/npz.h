// NumPy's .npz: a zip archive of one .npy file per array, "<name>.npy", as numpy.savez writes
// it (stored, not compressed). Each .npy is format version 1.0: the magic, a header dict
// {'descr', 'fortran_order', 'shape'} padded to a multiple of 64 bytes, then the data. The
// zip's CRC-32 is zlib's. Archives that would need zip64 (4 GiB or more, 65535 or more
// arrays) are refused: use safetensors.
#pragma once

#include <string>
#include <vector>

#include "export/tensor.h"
#include "status.h"

namespace reinit {

// "<f4", "<f2", "<f8", "<i8", ...; empty for a type numpy has no dtype for (bfloat16).
std::string NpyDescr(int32_t onnx_type);

// One .npy file's bytes.
StatusOr<std::string> EncodeNpy(const ExportedTensor& tensor);

StatusOr<std::string> EncodeNpz(const std::vector<ExportedTensor>& tensors);

}  // namespace reinit

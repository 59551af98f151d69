// A reader for NumPy's .npy format (versions 1.0, 2.0 and 3.0): the header's dict (descr,
// fortran_order, shape) and the little-endian data that follows, as an executor tensor.
// Floats (f2, f4, f8) become float32, integers (i1-i8, u1-u8) int64, b1 bool. Fortran order,
// big-endian data, object arrays and structured dtypes are refused with an error naming the file.
#pragma once

#include <string>

#include "signal/executor/tensor.h"
#include "status.h"

namespace reinit {

StatusOr<exec::Tensor> ReadNpy(const std::string& path);

// The same from the file's bytes; `path` only names it in errors.
StatusOr<exec::Tensor> ParseNpy(const std::string& bytes, const std::string& path);

}  // namespace reinit

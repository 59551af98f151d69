// A tensor as the export stage writes it: a name, an ONNX data type, a shape and its
// little-endian row-major bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace reinit {

struct ExportedTensor {
  std::string name;
  int32_t data_type = 0;  // onnx::TensorProto::DataType
  std::vector<int64_t> shape;
  std::string bytes;
};

}  // namespace reinit

// The reference executor's values: a dense row-major tensor of float32 (what every layer
// computes in), int64 (shapes, indices, ids) or bool (masks, stored as 0/1 in the int64
// buffer). Small and plain on purpose: ops read and write the vectors directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace reinit::exec {

enum class DType { kFloat, kInt64, kBool };

const char* DTypeName(DType type);

struct Tensor {
  DType type = DType::kFloat;
  std::vector<int64_t> shape;
  std::vector<float> f;    // kFloat
  std::vector<int64_t> i;  // kInt64, kBool

  // Number of elements: the product of the shape (1 for a scalar).
  int64_t size() const;
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  bool is_float() const { return type == DType::kFloat; }

  static Tensor Float(std::vector<int64_t> shape, std::vector<float> values = {});
  static Tensor Int64(std::vector<int64_t> shape, std::vector<int64_t> values = {});
  static Tensor Bool(std::vector<int64_t> shape, std::vector<int64_t> values = {});
};

// Product of dims (1 for none).
int64_t ShapeSize(const std::vector<int64_t>& shape);

// "[2, 3, 4]".
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace reinit::exec

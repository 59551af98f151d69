#include "signal/executor/tensor.h"

#include <utility>

namespace reinit::exec {

const char* DTypeName(DType type) {
  switch (type) {
    case DType::kFloat:
      return "float";
    case DType::kInt64:
      return "int64";
    case DType::kBool:
      return "bool";
  }
  return "?";
}

int64_t ShapeSize(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) {
    if (k) s += ", ";
    s += std::to_string(shape[k]);
  }
  return s + "]";
}

int64_t Tensor::size() const { return ShapeSize(shape); }

Tensor Tensor::Float(std::vector<int64_t> shape, std::vector<float> values) {
  Tensor t;
  t.type = DType::kFloat;
  t.shape = std::move(shape);
  t.f = std::move(values);
  if (t.f.empty()) t.f.assign(static_cast<size_t>(t.size()), 0.0f);
  return t;
}

Tensor Tensor::Int64(std::vector<int64_t> shape, std::vector<int64_t> values) {
  Tensor t;
  t.type = DType::kInt64;
  t.shape = std::move(shape);
  t.i = std::move(values);
  if (t.i.empty()) t.i.assign(static_cast<size_t>(t.size()), 0);
  return t;
}

Tensor Tensor::Bool(std::vector<int64_t> shape, std::vector<int64_t> values) {
  Tensor t = Int64(std::move(shape), std::move(values));
  t.type = DType::kBool;
  return t;
}

}  // namespace reinit::exec

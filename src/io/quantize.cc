#include "io/quantize.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace reinit {

namespace {

std::string Named(const onnx::TensorProto& t) { return "tensor '" + t.name() + "'"; }

int64_t Count(const onnx::TensorProto& t) {
  int64_t n = 1;
  for (int64_t d : t.dims()) n *= d;
  return n;
}

}  // namespace

bool IsQuantizedType(int32_t data_type) {
  return data_type == onnx::TensorProto::INT8 || data_type == onnx::TensorProto::UINT8;
}

StatusOr<std::vector<int32_t>> ReadIntegers(const onnx::TensorProto& t) {
  if (!IsQuantizedType(t.data_type())) return ModelError(Named(t) + " is not INT8 or UINT8");
  const int64_t n = Count(t);
  std::vector<int32_t> out;
  if (t.has_raw_data()) {
    if (static_cast<int64_t>(t.raw_data().size()) != n) {
      return ModelError(Named(t) + ": raw_data holds " + std::to_string(t.raw_data().size()) +
                        " bytes, expected " + std::to_string(n));
    }
    out.reserve(static_cast<size_t>(n));
    for (char c : t.raw_data()) {
      out.push_back(t.data_type() == onnx::TensorProto::INT8 ? static_cast<int8_t>(c)
                                                             : static_cast<uint8_t>(c));
    }
    return out;
  }
  if (t.int32_data_size() != n) {
    return ModelError(Named(t) + ": int32_data holds " + std::to_string(t.int32_data_size()) +
                      " values, expected " + std::to_string(n));
  }
  return std::vector<int32_t>(t.int32_data().begin(), t.int32_data().end());
}

Status WriteIntegers(std::span<const int32_t> values, onnx::TensorProto* t) {
  if (static_cast<int64_t>(values.size()) != Count(*t)) {
    return ModelError(Named(*t) + ": " + std::to_string(values.size()) + " values for " +
                      std::to_string(Count(*t)) + " elements");
  }
  if (t->has_raw_data() || t->int32_data_size() == 0) {
    std::string bytes(values.size(), '\0');
    for (size_t i = 0; i < values.size(); ++i) bytes[i] = static_cast<char>(values[i]);
    t->set_raw_data(std::move(bytes));
    return Status::Ok();
  }
  t->clear_int32_data();
  for (int32_t v : values) t->add_int32_data(v);
  return Status::Ok();
}

StatusOr<Requantized> Requantize(std::span<const float> w, const std::vector<int64_t>& shape,
                                 int axis, const std::vector<int32_t>& zero_points,
                                 int32_t data_type) {
  const int32_t qmin = data_type == onnx::TensorProto::INT8 ? -128 : 0;
  const int32_t qmax = data_type == onnx::TensorProto::INT8 ? 127 : 255;
  int64_t outer = 1, channels = 1, inner = 1;
  if (axis >= 0) {
    if (axis >= static_cast<int>(shape.size())) return ModelError("axis out of range");
    for (int d = 0; d < axis; ++d) outer *= shape[d];
    channels = shape[axis];
    for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  } else {
    inner = static_cast<int64_t>(w.size());
  }
  if (zero_points.size() != 1 && static_cast<int64_t>(zero_points.size()) != channels) {
    return ModelError(std::to_string(zero_points.size()) + " zero points for " +
                      std::to_string(channels) + " scales");
  }
  auto zp = [&](int64_t k) { return zero_points.size() == 1 ? zero_points[0] : zero_points[k]; };
  Requantized r;
  r.scales.assign(static_cast<size_t>(channels), 0.0);
  auto element = [&](int64_t o, int64_t k, int64_t i) { return (o * channels + k) * inner + i; };
  for (int64_t k = 0; k < channels; ++k) {
    const int32_t z = zp(k);
    if (z < qmin || z > qmax)
      return ModelError("zero point " + std::to_string(z) + " out of range");
    double s = 0;
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const double x = w[element(o, k, i)];
        if (x > 0 && qmax > z) s = std::max(s, x / (qmax - z));
        if (x < 0 && qmin < z) s = std::max(s, x / (qmin - z));
      }
    }
    r.scales[k] = s > 0 ? s : 1.0;
  }
  r.q.resize(w.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < channels; ++k) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t e = element(o, k, i);
        const double q = std::nearbyint(w[e] / r.scales[k]) + zp(k);
        r.q[e] = static_cast<int32_t>(std::clamp<double>(q, qmin, qmax));
      }
    }
  }
  return r;
}

}  // namespace reinit

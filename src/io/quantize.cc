#include "io/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io/codes.h"
#include "io/minifloat.h"
#include "io/tensor_codec.h"
#include "io/tensor_store.h"

namespace reinit {

namespace {

using onnx::TensorProto;

// The integer quantized types and their ranges; the float ones are io/minifloat's formats.
struct IntegerType {
  int32_t data_type;
  int32_t qmin, qmax;
};
constexpr IntegerType kIntegerTypes[] = {
    {TensorProto::INT8, -128, 127},
    {TensorProto::UINT8, 0, 255},
    {TensorProto::INT4, -8, 7},
    {TensorProto::UINT4, 0, 15},
};

// The types a DequantizeLinear scale may have (opset 21's T2).
constexpr int32_t kScaleTypes[] = {TensorProto::FLOAT, TensorProto::FLOAT16, TensorProto::BFLOAT16};

const IntegerType* FindIntegerType(int32_t data_type) {
  for (const auto& t : kIntegerTypes) {
    if (t.data_type == data_type) return &t;
  }
  return nullptr;
}

std::string Named(const TensorProto& t) { return "tensor '" + t.name() + "'"; }

int32_t IntegerOfCode(const IntegerType& type, uint8_t code) {
  if (type.qmin == 0) return code;
  const int bits = CodeBits(type.data_type);
  return static_cast<int32_t>(code) - ((code >> (bits - 1)) & 1 ? 1 << bits : 0);
}

uint8_t CodeOfInteger(const IntegerType& type, int32_t value) {
  return static_cast<uint8_t>(value & ((1 << CodeBits(type.data_type)) - 1));
}

// The zero point of scale `slice`: one for all, one per scale, or none (0).
int32_t ZeroPointOf(std::span<const int32_t> zero_points, int64_t slice) {
  if (zero_points.empty()) return 0;
  return zero_points[zero_points.size() == 1 ? 0 : static_cast<size_t>(slice)];
}

std::vector<int64_t> DimsOf(const TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

std::string ShapeText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t d = 0; d < dims.size(); ++d) s += (d ? ", " : "") + std::to_string(dims[d]);
  return s + "]";
}

// The elements a scale applies to, for a tensor of `shape` seen as [outer, dim, inner] around the
// axis. Per tensor: dim 1, one slice; per axis: slice k for index k along it; blocked: the
// scale's own row-major index, with index k along the axis in block k / block.
struct Slices {
  int64_t outer = 1, dim = 1, inner = 1;
  int64_t block = 0;  // 0: not blocked
  int64_t count = 1;  // how many scales

  int64_t blocks() const { return block ? (dim + block - 1) / block : dim; }
  int64_t Of(int64_t o, int64_t k, int64_t i) const {
    return block ? (o * blocks() + k / block) * inner + i : k;
  }
  // The scale's dims the layout asks for (rank 0 for one scale).
  std::vector<int64_t> ScaleDims(const std::vector<int64_t>& shape, int axis) const {
    if (axis < 0) return {};
    if (!block) return {dim};
    std::vector<int64_t> dims = shape;
    dims[axis] = blocks();
    return dims;
  }
};

StatusOr<Slices> SlicesOf(const std::vector<int64_t>& shape, const QuantLayout& layout) {
  Slices s;
  if (layout.axis < 0) {
    for (int64_t d : shape) s.inner *= d;
    return s;
  }
  if (layout.axis >= static_cast<int>(shape.size())) {
    return ModelError("axis " + std::to_string(layout.axis) + " out of range for rank " +
                      std::to_string(shape.size()));
  }
  if (layout.block_size < 0) {
    return ModelError("block_size " + std::to_string(layout.block_size) + " is negative");
  }
  for (int d = 0; d < layout.axis; ++d) s.outer *= shape[d];
  s.dim = shape[layout.axis];
  for (size_t d = layout.axis + 1; d < shape.size(); ++d) s.inner *= shape[d];
  s.block = layout.block_size;
  s.count = s.block ? s.outer * s.blocks() * s.inner : s.dim;
  return s;
}

// The scales as a tensor of `type` holds them. A scale that would round to 0 (or overflow) is
// doubled (halved) until it does not: the values then use less of the range, never more.
Status RoundScales(int32_t type, std::vector<double>* scales) {
  for (int tries = 0; tries < 2100; ++tries) {
    TensorProto t;
    t.set_data_type(type);
    t.add_dims(static_cast<int64_t>(scales->size()));
    REINIT_RETURN_IF_ERROR(WriteValues(std::span<const double>(*scales), &t));
    auto stored = ReadValues(t);
    if (!stored.ok()) return stored.status();
    bool again = false;
    for (size_t k = 0; k < scales->size(); ++k) {
      const double s = (*stored)[k];
      if (s > 0 && std::isfinite(s)) continue;
      (*scales)[k] *= s > 0 ? 0.5 : 2.0;
      again = true;
    }
    if (!again) {
      *scales = std::move(stored).value();
      return Status::Ok();
    }
  }
  return ModelError("no scale of type " + DataTypeName(type) + " fits the new values");
}

// The integer rule of the header: the tightest scale that keeps every value of the slice in
// [qmin, qmax] around its zero point.
std::vector<double> IntegerScales(std::span<const float> w, const Slices& s, const IntegerType& t,
                                  std::span<const int32_t> zero_points) {
  std::vector<double> scales(static_cast<size_t>(s.count), 0.0);
  int64_t e = 0;
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t k = 0; k < s.dim; ++k) {
      for (int64_t i = 0; i < s.inner; ++i, ++e) {
        const int64_t slice = s.Of(o, k, i);
        const int32_t z = ZeroPointOf(zero_points, slice);
        const double x = w[e];
        double& scale = scales[slice];
        if (x > 0 && t.qmax > z) scale = std::max(scale, x / (t.qmax - z));
        if (x < 0 && t.qmin < z) scale = std::max(scale, x / (t.qmin - z));
      }
    }
  }
  return scales;
}

std::vector<double> FloatScales(std::span<const float> w, const Slices& s,
                                const MinifloatFormat& f) {
  std::vector<double> scales(static_cast<size_t>(s.count), 0.0);
  int64_t e = 0;
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t k = 0; k < s.dim; ++k) {
      for (int64_t i = 0; i < s.inner; ++i, ++e) {
        double& scale = scales[s.Of(o, k, i)];
        scale = std::max(scale, std::fabs(static_cast<double>(w[e])) / f.max);
      }
    }
  }
  return scales;
}

}  // namespace

bool IsQuantizedType(int32_t data_type) {
  return FindIntegerType(data_type) || FindMinifloat(data_type);
}

std::string QuantizedTypeNames() {
  std::string names;
  for (const auto& t : kIntegerTypes)
    names += (names.empty() ? "" : ", ") + DataTypeName(t.data_type);
  for (const auto& f : MinifloatFormats()) names += ", " + DataTypeName(f.data_type);
  return names;
}

StatusOr<std::vector<int32_t>> ReadIntegers(const TensorProto& t) {
  const IntegerType* type = FindIntegerType(t.data_type());
  if (!type) return ModelError(Named(t) + " is not INT8, UINT8, INT4 or UINT4");
  auto codes = ReadCodes(t);
  if (!codes.ok()) return codes.status();
  std::vector<int32_t> out(codes->size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = IntegerOfCode(*type, (*codes)[i]);
  return out;
}

Status WriteIntegers(std::span<const int32_t> values, TensorProto* t) {
  const IntegerType* type = FindIntegerType(t->data_type());
  if (!type) return ModelError(Named(*t) + " is not INT8, UINT8, INT4 or UINT4");
  std::vector<uint8_t> codes(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] < type->qmin || values[i] > type->qmax) {
      return ModelError(Named(*t) + ": " + std::to_string(values[i]) + " is out of the range of " +
                        DataTypeName(t->data_type()));
    }
    codes[i] = CodeOfInteger(*type, values[i]);
  }
  return WriteCodes(codes, t);
}

std::string QuantizationProblem(const TensorProto& q, const TensorProto& scale,
                                const TensorProto* zero_point, const QuantLayout& layout) {
  if (!IsQuantizedType(q.data_type())) {
    return "dequantized from " + DataTypeName(q.data_type()) + "; only " + QuantizedTypeNames() +
           " can be requantized";
  }
  if (std::find(std::begin(kScaleTypes), std::end(kScaleTypes), scale.data_type()) ==
      std::end(kScaleTypes)) {
    return "its scale '" + scale.name() + "' has data type " + DataTypeName(scale.data_type()) +
           "; a scale is FLOAT, FLOAT16 or BFLOAT16";
  }
  const std::vector<int64_t> shape = DimsOf(q);
  auto slices = SlicesOf(shape, layout);
  if (!slices.ok()) return "DequantizeLinear's " + std::string(slices.status().message());
  auto count = ElementCount(scale);
  if (!count.ok()) return std::string(count.status().message());
  const std::vector<int64_t> want = slices->ScaleDims(shape, layout.axis);
  if (layout.axis < 0 ? *count != 1 : DimsOf(scale) != want) {
    std::string layout_text = "one element";
    if (layout.axis >= 0) {
      layout_text = ShapeText(want) + " for dims " + ShapeText(shape) + " along axis " +
                    std::to_string(layout.axis);
      if (layout.block_size) layout_text += " in blocks of " + std::to_string(layout.block_size);
    }
    return "its scale '" + scale.name() + "' has dims " + ShapeText(DimsOf(scale)) + ", expected " +
           layout_text;
  }
  if (!zero_point) return "";
  auto zp_count = ElementCount(*zero_point);
  const bool same_shape =
      DimsOf(*zero_point) == DimsOf(scale) || (layout.axis < 0 && zp_count.ok() && *zp_count == 1);
  if (zero_point->data_type() != q.data_type() || !same_shape) {
    return "its zero point '" + zero_point->name() + "' (" + DataTypeName(zero_point->data_type()) +
           " " + ShapeText(DimsOf(*zero_point)) + ") is not " + DataTypeName(q.data_type()) + " " +
           ShapeText(DimsOf(scale)) + " as its scale";
  }
  // Deferred bytes are read at apply; the FLOAT zero points' values are checked there too.
  if (IsDeferred(*zero_point)) return "";
  auto zps = ReadZeroPoints(*zero_point);
  return zps.ok() ? "" : "its zero point: " + std::string(zps.status().message());
}

StatusOr<std::vector<int32_t>> ReadZeroPoints(const TensorProto& zero_point) {
  if (FindIntegerType(zero_point.data_type())) return ReadIntegers(zero_point);
  auto values = ReadValues(zero_point);
  if (!values.ok()) return values.status();
  for (double v : *values) {
    if (v != 0) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", v);
      return ModelError(Named(zero_point) + " holds " + text + "; a " +
                        DataTypeName(zero_point.data_type()) + " zero point must be 0");
    }
  }
  return std::vector<int32_t>(values->size(), 0);
}

StatusOr<Requantized> Requantize(std::span<const float> w, const std::vector<int64_t>& shape,
                                 const QuantLayout& layout, std::span<const int32_t> zero_points,
                                 int32_t data_type, int32_t scale_type) {
  const IntegerType* integer = FindIntegerType(data_type);
  const MinifloatFormat* format = FindMinifloat(data_type);
  if (!integer && !format) {
    return ModelError(DataTypeName(data_type) + " is not a quantized type (" +
                      QuantizedTypeNames() + ")");
  }
  auto slices = SlicesOf(shape, layout);
  if (!slices.ok()) return slices.status();
  const Slices& s = *slices;
  if (static_cast<int64_t>(w.size()) != s.outer * s.dim * s.inner) {
    return ModelError(std::to_string(w.size()) + " values for dims " + ShapeText(shape));
  }
  if (zero_points.size() > 1 && static_cast<int64_t>(zero_points.size()) != s.count) {
    return ModelError(std::to_string(zero_points.size()) + " zero points for " +
                      std::to_string(s.count) + " scales");
  }
  for (int32_t z : zero_points) {
    if (integer ? z < integer->qmin || z > integer->qmax : z != 0) {
      return ModelError("zero point " + std::to_string(z) + " out of range");
    }
  }
  Requantized r;
  r.scales = integer ? IntegerScales(w, s, *integer, zero_points) : FloatScales(w, s, *format);
  for (double& scale : r.scales) {
    if (scale == 0) scale = 1.0;
  }
  REINIT_RETURN_IF_ERROR(RoundScales(scale_type, &r.scales));
  r.codes.resize(w.size());
  int64_t e = 0;
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t k = 0; k < s.dim; ++k) {
      for (int64_t i = 0; i < s.inner; ++i, ++e) {
        const int64_t slice = s.Of(o, k, i);
        const double x = w[e] / r.scales[slice];
        if (format) {
          r.codes[e] = EncodeMinifloat(*format, x);
          continue;
        }
        const double q = std::nearbyint(x) + ZeroPointOf(zero_points, slice);
        r.codes[e] = CodeOfInteger(
            *integer, static_cast<int32_t>(std::clamp<double>(q, integer->qmin, integer->qmax)));
      }
    }
  }
  return r;
}

}  // namespace reinit

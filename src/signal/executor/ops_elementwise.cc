// Elementwise arithmetic and comparisons with numpy broadcasting, unary maths, activations,
// Clip, Cast, Softmax/LogSoftmax and the reductions (ReduceSum/Mean/Max/Min/SumSquare,
// ArgMax/ArgMin). Every row of the table is a small lambda over a few generic drivers: a map
// over one tensor, a walk over N broadcast operands, a reduction over a set of axes.
//
// Large loops are cut into pieces of a fixed number of elements and each output element is
// computed by one thread from start to end, so the values never depend on the thread count.
#include <Eigen/Core>  // Eigen::half, Eigen::bfloat16: Cast to FLOAT16/BFLOAT16 rounds
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <type_traits>

#include "io/tensor_codec.h"
#include "parallel.h"
#include "signal/executor/ops.h"

namespace reinit::exec {
namespace {

constexpr int64_t kChunk = int64_t{1} << 16;  // elements per parallel piece

// Runs body(begin, end) over [0, n) in pieces of `chunk`, on the pool when there are several.
template <typename Body>
void ForChunks(int64_t n, int64_t chunk, const Body& body) {
  const int64_t pieces = (n + chunk - 1) / chunk;
  if (pieces <= 1) {
    if (n > 0) body(int64_t{0}, n);
    return;
  }
  ParallelFor(static_cast<size_t>(pieces), [&](size_t p) {
    const int64_t begin = static_cast<int64_t>(p) * chunk;
    body(begin, std::min(n, begin + chunk));
  });
}

// ---- Types -------------------------------------------------------------------------------------

// Sets of accepted input types.
constexpr unsigned kF = 1, kI = 2, kB = 4;
unsigned Bit(DType type) { return 1u << static_cast<unsigned>(type); }

std::string TypeList(unsigned types) {
  std::string s;
  for (DType t : {DType::kFloat, DType::kInt64, DType::kBool}) {
    if (types & Bit(t)) s += std::string(s.empty() ? "" : " or ") + DTypeName(t);
  }
  return s;
}

// Input k, which must be present and of one of `types`.
StatusOr<const Tensor*> In(const OpContext& ctx, int k, unsigned types) {
  if (!ctx.has_input(k)) return ctx.Error("input " + std::to_string(k) + " is missing");
  const Tensor& t = ctx.input(k);
  if (!(types & Bit(t.type))) {
    return ctx.Error("input " + std::to_string(k) + " '" + ctx.node().input(k) + "' is " +
                     DTypeName(t.type) + "; " + ctx.node().op_type() + " takes " + TypeList(types));
  }
  return &t;
}

Status SameType(const OpContext& ctx, const Tensor& a, const Tensor& b) {
  if (a.type == b.type) return Status::Ok();
  return ctx.Error(std::string("inputs of different types: ") + DTypeName(a.type) + " and " +
                   DTypeName(b.type));
}

// A tensor's values as T: float for kFloat, int64 for kInt64 and kBool.
template <typename T>
const std::vector<T>& Values(const Tensor& t) {
  if constexpr (std::is_same_v<T, float>) {
    return t.f;
  } else {
    return t.i;
  }
}
template <typename T>
std::vector<T>& Values(Tensor& t) {
  if constexpr (std::is_same_v<T, float>) {
    return t.f;
  } else {
    return t.i;
  }
}

Tensor Empty(DType type, std::vector<int64_t> shape) {
  switch (type) {
    case DType::kFloat:
      return Tensor::Float(std::move(shape));
    case DType::kInt64:
      return Tensor::Int64(std::move(shape));
    case DType::kBool:
      break;
  }
  return Tensor::Bool(std::move(shape));
}

// fn(T{}) with T the element type a tensor of `type` stores: float, or int64 for int64/bool.
template <typename Fn>
auto Visit(DType type, const Fn& fn) {
  return type == DType::kFloat ? fn(float{}) : fn(int64_t{});
}

// ---- Drivers -----------------------------------------------------------------------------------

// out[k] = fn(x[k]); the output has x's type and shape.
template <typename T, typename Fn>
Tensor MapValues(const Tensor& x, const Fn& fn) {
  Tensor out = Empty(x.type, x.shape);
  const T* in = Values<T>(x).data();
  T* o = Values<T>(out).data();
  ForChunks(x.size(), kChunk, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) o[k] = static_cast<T>(fn(in[k]));
  });
  return out;
}

// A unary op on float input 0.
template <typename Fn>
Status FloatUnary(OpContext& ctx, const Fn& fn) {
  auto x = In(ctx, 0, kF);
  if (!x.ok()) return x.status();
  ctx.output(0) = MapValues<float>(**x, fn);
  return Status::Ok();
}

// A unary op on float or int64 input 0; fn is generic.
template <typename Fn>
Status NumericUnary(OpContext& ctx, const Fn& fn) {
  auto x = In(ctx, 0, kF | kI);
  if (!x.ok()) return x.status();
  ctx.output(0) = (*x)->is_float() ? MapValues<float>(**x, fn) : MapValues<int64_t>(**x, fn);
  return Status::Ok();
}

// Element strides of an operand of `shape` along the axes of `out` it broadcasts to
// (right-aligned; 0 where the operand repeats).
std::vector<int64_t> StridesIn(const std::vector<int64_t>& shape, const std::vector<int64_t>& out) {
  std::vector<int64_t> stride(out.size(), 0);
  const size_t offset = out.size() - shape.size();
  int64_t s = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    stride[k + offset] = shape[k] == 1 ? 0 : s;
    s *= shape[k];
  }
  return stride;
}

// Calls visit(n, at) for every element n of `out` (row-major), where at[j] is the element of
// operand j that broadcasting maps to n. Every operand's shape must broadcast to `out`.
template <size_t N, typename Visit>
void Broadcast(const std::array<const std::vector<int64_t>*, N>& shapes,
               const std::vector<int64_t>& out, const Visit& visit) {
  const int64_t n = ShapeSize(out);
  // Operands of the output's shape or of one element: no index arithmetic.
  bool flat = true;
  std::array<int64_t, N> step{};
  for (size_t j = 0; j < N; ++j) {
    step[j] = *shapes[j] == out ? 1 : 0;
    flat = flat && (step[j] == 1 || ShapeSize(*shapes[j]) == 1);
  }
  if (flat) {
    ForChunks(n, kChunk, [&](int64_t b, int64_t e) {
      std::array<int64_t, N> at{};
      for (int64_t k = b; k < e; ++k) {
        for (size_t j = 0; j < N; ++j) at[j] = k * step[j];
        visit(k, at);
      }
    });
    return;
  }
  std::array<std::vector<int64_t>, N> stride;
  for (size_t j = 0; j < N; ++j) stride[j] = StridesIn(*shapes[j], out);
  const size_t rank = out.size(), last = rank - 1;  // rank >= 1: a scalar output is flat
  ForChunks(n, kChunk, [&](int64_t b, int64_t e) {
    // The multi-index of element b; then runs along the last axis, and an odometer between.
    std::vector<int64_t> pos(rank);
    std::array<int64_t, N> at{};
    int64_t rest = b;
    for (size_t k = rank; k-- > 0;) {
      pos[k] = rest % out[k];
      rest /= out[k];
      for (size_t j = 0; j < N; ++j) at[j] += pos[k] * stride[j][k];
    }
    for (int64_t m = b; m < e;) {
      const int64_t run = std::min(e - m, out[last] - pos[last]);
      std::array<int64_t, N> here = at;
      for (int64_t i = 0; i < run; ++i) {
        visit(m + i, here);
        for (size_t j = 0; j < N; ++j) here[j] += stride[j][last];
      }
      m += run;
      pos[last] += run;
      for (size_t j = 0; j < N; ++j) at[j] += run * stride[j][last];
      for (size_t k = last; pos[k] == out[k] && k > 0; --k) {
        for (size_t j = 0; j < N; ++j) at[j] += stride[j][k - 1] - stride[j][k] * out[k];
        pos[k] = 0;
        ++pos[k - 1];
      }
    }
  });
}

// out[n] = fn(a[.], b[.]) over out's shape, which a and b broadcast to.
template <typename TA, typename TB, typename TO, typename Fn>
void BinaryInto(const Tensor& a, const Tensor& b, Tensor* out, const Fn& fn) {
  const TA* pa = Values<TA>(a).data();
  const TB* pb = Values<TB>(b).data();
  TO* po = Values<TO>(*out).data();
  Broadcast<2>({&a.shape, &b.shape}, out->shape, [&](int64_t n, const std::array<int64_t, 2>& at) {
    po[n] = static_cast<TO>(fn(pa[at[0]], pb[at[1]]));
  });
}

// The output shape of A op B. Numpy broadcasting; before opset 7, `broadcast = 1` broadcasts B
// to A with B's dims aligned from A's `axis` (default: B's last dim with A's), for which `b` is
// replaced by a copy with trailing 1s.
StatusOr<std::vector<int64_t>> BinaryShape(const OpContext& ctx, const Tensor& a, const Tensor*& b,
                                           Tensor* legacy_b) {
  if (ctx.opset() < 7 && ctx.Attr("broadcast", int64_t{0}) != 0 && ctx.FindAttr("axis")) {
    auto axis = NormalizeAxis(ctx, ctx.Attr("axis", int64_t{0}), a.rank());
    if (!axis.ok()) return axis.status();
    if (*axis + b->rank() > a.rank()) {
      return ctx.Error("B " + ShapeString(b->shape) + " does not fit A " + ShapeString(a.shape) +
                       " from axis " + std::to_string(*axis));
    }
    *legacy_b = *b;
    legacy_b->shape.resize(static_cast<size_t>(a.rank() - *axis), 1);
    b = legacy_b;
  }
  auto shape = BroadcastShape(a.shape, b->shape);
  if (!shape.ok()) return ctx.Error(shape.status().message());
  return shape;
}

// A op B for A and B of one type among `types`, broadcast together: Add, Sub, Mul, Div (the
// result has the inputs' type) and, with kCompare, Equal, Greater, Less (the result is bool).
template <bool kCompare, typename Fn>
Status Binary(OpContext& ctx, unsigned types, const Fn& fn) {
  auto a = In(ctx, 0, types);
  if (!a.ok()) return a.status();
  auto b = In(ctx, 1, types);
  if (!b.ok()) return b.status();
  REINIT_RETURN_IF_ERROR(SameType(ctx, **a, **b));
  Tensor legacy_b;
  auto shape = BinaryShape(ctx, **a, *b, &legacy_b);
  if (!shape.ok()) return shape.status();
  Tensor out = kCompare ? Tensor::Bool(*shape) : Empty((*a)->type, *shape);
  Visit((*a)->type, [&](auto t) {
    using T = decltype(t);
    BinaryInto<T, T, std::conditional_t<kCompare, int64_t, T>>(**a, **b, &out, fn);
    return 0;
  });
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

// Sum, Mean, Min, Max: one or more inputs of one type, all broadcast together; folded left to
// right, so each element combines the inputs in their order.
template <typename Fn>
Status Variadic(OpContext& ctx, unsigned types, const Fn& fn, bool mean = false) {
  if (ctx.input_count() == 0) return ctx.Error("needs at least one input");
  auto first = In(ctx, 0, types);
  if (!first.ok()) return first.status();
  Tensor acc = **first;
  for (int k = 1; k < ctx.input_count(); ++k) {
    auto in = In(ctx, k, types);
    if (!in.ok()) return in.status();
    REINIT_RETURN_IF_ERROR(SameType(ctx, acc, **in));
    auto shape = BroadcastShape(acc.shape, (*in)->shape);
    if (!shape.ok()) return ctx.Error(shape.status().message());
    Tensor next = Empty(acc.type, *shape);
    Visit(acc.type, [&](auto t) {
      using T = decltype(t);
      BinaryInto<T, T, T>(acc, **in, &next, fn);
      return 0;
    });
    acc = std::move(next);
  }
  if (mean) {
    const float count = static_cast<float>(ctx.input_count());
    for (float& v : acc.f) v /= count;
  }
  ctx.output(0) = std::move(acc);
  return Status::Ok();
}

// -x without overflow trapping for the most negative int64 (it wraps, like the hardware).
int64_t WrappingNeg(int64_t x) { return static_cast<int64_t>(0 - static_cast<uint64_t>(x)); }

Status Div(OpContext& ctx) {
  if (ctx.has_input(1) && ctx.input(1).type == DType::kInt64) {
    const auto& b = ctx.input(1).i;
    if (std::find(b.begin(), b.end(), 0) != b.end()) {
      return ctx.Error("integer division by zero: input 1 '" + ctx.node().input(1) + "' holds a 0");
    }
  }
  return Binary<false>(ctx, kF | kI, [](auto a, auto b) {
    if constexpr (std::is_integral_v<decltype(a)>) {
      return b == -1 ? WrappingNeg(a) : a / b;  // C division: truncates toward zero
    } else {
      return a / b;
    }
  });
}

// X^Y, X and Y each float or int64 (they may differ); the result has X's type. Computed in
// double, so an int64 result is the truncated real power.
Status Pow(OpContext& ctx) {
  auto x = In(ctx, 0, kF | kI);
  if (!x.ok()) return x.status();
  auto y = In(ctx, 1, kF | kI);
  if (!y.ok()) return y.status();
  Tensor legacy_y;
  auto shape = BinaryShape(ctx, **x, *y, &legacy_y);
  if (!shape.ok()) return shape.status();
  Tensor out = Empty((*x)->type, *shape);
  Visit((*x)->type, [&](auto tx) {
    using TX = decltype(tx);
    return Visit((*y)->type, [&](auto ty) {
      using TY = decltype(ty);
      BinaryInto<TX, TY, TX>(**x, **y, &out, [](TX a, TY b) {
        // a·a is exact before rounding, as the double power is, and common (x² in norms).
        return b == 2 ? static_cast<TX>(a * a)
                      : static_cast<TX>(std::pow(static_cast<double>(a), static_cast<double>(b)));
      });
      return 0;
    });
  });
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

// Where(condition, X, Y): X where the condition holds, else Y; all three broadcast together.
Status Where(OpContext& ctx) {
  auto c = In(ctx, 0, kB);
  if (!c.ok()) return c.status();
  auto x = In(ctx, 1, kF | kI | kB);
  if (!x.ok()) return x.status();
  auto y = In(ctx, 2, kF | kI | kB);
  if (!y.ok()) return y.status();
  REINIT_RETURN_IF_ERROR(SameType(ctx, **x, **y));
  auto cx = BroadcastShape((*c)->shape, (*x)->shape);
  if (!cx.ok()) return ctx.Error(cx.status().message());
  auto shape = BroadcastShape(*cx, (*y)->shape);
  if (!shape.ok()) return ctx.Error(shape.status().message());
  Tensor out = Empty((*x)->type, *shape);
  Visit(out.type, [&](auto t) {
    using T = decltype(t);
    const int64_t* pc = (*c)->i.data();
    const T* px = Values<T>(**x).data();
    const T* py = Values<T>(**y).data();
    T* po = Values<T>(out).data();
    Broadcast<3>({&(*c)->shape, &(*x)->shape, &(*y)->shape}, out.shape,
                 [&](int64_t n, const std::array<int64_t, 3>& at) {
                   po[n] = pc[at[0]] ? px[at[1]] : py[at[2]];
                 });
    return 0;
  });
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

// PRelu(X, slope): slope·x where x < 0; slope broadcasts to X's shape (unidirectionally).
Status PRelu(OpContext& ctx) {
  auto x = In(ctx, 0, kF | kI);
  if (!x.ok()) return x.status();
  auto s = In(ctx, 1, kF | kI);
  if (!s.ok()) return s.status();
  REINIT_RETURN_IF_ERROR(SameType(ctx, **x, **s));
  auto shape = BroadcastShape((*x)->shape, (*s)->shape);
  if (!shape.ok() || *shape != (*x)->shape) {
    return ctx.Error("slope " + ShapeString((*s)->shape) + " does not broadcast to X " +
                     ShapeString((*x)->shape));
  }
  Tensor out = Empty((*x)->type, (*x)->shape);
  Visit(out.type, [&](auto t) {
    using T = decltype(t);
    BinaryInto<T, T, T>(**x, **s, &out, [](T v, T slope) { return v < 0 ? slope * v : v; });
    return 0;
  });
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

// Clip: from opset 11 the bounds are optional scalar inputs of X's type; before, float
// attributes. An absent bound does not limit. min > max gives max everywhere.
Status Clip(OpContext& ctx) {
  if (ctx.opset() < 11) {
    const float lo = ctx.Attr("min", std::numeric_limits<float>::lowest());
    const float hi = ctx.Attr("max", std::numeric_limits<float>::max());
    return FloatUnary(ctx, [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
  }
  auto x = In(ctx, 0, kF | kI);
  if (!x.ok()) return x.status();
  return Visit((*x)->type, [&](auto t) -> Status {
    using T = decltype(t);
    std::array<T, 2> bound = {std::numeric_limits<T>::lowest(), std::numeric_limits<T>::max()};
    for (int k : {1, 2}) {
      if (!ctx.has_input(k)) continue;
      auto b = In(ctx, k, Bit((*x)->type));
      if (!b.ok()) return b.status();
      if ((*b)->size() != 1) {
        return ctx.Error(std::string(k == 1 ? "min" : "max") + " must be a scalar, is " +
                         ShapeString((*b)->shape));
      }
      bound[k - 1] = Values<T>(**b)[0];
    }
    ctx.output(0) = MapValues<T>(
        **x, [lo = bound[0], hi = bound[1]](T v) { return std::min(std::max(v, lo), hi); });
    return Status::Ok();
  });
}

// `in` converted to the ONNX element type `to`: float types stay float32 (rounded to
// float16/bfloat16 precision for those), integer types become int64 (truncated toward zero and
// wrapped to the type's width), BOOL is nonzero.
StatusOr<Tensor> CastToOnnxType(const OpContext& ctx, const Tensor& in, int64_t to) {
  using P = onnx::TensorProto;
  // Narrows an int64 to T's width and back (two's complement wrap-around).
  auto wrap = [](Tensor t, auto narrow) {
    for (int64_t& v : t.i) v = static_cast<int64_t>(static_cast<decltype(narrow)>(v));
    return t;
  };
  switch (to) {
    case P::FLOAT:
    case P::DOUBLE:
      return CastTo(in, DType::kFloat);
    case P::FLOAT16: {
      Tensor t = CastTo(in, DType::kFloat);
      for (float& v : t.f) v = static_cast<float>(Eigen::half(v));
      return t;
    }
    case P::BFLOAT16: {
      Tensor t = CastTo(in, DType::kFloat);
      for (float& v : t.f) v = static_cast<float>(Eigen::bfloat16(v));
      return t;
    }
    case P::BOOL:
      return CastTo(in, DType::kBool);
    case P::INT64:
    case P::UINT64:
      return CastTo(in, DType::kInt64);
    case P::INT32:
      return wrap(CastTo(in, DType::kInt64), int32_t{});
    case P::UINT32:
      return wrap(CastTo(in, DType::kInt64), uint32_t{});
    case P::INT16:
      return wrap(CastTo(in, DType::kInt64), int16_t{});
    case P::UINT16:
      return wrap(CastTo(in, DType::kInt64), uint16_t{});
    case P::INT8:
      return wrap(CastTo(in, DType::kInt64), int8_t{});
    case P::UINT8:
      return wrap(CastTo(in, DType::kInt64), uint8_t{});
    default:
      return ctx.Error("cast to " + DataTypeName(static_cast<int32_t>(to)) +
                       " is not supported by the reference executor");
  }
}

Status Cast(OpContext& ctx) {
  auto x = In(ctx, 0, kF | kI | kB);
  if (!x.ok()) return x.status();
  const auto* to = ctx.FindAttr("to");
  if (!to) return ctx.Error("attribute 'to' is missing");
  auto out = CastToOnnxType(ctx, **x, to->i());
  if (!out.ok()) return out.status();
  ctx.output(0) = std::move(*out);
  return Status::Ok();
}

// CastLike(input, target_type): input cast to target_type's element type.
Status CastLike(OpContext& ctx) {
  auto x = In(ctx, 0, kF | kI | kB);
  if (!x.ok()) return x.status();
  auto like = In(ctx, 1, kF | kI | kB);
  if (!like.ok()) return like.status();
  ctx.output(0) = CastTo(**x, (*like)->type);
  return Status::Ok();
}

// Softmax / LogSoftmax. From opset 13 each 1-D slice along `axis` (default -1) is normalized;
// before, the input is viewed as 2-D [prod(dims < axis), prod(dims >= axis)] (axis default 1)
// and each row is. Shifted by the slice's max; sums in double.
template <bool kLog>
Status Softmax(OpContext& ctx) {
  auto x_or = In(ctx, 0, kF);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  const bool legacy = ctx.opset() < 13;
  auto axis = NormalizeAxis(ctx, ctx.Attr("axis", int64_t{legacy ? 1 : -1}), x.rank());
  if (!axis.ok()) return axis.status();
  if (x.rank() == 0) return ctx.Error("input is a scalar; needs rank >= 1");
  const auto begin = x.shape.begin();
  const int64_t outer = ShapeSize({begin, begin + *axis});
  const int64_t len = legacy ? ShapeSize({begin + *axis, x.shape.end()}) : x.shape[*axis];
  const int64_t inner = legacy ? 1 : ShapeSize({begin + *axis + 1, x.shape.end()});
  Tensor out = Tensor::Float(x.shape);
  const float* in = x.f.data();
  float* o = out.f.data();
  ForChunks(outer * inner, std::max<int64_t>(1, kChunk / std::max<int64_t>(len, 1)),
            [&](int64_t b, int64_t e) {
              for (int64_t g = b; g < e; ++g) {
                const int64_t base = g / inner * len * inner + g % inner;
                float top = -std::numeric_limits<float>::infinity();
                for (int64_t j = 0; j < len; ++j) top = std::max(top, in[base + j * inner]);
                double sum = 0;
                for (int64_t j = 0; j < len; ++j) sum += std::exp(in[base + j * inner] - top);
                const float log_sum = static_cast<float>(std::log(sum));
                const float inv = static_cast<float>(1 / sum);
                for (int64_t j = 0; j < len; ++j) {
                  const float shifted = in[base + j * inner] - top;
                  o[base + j * inner] = kLog ? shifted - log_sum : std::exp(shifted) * inv;
                }
              }
            });
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

// The row-major list of offsets sum(index[k] · stride[k]) over the index space `dims`.
std::vector<int64_t> Offsets(const std::vector<int64_t>& dims, const std::vector<int64_t>& stride) {
  std::vector<int64_t> off(static_cast<size_t>(ShapeSize(dims)));
  std::vector<int64_t> pos(dims.size(), 0);
  int64_t at = 0;
  for (int64_t& v : off) {
    v = at;
    for (size_t k = dims.size(); k-- > 0;) {
      if (++pos[k] < dims[k]) {
        at += stride[k];
        break;
      }
      at -= stride[k] * (dims[k] - 1);
      pos[k] = 0;
    }
  }
  return off;
}

enum class Reduce { kSum, kMean, kMax, kMin, kSumSquare };

// Reduce*: over `axes` (empty or absent = all, unless noop_with_empty_axes), keepdims default 1.
// axes is an attribute up to opset 17, an optional int64 input for ReduceSum from opset 13 (and
// for the others from 18). Float sums accumulate in double; an empty reduction gives the
// identity (0, -inf, +inf; NaN for a mean).
template <Reduce kKind>
Status Reduction(OpContext& ctx) {
  auto x_or = In(ctx, 0, kF | kI);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  const bool axes_input = ctx.opset() >= (kKind == Reduce::kSum ? 13 : 18);
  if (axes_input && ctx.FindAttr("axes")) {
    return ctx.Error("axes is an input from opset " +
                     std::to_string(kKind == Reduce::kSum ? 13 : 18) + ", not an attribute");
  }
  if (!axes_input && ctx.input_count() > 1) {
    return ctx.Error("axes is an attribute before opset " +
                     std::to_string(kKind == Reduce::kSum ? 13 : 18) + ", not an input");
  }
  std::vector<int64_t> axes;
  if (!axes_input) {
    axes = ctx.Attr("axes", std::vector<int64_t>{});
  } else if (ctx.has_input(1)) {
    auto a = ctx.Ints(1);
    if (!a.ok()) return a.status();
    axes = std::move(*a);
  }
  if (axes.empty() && axes_input && ctx.Attr("noop_with_empty_axes", int64_t{0}) != 0) {
    ctx.output(0) = x;
    return Status::Ok();
  }
  const bool keepdims = ctx.Attr("keepdims", int64_t{1}) != 0;
  std::vector<bool> reduced(x.shape.size(), axes.empty());
  for (int64_t a : axes) {
    auto axis = NormalizeAxis(ctx, a, x.rank());
    if (!axis.ok()) return axis.status();
    if (x.rank() == 0) break;  // a scalar reduces to itself
    if (reduced[*axis]) return ctx.Error("axis " + std::to_string(a) + " is listed twice");
    reduced[*axis] = true;
  }
  // The kept and the reduced axes, each with its dims and element strides in x.
  std::vector<int64_t> out_shape, kept_dims, kept_stride, red_dims, red_stride;
  std::vector<int64_t> x_stride(x.shape.size());
  for (size_t k = x.shape.size(), s = 1; k-- > 0; s *= static_cast<size_t>(x.shape[k])) {
    x_stride[k] = static_cast<int64_t>(s);
  }
  for (size_t k = 0; k < x.shape.size(); ++k) {
    (reduced[k] ? red_dims : kept_dims).push_back(x.shape[k]);
    (reduced[k] ? red_stride : kept_stride).push_back(x_stride[k]);
    if (!reduced[k] || keepdims) out_shape.push_back(reduced[k] ? 1 : x.shape[k]);
  }
  const std::vector<int64_t> base = Offsets(kept_dims, kept_stride);
  const std::vector<int64_t> part = Offsets(red_dims, red_stride);
  const int64_t count = static_cast<int64_t>(part.size());
  if (kKind == Reduce::kMean && count == 0 && !x.is_float()) {
    return ctx.Error("mean of no elements (a reduced axis has size 0)");
  }
  Tensor out = Empty(x.type, out_shape);
  Visit(x.type, [&](auto t) {
    using T = decltype(t);
    using Acc = std::conditional_t<std::is_same_v<T, float>, double, int64_t>;
    const T* in = Values<T>(x).data();
    T* o = Values<T>(out).data();
    ForChunks(
        static_cast<int64_t>(base.size()),
        std::max<int64_t>(1, kChunk / std::max<int64_t>(count, 1)), [&](int64_t b, int64_t e) {
          for (int64_t m = b; m < e; ++m) {
            const T* p = in + base[m];
            Acc acc = 0;
            if constexpr (kKind == Reduce::kMax) {
              acc = std::numeric_limits<Acc>::has_infinity ? -std::numeric_limits<Acc>::infinity()
                                                           : std::numeric_limits<Acc>::lowest();
            } else if constexpr (kKind == Reduce::kMin) {
              acc = std::numeric_limits<Acc>::has_infinity ? std::numeric_limits<Acc>::infinity()
                                                           : std::numeric_limits<Acc>::max();
            }
            for (int64_t r : part) {
              const Acc v = p[r];
              if constexpr (kKind == Reduce::kMax) {
                acc = std::max(acc, v);
              } else if constexpr (kKind == Reduce::kMin) {
                acc = std::min(acc, v);
              } else if constexpr (kKind == Reduce::kSumSquare) {
                acc += v * v;
              } else {
                acc += v;
              }
            }
            if constexpr (kKind == Reduce::kMean) acc /= static_cast<Acc>(count);
            o[m] = static_cast<T>(acc);
          }
        });
    return 0;
  });
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

// ArgMax / ArgMin along `axis` (default 0), keepdims default 1; ties go to the first index, or
// the last with select_last_index = 1. The result is int64.
template <bool kMax>
Status ArgExtreme(OpContext& ctx) {
  auto x_or = In(ctx, 0, kF | kI);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  if (x.rank() == 0) return ctx.Error("input is a scalar; needs rank >= 1");
  auto axis = NormalizeAxis(ctx, ctx.Attr("axis", int64_t{0}), x.rank());
  if (!axis.ok()) return axis.status();
  const int64_t len = x.shape[*axis];
  if (len == 0) return ctx.Error("axis " + std::to_string(*axis) + " has size 0");
  const bool last = ctx.Attr("select_last_index", int64_t{0}) != 0;
  std::vector<int64_t> out_shape = x.shape;
  if (ctx.Attr("keepdims", int64_t{1}) != 0) {
    out_shape[*axis] = 1;
  } else {
    out_shape.erase(out_shape.begin() + *axis);
  }
  const int64_t inner = ShapeSize({x.shape.begin() + *axis + 1, x.shape.end()});
  Tensor out = Tensor::Int64(out_shape);
  Visit(x.type, [&](auto t) {
    using T = decltype(t);
    const T* in = Values<T>(x).data();
    ForChunks(out.size(), std::max<int64_t>(1, kChunk / len), [&](int64_t b, int64_t e) {
      for (int64_t g = b; g < e; ++g) {
        const T* p = in + g / inner * len * inner + g % inner;
        int64_t best = 0;
        for (int64_t j = 1; j < len; ++j) {
          const T v = p[j * inner], top = p[best * inner];
          if (kMax ? (v > top || (last && v == top)) : (v < top || (last && v == top))) best = j;
        }
        out.i[g] = best;
      }
    });
    return 0;
  });
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

float Softplus(float x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

}  // namespace

void RegisterElementwiseOps(OpTable* table) {
  OpTable& t = *table;
  // Broadcasting binary ops.
  t["Add"] = [](OpContext& c) {
    return Binary<false>(c, kF | kI, [](auto a, auto b) { return a + b; });
  };
  t["Sub"] = [](OpContext& c) {
    return Binary<false>(c, kF | kI, [](auto a, auto b) { return a - b; });
  };
  t["Mul"] = [](OpContext& c) {
    return Binary<false>(c, kF | kI, [](auto a, auto b) { return a * b; });
  };
  t["Div"] = Div;
  t["Pow"] = Pow;
  t["Equal"] = [](OpContext& c) {
    return Binary<true>(c, kF | kI | kB, [](auto a, auto b) { return a == b; });
  };
  t["Greater"] = [](OpContext& c) {
    return Binary<true>(c, kF | kI, [](auto a, auto b) { return a > b; });
  };
  t["Less"] = [](OpContext& c) {
    return Binary<true>(c, kF | kI, [](auto a, auto b) { return a < b; });
  };
  t["Sum"] = [](OpContext& c) {
    return Variadic(c, kF | kI, [](auto a, auto b) { return a + b; });
  };
  t["Mean"] = [](OpContext& c) {
    return Variadic(
        c, kF, [](auto a, auto b) { return a + b; }, true);
  };
  t["Max"] = [](OpContext& c) {
    return Variadic(c, kF | kI, [](auto a, auto b) { return std::max(a, b); });
  };
  t["Min"] = [](OpContext& c) {
    return Variadic(c, kF | kI, [](auto a, auto b) { return std::min(a, b); });
  };
  t["Where"] = Where;
  t["PRelu"] = PRelu;

  // Unary maths.
  t["Neg"] = [](OpContext& c) { return NumericUnary(c, [](auto x) { return -x; }); };
  t["Abs"] = [](OpContext& c) { return NumericUnary(c, [](auto x) { return std::abs(x); }); };
  t["Exp"] = [](OpContext& c) { return FloatUnary(c, [](float x) { return std::exp(x); }); };
  t["Log"] = [](OpContext& c) { return FloatUnary(c, [](float x) { return std::log(x); }); };
  t["Sqrt"] = [](OpContext& c) { return FloatUnary(c, [](float x) { return std::sqrt(x); }); };
  t["Reciprocal"] = [](OpContext& c) { return FloatUnary(c, [](float x) { return 1 / x; }); };
  t["Erf"] = [](OpContext& c) { return FloatUnary(c, [](float x) { return std::erf(x); }); };
  t["Floor"] = [](OpContext& c) { return FloatUnary(c, [](float x) { return std::floor(x); }); };
  t["Ceil"] = [](OpContext& c) { return FloatUnary(c, [](float x) { return std::ceil(x); }); };
  t["Not"] = [](OpContext& c) -> Status {
    auto x = In(c, 0, kB);
    if (!x.ok()) return x.status();
    c.output(0) = MapValues<int64_t>(**x, [](int64_t v) { return v == 0; });
    return Status::Ok();
  };

  // Activations, with the spec's attribute defaults.
  t["Relu"] = [](OpContext& c) {
    return NumericUnary(c, [](auto x) { return x < 0 ? decltype(x){0} : x; });
  };
  t["LeakyRelu"] = [](OpContext& c) {
    const float alpha = c.Attr("alpha", 0.01f);
    return FloatUnary(c, [alpha](float x) { return x < 0 ? alpha * x : x; });
  };
  t["Elu"] = [](OpContext& c) {
    const float alpha = c.Attr("alpha", 1.0f);
    return FloatUnary(c, [alpha](float x) { return x < 0 ? alpha * std::expm1(x) : x; });
  };
  t["Selu"] = [](OpContext& c) {
    const float alpha = c.Attr("alpha", 1.67326319217681884765625f);
    const float gamma = c.Attr("gamma", 1.05070102214813232421875f);
    return FloatUnary(
        c, [alpha, gamma](float x) { return x > 0 ? gamma * x : gamma * alpha * std::expm1(x); });
  };
  t["Celu"] = [](OpContext& c) {
    const float alpha = c.Attr("alpha", 1.0f);
    return FloatUnary(c, [alpha](float x) {
      return std::max(0.0f, x) + std::min(0.0f, alpha * std::expm1(x / alpha));
    });
  };
  t["Sigmoid"] = [](OpContext& c) {
    return FloatUnary(c, [](float x) {
      // exp of a non-positive number only: no overflow.
      const float e = std::exp(-std::fabs(x));
      return x >= 0 ? 1 / (1 + e) : e / (1 + e);
    });
  };
  t["HardSigmoid"] = [](OpContext& c) {
    const float alpha = c.Attr("alpha", 0.2f), beta = c.Attr("beta", 0.5f);
    return FloatUnary(
        c, [alpha, beta](float x) { return std::max(0.0f, std::min(1.0f, alpha * x + beta)); });
  };
  t["HardSwish"] = [](OpContext& c) {
    return FloatUnary(c, [](float x) { return x * std::max(0.0f, std::min(1.0f, x / 6 + 0.5f)); });
  };
  t["Tanh"] = [](OpContext& c) { return FloatUnary(c, [](float x) { return std::tanh(x); }); };
  t["Softplus"] = [](OpContext& c) { return FloatUnary(c, [](float x) { return Softplus(x); }); };
  t["Softsign"] = [](OpContext& c) {
    return FloatUnary(c, [](float x) { return x / (1 + std::fabs(x)); });
  };
  t["ThresholdedRelu"] = [](OpContext& c) {
    const float alpha = c.Attr("alpha", 1.0f);
    return FloatUnary(c, [alpha](float x) { return x > alpha ? x : 0.0f; });
  };
  t["Mish"] = [](OpContext& c) {
    return FloatUnary(c, [](float x) { return x * std::tanh(Softplus(x)); });
  };
  t["Gelu"] = [](OpContext& c) -> Status {
    const std::string approximate = c.Attr("approximate", std::string("none"));
    if (approximate == "none") {
      return FloatUnary(
          c, [](float x) { return 0.5f * x * (1 + std::erf(x / std::numbers::sqrt2_v<float>)); });
    }
    if (approximate == "tanh") {
      return FloatUnary(c, [](float x) {
        constexpr float k = std::numbers::sqrt2_v<float> * std::numbers::inv_sqrtpi_v<float>;
        return 0.5f * x * (1 + std::tanh(k * (x + 0.044715f * x * x * x)));
      });
    }
    return c.Error("approximate = '" + approximate + "'; expected 'none' or 'tanh'");
  };
  t["Clip"] = Clip;

  t["Cast"] = Cast;
  t["CastLike"] = CastLike;
  t["Softmax"] = Softmax<false>;
  t["LogSoftmax"] = Softmax<true>;

  t["ReduceSum"] = Reduction<Reduce::kSum>;
  t["ReduceMean"] = Reduction<Reduce::kMean>;
  t["ReduceMax"] = Reduction<Reduce::kMax>;
  t["ReduceMin"] = Reduction<Reduce::kMin>;
  t["ReduceSumSquare"] = Reduction<Reduce::kSumSquare>;
  t["ArgMax"] = ArgExtreme<true>;
  t["ArgMin"] = ArgExtreme<false>;
}

}  // namespace reinit::exec

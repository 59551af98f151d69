// The shape ops: Reshape, Flatten, Transpose, Concat, Split, Slice, Squeeze, Unsqueeze,
// Gather, Shape, Size, Expand, Tile, ConstantOfShape, Pad, Resize, Upsample, DepthToSpace,
// SpaceToDepth. They move values without computing on them (Resize's linear mode aside), so
// they work on float, int64 and bool tensors alike, copying whichever buffer is in use.
//
// Most of them are one gather: each output axis has a table giving, for each position along
// it, the offset it contributes in the input (or -1: "outside", filled with a constant), and
// an output element reads the input at the sum of its axes' offsets. Transpose, Slice, Expand,
// Tile, Pad, nearest Resize and DepthToSpace differ only in their tables.
//
// An output shape comes from the model's data (a shape input, repeats, pads, scales), so it is
// checked before anything is allocated: no negative dims, at most kMaxShapeElements elements.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "parallel.h"
#include "signal/executor/executor.h"
#include "signal/executor/ops.h"

namespace reinit::exec {
namespace {

// The most elements a shape op produces (8 GiB of float32); larger shapes are refused rather
// than allocated.
constexpr int64_t kMaxShapeElements = int64_t{1} << 31;

std::string ShapeStr(int64_t v) { return std::to_string(v); }

// The element count of an output shape the model's data asked for; an error when a dim is
// negative or the product of the nonzero dims exceeds kMaxShapeElements (so that no product of
// the shape's dims can overflow later, even where a zero dim makes the tensor empty).
StatusOr<int64_t> CheckedSize(const OpContext& ctx, const std::vector<int64_t>& shape,
                              const std::string& what) {
  int64_t nonzero = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) return ctx.Error(what + " " + ShapeString(shape) + " has a negative dimension");
    if (d == 0) {
      empty = true;
      continue;
    }
    if (__builtin_mul_overflow(nonzero, d, &nonzero) || nonzero > kMaxShapeElements) {
      return ctx.Error(what + " " + ShapeString(shape) + " would have more than 2^31 elements");
    }
  }
  return empty ? 0 : nonzero;
}

// A present input whose shape passes CheckedSize and whose buffer holds as many values as the
// shape says (feeds come from callers); an error naming it otherwise.
StatusOr<const Tensor*> Data(const OpContext& ctx, int k) {
  if (!ctx.has_input(k)) return ctx.Error("input " + ShapeStr(k) + " is missing");
  const Tensor& t = ctx.input(k);
  auto n = CheckedSize(ctx, t.shape, "input " + ShapeStr(k) + " of shape");
  if (!n.ok()) return n.status();
  const size_t held = t.is_float() ? t.f.size() : t.i.size();
  if (static_cast<int64_t>(held) != *n) {
    return ctx.Error("input " + ShapeStr(k) + " holds " + ShapeStr(static_cast<int64_t>(held)) +
                     " values for shape " + ShapeString(t.shape));
  }
  return &t;
}

// Row-major strides of `shape`.
std::vector<int64_t> Strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t k = shape.size(); k-- > 1;) s[k - 1] = s[k] * shape[k];
  return s;
}

// A tensor of `like`'s type and `shape`, its values zero.
Tensor Like(const Tensor& like, std::vector<int64_t> shape) {
  Tensor t;
  t.type = like.type;
  t.shape = std::move(shape);
  const size_t n = static_cast<size_t>(ShapeSize(t.shape));
  if (t.is_float()) {
    t.f.assign(n, 0.0f);
  } else {
    t.i.assign(n, 0);
  }
  return t;
}

// `in`'s values under another shape of the same size.
Tensor Reshaped(const Tensor& in, std::vector<int64_t> shape) {
  Tensor t = in;
  t.shape = std::move(shape);
  return t;
}

// Calls body(&Tensor::f) or body(&Tensor::i), whichever buffer `t` uses.
template <typename Body>
void WithBuffer(const Tensor& t, Body body) {
  if (t.is_float()) {
    body(&Tensor::f);
  } else {
    body(&Tensor::i);
  }
}

// out[p_0, ..., p_n] = in[offsets[0][p_0] + ... + offsets[n][p_n]], or `fill` where any of
// those offsets is negative. Rows (all axes but the last) are split over the pool.
template <typename T>
void GatherAxesInto(const std::vector<T>& in, std::vector<T>& out,
                    const std::vector<int64_t>& out_shape,
                    const std::vector<std::vector<int64_t>>& offsets, T fill) {
  if (out.empty()) return;
  const size_t rank = out_shape.size();
  if (rank == 0) {
    out[0] = in[0];
    return;
  }
  const int64_t inner = out_shape.back();
  const int64_t rows = static_cast<int64_t>(out.size()) / inner;
  const std::vector<int64_t>& last = offsets.back();
  constexpr int64_t kElementsPerPiece = 1 << 16;
  const int64_t rows_per_piece = std::max<int64_t>(1, kElementsPerPiece / inner);
  const int64_t pieces = (rows + rows_per_piece - 1) / rows_per_piece;
  ParallelFor(static_cast<size_t>(pieces), [&](size_t piece) {
    const int64_t row0 = static_cast<int64_t>(piece) * rows_per_piece;
    const int64_t row1 = std::min(rows, row0 + rows_per_piece);
    std::vector<int64_t> pos(rank - 1);
    for (size_t a = rank - 1, r = static_cast<size_t>(row0); a-- > 0;) {
      pos[a] = static_cast<int64_t>(r % static_cast<size_t>(out_shape[a]));
      r /= static_cast<size_t>(out_shape[a]);
    }
    for (int64_t row = row0; row < row1; ++row) {
      int64_t base = 0;
      bool outside = false;
      for (size_t a = 0; a + 1 < rank; ++a) {
        const int64_t o = offsets[a][pos[a]];
        outside |= o < 0;
        base += o;
      }
      T* dst = out.data() + row * inner;
      if (outside) {
        std::fill(dst, dst + inner, fill);
      } else {
        const T* src = in.data() + base;
        for (int64_t j = 0; j < inner; ++j) dst[j] = last[j] < 0 ? fill : src[last[j]];
      }
      for (size_t a = rank - 1; a-- > 0;) {
        if (++pos[a] < out_shape[a]) break;
        pos[a] = 0;
      }
    }
  });
}

// The gather above on a tensor of any type; `out_shape` must have passed CheckedSize.
Tensor GatherAxes(const Tensor& in, const std::vector<int64_t>& out_shape,
                  const std::vector<std::vector<int64_t>>& offsets, float fill_f = 0.0f,
                  int64_t fill_i = 0) {
  Tensor out = Like(in, out_shape);
  if (in.is_float()) {
    GatherAxesInto(in.f, out.f, out_shape, offsets, fill_f);
  } else {
    GatherAxesInto(in.i, out.i, out_shape, offsets, fill_i);
  }
  return out;
}

// Axes (each in [-rank, rank)) made non-negative; an error for one out of range or repeated.
StatusOr<std::vector<int64_t>> NormalizeAxes(const OpContext& ctx, std::vector<int64_t> axes,
                                             int64_t rank) {
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) {
      return ctx.Error("axis " + ShapeStr(a) + " is out of range for rank " + ShapeStr(rank));
    }
    if (a < 0) a += rank;
    if (seen[a])
      return ctx.Error("axis " + ShapeStr(a) + " is given twice in " + ShapeString(axes));
    seen[a] = true;
  }
  return axes;
}

// ---- Reshape, Flatten, Squeeze, Unsqueeze: the same values under a new shape -------------------

Status Reshape(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  std::vector<int64_t> target;
  if (ctx.opset() < 5) {
    target = ctx.Attr("shape", std::vector<int64_t>{});
  } else {
    auto s = ctx.Ints(1);
    if (!s.ok()) return s.status();
    target = *s;
  }
  const bool allowzero = ctx.Attr("allowzero", int64_t{0}) != 0;
  std::vector<int64_t> shape = target;
  int64_t infer = -1, known = 1;
  for (size_t k = 0; k < target.size(); ++k) {
    const int64_t v = target[k];
    if (v == -1) {
      if (infer >= 0) return ctx.Error("shape " + ShapeString(target) + " has -1 more than once");
      infer = static_cast<int64_t>(k);
      continue;
    }
    if (v < -1) return ctx.Error("shape " + ShapeString(target) + " has a negative dimension");
    if (v == 0 && !allowzero) {
      if (static_cast<int64_t>(k) >= in.rank()) {
        return ctx.Error("shape " + ShapeString(target) + " copies dimension " + ShapeStr(k) +
                         " (0) of an input of rank " + ShapeStr(in.rank()));
      }
      shape[k] = in.shape[k];
    }
    if (__builtin_mul_overflow(known, shape[k], &known)) {
      return ctx.Error("shape " + ShapeString(target) + " overflows");
    }
  }
  if (allowzero && infer >= 0 && std::count(target.begin(), target.end(), 0) > 0) {
    return ctx.Error("shape " + ShapeString(target) + " has both -1 and 0 under allowzero");
  }
  const int64_t n = in.size();
  if (infer >= 0) {
    if (known == 0 || n % known != 0) {
      return ctx.Error("cannot reshape " + ShapeString(in.shape) + " (" + ShapeStr(n) +
                       " elements) to " + ShapeString(target));
    }
    shape[infer] = n / known;
  } else if (known != n) {
    return ctx.Error("cannot reshape " + ShapeString(in.shape) + " (" + ShapeStr(n) +
                     " elements) to " + ShapeString(target) + " (" + ShapeStr(known) + ")");
  }
  ctx.output(0) = Reshaped(in, std::move(shape));
  return Status::Ok();
}

Status Flatten(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  int64_t axis = ctx.Attr("axis", int64_t{1});
  if (axis < -in.rank() || axis > in.rank()) {
    return ctx.Error("axis " + ShapeStr(axis) + " is out of range for rank " + ShapeStr(in.rank()));
  }
  if (axis < 0) axis += in.rank();
  const std::vector<int64_t> outer(in.shape.begin(), in.shape.begin() + axis);
  const std::vector<int64_t> inner(in.shape.begin() + axis, in.shape.end());
  ctx.output(0) = Reshaped(in, {ShapeSize(outer), ShapeSize(inner)});
  return Status::Ok();
}

Status Squeeze(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  std::vector<int64_t> axes;
  if (ctx.opset() >= 13) {
    if (ctx.has_input(1)) {
      auto a = ctx.Ints(1);
      if (!a.ok()) return a.status();
      axes = *a;
    }
  } else {
    axes = ctx.Attr("axes", std::vector<int64_t>{});
  }
  auto norm = NormalizeAxes(ctx, axes, in.rank());
  if (!norm.ok()) return norm.status();
  std::vector<bool> drop(in.shape.size(), false);
  for (int64_t a : *norm) {
    if (in.shape[a] != 1) {
      return ctx.Error("cannot squeeze axis " + ShapeStr(a) + " of size " + ShapeStr(in.shape[a]) +
                       " in " + ShapeString(in.shape));
    }
    drop[a] = true;
  }
  std::vector<int64_t> shape;
  for (size_t a = 0; a < in.shape.size(); ++a) {
    const bool squeezed = norm->empty() ? in.shape[a] == 1 : drop[a];
    if (!squeezed) shape.push_back(in.shape[a]);
  }
  ctx.output(0) = Reshaped(in, std::move(shape));
  return Status::Ok();
}

Status Unsqueeze(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  std::vector<int64_t> axes;
  if (ctx.opset() >= 13) {
    auto a = ctx.Ints(1);
    if (!a.ok()) return a.status();
    axes = *a;
  } else {
    axes = ctx.Attr("axes", std::vector<int64_t>{});
  }
  if (axes.empty()) return ctx.Error("no axes to insert");
  const int64_t rank = in.rank() + static_cast<int64_t>(axes.size());
  auto norm = NormalizeAxes(ctx, axes, rank);
  if (!norm.ok()) return norm.status();
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  std::vector<bool> inserted(static_cast<size_t>(rank), false);
  for (int64_t a : *norm) inserted[a] = true;
  for (size_t a = 0, k = 0; a < shape.size(); ++a) {
    if (!inserted[a]) shape[a] = in.shape[k++];
  }
  ctx.output(0) = Reshaped(in, std::move(shape));
  return Status::Ok();
}

// ---- Transpose, Concat, Split, Slice, Gather ---------------------------------------------------

Status Transpose(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  const int64_t rank = in.rank();
  std::vector<int64_t> perm(static_cast<size_t>(rank));
  for (int64_t a = 0; a < rank; ++a) perm[a] = rank - 1 - a;
  perm = ctx.Attr("perm", perm);
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  bool valid = static_cast<int64_t>(perm.size()) == rank;
  for (size_t a = 0; valid && a < perm.size(); ++a) {
    valid = perm[a] >= 0 && perm[a] < rank && !seen[perm[a]];
    if (valid) seen[perm[a]] = true;
  }
  if (!valid) {
    return ctx.Error("perm " + ShapeString(perm) + " is not a permutation of the " +
                     ShapeStr(rank) + " axes of " + ShapeString(in.shape));
  }
  const std::vector<int64_t> stride = Strides(in.shape);
  std::vector<int64_t> shape(perm.size());
  std::vector<std::vector<int64_t>> offsets(perm.size());
  for (size_t a = 0; a < perm.size(); ++a) {
    shape[a] = in.shape[perm[a]];
    if (in.size() == 0) continue;
    offsets[a].resize(static_cast<size_t>(shape[a]));
    for (int64_t p = 0; p < shape[a]; ++p) offsets[a][p] = p * stride[perm[a]];
  }
  ctx.output(0) = GatherAxes(in, shape, offsets);
  return Status::Ok();
}

Status Concat(OpContext& ctx) {
  if (!ctx.FindAttr("axis")) return ctx.Error("the axis attribute is missing");
  if (ctx.input_count() == 0) return ctx.Error("no inputs");
  std::vector<const Tensor*> ins;
  for (int k = 0; k < ctx.input_count(); ++k) {
    auto t = Data(ctx, k);
    if (!t.ok()) return t.status();
    ins.push_back(*t);
  }
  const Tensor& first = *ins[0];
  auto axis_or = NormalizeAxis(ctx, ctx.Attr("axis", int64_t{0}), first.rank());
  if (!axis_or.ok()) return axis_or.status();
  if (first.rank() == 0) return ctx.Error("cannot concatenate scalars");
  const int64_t axis = *axis_or;
  std::vector<int64_t> shape = first.shape;
  shape[axis] = 0;
  for (size_t k = 0; k < ins.size(); ++k) {
    const Tensor& t = *ins[k];
    bool match = t.rank() == first.rank() && t.type == first.type;
    for (int64_t a = 0; match && a < t.rank(); ++a)
      match = a == axis || t.shape[a] == first.shape[a];
    if (!match) {
      return ctx.Error("input " + ShapeStr(static_cast<int64_t>(k)) + " (" + DTypeName(t.type) +
                       " " + ShapeString(t.shape) + ") does not concatenate with input 0 (" +
                       DTypeName(first.type) + " " + ShapeString(first.shape) + ") on axis " +
                       ShapeStr(axis));
    }
    shape[axis] += t.shape[axis];
  }
  auto n = CheckedSize(ctx, shape, "the output");
  if (!n.ok()) return n.status();
  Tensor out = Like(first, shape);
  if (*n > 0) {
    const int64_t outer = ShapeSize(std::vector<int64_t>(shape.begin(), shape.begin() + axis));
    WithBuffer(out, [&](auto buffer) {
      auto* dst = (out.*buffer).data();
      for (int64_t o = 0; o < outer; ++o) {
        for (const Tensor* t : ins) {
          const int64_t chunk = outer == 0 ? 0 : t->size() / outer;
          const auto* src = (t->*buffer).data() + o * chunk;
          std::copy(src, src + chunk, dst);
          dst += chunk;
        }
      }
    });
  }
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

Status Split(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  if (in.rank() == 0) return ctx.Error("cannot split a scalar");
  auto axis_or = NormalizeAxis(ctx, ctx.Attr("axis", int64_t{0}), in.rank());
  if (!axis_or.ok()) return axis_or.status();
  const int64_t axis = *axis_or;
  const int64_t dim = in.shape[axis];
  const int64_t parts = ctx.output_count();
  if (parts == 0) return ctx.Error("no outputs");
  std::vector<int64_t> split;
  if (ctx.opset() >= 13) {
    if (ctx.has_input(1)) {
      auto s = ctx.Ints(1);
      if (!s.ok()) return s.status();
      split = *s;
    }
  } else {
    split = ctx.Attr("split", std::vector<int64_t>{});
  }
  if (split.empty()) {
    // Equal parts; from opset 18 (num_outputs) the last may be smaller.
    const int64_t chunk = (dim + parts - 1) / parts;
    if (dim % parts != 0 && (ctx.opset() < 18 || chunk * (parts - 1) >= dim)) {
      return ctx.Error("axis " + ShapeStr(axis) + " of size " + ShapeStr(dim) +
                       " does not split into " + ShapeStr(parts) + " equal parts");
    }
    split.assign(static_cast<size_t>(parts), chunk);
    split.back() = dim - chunk * (parts - 1);
  }
  int64_t total = 0;
  for (int64_t s : split) {
    if (s < 0 || __builtin_add_overflow(total, s, &total)) total = -1;
    if (total < 0) break;
  }
  if (static_cast<int64_t>(split.size()) != parts || total != dim) {
    return ctx.Error("split " + ShapeString(split) + " does not cut axis " + ShapeStr(axis) +
                     " of size " + ShapeStr(dim) + " into " + ShapeStr(parts) + " outputs");
  }
  const int64_t outer = ShapeSize(std::vector<int64_t>(in.shape.begin(), in.shape.begin() + axis));
  const int64_t inner =
      ShapeSize(std::vector<int64_t>(in.shape.begin() + axis + 1, in.shape.end()));
  int64_t start = 0;
  for (int64_t k = 0; k < parts; ++k) {
    std::vector<int64_t> shape = in.shape;
    shape[axis] = split[k];
    Tensor out = Like(in, shape);
    WithBuffer(in, [&](auto buffer) {
      const auto* src = (in.*buffer).data();
      auto* dst = (out.*buffer).data();
      const int64_t chunk = split[k] * inner;
      for (int64_t o = 0; o < outer; ++o) {
        std::copy(src + (o * dim + start) * inner, src + (o * dim + start) * inner + chunk,
                  dst + o * chunk);
      }
    });
    ctx.output(static_cast<int>(k)) = std::move(out);
    start += split[k];
  }
  return Status::Ok();
}

Status Slice(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset() >= 10) {
    auto s = ctx.Ints(1);
    if (!s.ok()) return s.status();
    auto e = ctx.Ints(2);
    if (!e.ok()) return e.status();
    starts = *s;
    ends = *e;
    if (ctx.has_input(3)) {
      auto a = ctx.Ints(3);
      if (!a.ok()) return a.status();
      axes = *a;
    }
    if (ctx.has_input(4)) {
      auto st = ctx.Ints(4);
      if (!st.ok()) return st.status();
      steps = *st;
    }
  } else {
    starts = ctx.Attr("starts", std::vector<int64_t>{});
    ends = ctx.Attr("ends", std::vector<int64_t>{});
    axes = ctx.Attr("axes", std::vector<int64_t>{});
  }
  const size_t n = starts.size();
  if (axes.empty()) {
    for (size_t k = 0; k < n; ++k) axes.push_back(static_cast<int64_t>(k));
  }
  if (steps.empty()) steps.assign(n, 1);
  if (ends.size() != n || axes.size() != n || steps.size() != n) {
    return ctx.Error("starts " + ShapeString(starts) + ", ends " + ShapeString(ends) + ", axes " +
                     ShapeString(axes) + " and steps " + ShapeString(steps) + " differ in length");
  }
  auto norm = NormalizeAxes(ctx, axes, in.rank());
  if (!norm.ok()) return norm.status();
  std::vector<int64_t> first(in.shape.size(), 0), step(in.shape.size(), 1);
  std::vector<int64_t> shape = in.shape;
  for (size_t k = 0; k < n; ++k) {
    const int64_t a = (*norm)[k];
    const int64_t dim = in.shape[a];
    const int64_t st = steps[k];
    if (st == 0) return ctx.Error("step 0 on axis " + ShapeStr(a));
    int64_t b = starts[k], e = ends[k];
    if (b < 0) b += dim;  // no overflow: dim >= 0
    if (e < 0) e += dim;
    int64_t count = 0;
    if (dim == 0) {
      b = 0;
    } else if (st > 0) {
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      if (e > b) count = (e - b - 1) / st + 1;
    } else {
      b = std::clamp<int64_t>(b, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      // -st may overflow for INT64_MIN; any step beyond the axis length takes one element.
      const int64_t mag = st < -dim ? dim + 1 : -st;
      if (b > e) count = (b - e - 1) / mag + 1;
    }
    first[a] = b;
    step[a] = count > 1 ? st : 1;
    shape[a] = count;
  }
  auto size = CheckedSize(ctx, shape, "the output");
  if (!size.ok()) return size.status();
  const std::vector<int64_t> stride = Strides(in.shape);
  std::vector<std::vector<int64_t>> offsets(shape.size());
  if (*size > 0) {
    for (size_t a = 0; a < shape.size(); ++a) {
      offsets[a].resize(static_cast<size_t>(shape[a]));
      for (int64_t p = 0; p < shape[a]; ++p) offsets[a][p] = (first[a] + p * step[a]) * stride[a];
    }
  }
  ctx.output(0) = GatherAxes(in, shape, offsets);
  return Status::Ok();
}

Status Gather(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  auto ind_or = ctx.Input(1, DType::kInt64);
  if (!ind_or.ok()) return ind_or.status();
  auto ind_data = Data(ctx, 1);
  if (!ind_data.ok()) return ind_data.status();
  const Tensor& ind = **ind_or;
  if (in.rank() == 0) return ctx.Error("cannot gather from a scalar");
  auto axis_or = NormalizeAxis(ctx, ctx.Attr("axis", int64_t{0}), in.rank());
  if (!axis_or.ok()) return axis_or.status();
  const int64_t axis = *axis_or;
  std::vector<int64_t> shape(in.shape.begin(), in.shape.begin() + axis);
  shape.insert(shape.end(), ind.shape.begin(), ind.shape.end());
  shape.insert(shape.end(), in.shape.begin() + axis + 1, in.shape.end());
  auto size = CheckedSize(ctx, shape, "the output");
  if (!size.ok()) return size.status();
  const int64_t dim = in.shape[axis];
  for (int64_t v : ind.i) {
    if (v < -dim || v >= dim) {
      return ctx.Error("index " + ShapeStr(v) + " is out of range for axis " + ShapeStr(axis) +
                       " of size " + ShapeStr(dim));
    }
  }
  Tensor out = Like(in, shape);
  if (*size > 0) {
    const int64_t outer =
        ShapeSize(std::vector<int64_t>(in.shape.begin(), in.shape.begin() + axis));
    const int64_t inner =
        ShapeSize(std::vector<int64_t>(in.shape.begin() + axis + 1, in.shape.end()));
    WithBuffer(in, [&](auto buffer) {
      const auto* src = (in.*buffer).data();
      auto* dst = (out.*buffer).data();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t v : ind.i) {
          const auto* from = src + (o * dim + (v < 0 ? v + dim : v)) * inner;
          dst = std::copy(from, from + inner, dst);
        }
      }
    });
  }
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

// ---- Shape, Size, ConstantOfShape --------------------------------------------------------------

Status Shape(OpContext& ctx) {
  if (!ctx.has_input(0)) return ctx.Error("input 0 is missing");
  const Tensor& in = ctx.input(0);
  const int64_t rank = in.rank();
  int64_t start = ctx.Attr("start", int64_t{0}), end = ctx.Attr("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  std::vector<int64_t> dims;
  if (end > start) dims.assign(in.shape.begin() + start, in.shape.begin() + end);
  const int64_t count = static_cast<int64_t>(dims.size());
  ctx.output(0) = Tensor::Int64({count}, std::move(dims));
  return Status::Ok();
}

Status Size(OpContext& ctx) {
  auto in = Data(ctx, 0);
  if (!in.ok()) return in.status();
  ctx.output(0) = Tensor::Int64({}, {(*in)->size()});
  return Status::Ok();
}

Status ConstantOfShape(OpContext& ctx) {
  auto dims = ctx.Ints(0);
  if (!dims.ok()) return dims.status();
  if (ctx.input(0).rank() > 1) {
    return ctx.Error("the shape input is " + ShapeString(ctx.input(0).shape) + ", not 1-D");
  }
  Tensor value = Tensor::Float({1}, {0.0f});
  if (const auto* a = ctx.FindAttr("value")) {
    auto v = DecodeTensor(a->t());
    if (!v.ok()) return v.status();
    if (v->size() != 1) {
      return ctx.Error("the value attribute holds " + ShapeStr(v->size()) + " elements, not 1");
    }
    value = std::move(*v);
  }
  auto size = CheckedSize(ctx, *dims, "the shape");
  if (!size.ok()) return size.status();
  Tensor out = Like(value, *dims);
  if (out.is_float()) {
    std::fill(out.f.begin(), out.f.end(), value.f[0]);
  } else {
    std::fill(out.i.begin(), out.i.end(), value.i[0]);
  }
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

// ---- Expand, Tile, Pad -------------------------------------------------------------------------

Status Expand(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  auto target = ctx.Ints(1);
  if (!target.ok()) return target.status();
  for (int64_t d : *target) {
    if (d < 0) return ctx.Error("shape " + ShapeString(*target) + " has a negative dimension");
  }
  auto shape = BroadcastShape(in.shape, *target);
  if (!shape.ok()) return ctx.Error(shape.status().message());
  auto size = CheckedSize(ctx, *shape, "the output");
  if (!size.ok()) return size.status();
  const std::vector<int64_t> stride = Strides(in.shape);
  const size_t lead = shape->size() - in.shape.size();
  std::vector<std::vector<int64_t>> offsets(shape->size());
  if (*size > 0) {
    for (size_t a = 0; a < shape->size(); ++a) {
      offsets[a].assign(static_cast<size_t>((*shape)[a]), 0);
      if (a < lead || in.shape[a - lead] == 1) continue;
      for (int64_t p = 0; p < (*shape)[a]; ++p) offsets[a][p] = p * stride[a - lead];
    }
  }
  ctx.output(0) = GatherAxes(in, *shape, offsets);
  return Status::Ok();
}

Status Tile(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  auto repeats = ctx.Ints(1);
  if (!repeats.ok()) return repeats.status();
  if (static_cast<int64_t>(repeats->size()) != in.rank()) {
    return ctx.Error("repeats " + ShapeString(*repeats) + " do not match the rank of " +
                     ShapeString(in.shape));
  }
  std::vector<int64_t> shape(in.shape.size());
  for (size_t a = 0; a < shape.size(); ++a) {
    const int64_t r = (*repeats)[a];
    if (r < 0) return ctx.Error("repeats " + ShapeString(*repeats) + " has a negative entry");
    if (__builtin_mul_overflow(in.shape[a], r, &shape[a])) {
      return ctx.Error("repeats " + ShapeString(*repeats) + " on " + ShapeString(in.shape) +
                       " overflow");
    }
  }
  auto size = CheckedSize(ctx, shape, "the output");
  if (!size.ok()) return size.status();
  const std::vector<int64_t> stride = Strides(in.shape);
  std::vector<std::vector<int64_t>> offsets(shape.size());
  if (*size > 0) {
    for (size_t a = 0; a < shape.size(); ++a) {
      offsets[a].resize(static_cast<size_t>(shape[a]));
      for (int64_t p = 0; p < shape[a]; ++p) offsets[a][p] = (p % in.shape[a]) * stride[a];
    }
  }
  ctx.output(0) = GatherAxes(in, shape, offsets);
  return Status::Ok();
}

Status Pad(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  const int64_t rank = in.rank();
  const std::string mode = ctx.Attr("mode", std::string("constant"));
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap") {
    return ctx.Error("mode '" + mode + "' is not one of constant, reflect, edge, wrap");
  }
  std::vector<int64_t> pads, axes;
  float fill_f = 0.0f;
  int64_t fill_i = 0;
  if (ctx.opset() >= 11) {
    auto p = ctx.Ints(1);
    if (!p.ok()) return p.status();
    pads = *p;
    if (ctx.has_input(2)) {
      const Tensor& c = ctx.input(2);
      if (c.type != in.type || c.size() != 1 || (c.is_float() ? c.f.size() : c.i.size()) != 1) {
        return ctx.Error("constant_value must be one " + std::string(DTypeName(in.type)) +
                         " value, not " + DTypeName(c.type) + " " + ShapeString(c.shape));
      }
      fill_f = c.is_float() ? c.f[0] : 0.0f;
      fill_i = c.is_float() ? 0 : c.i[0];
    }
    if (ctx.has_input(3)) {
      auto a = ctx.Ints(3);
      if (!a.ok()) return a.status();
      axes = *a;
    }
  } else {
    pads = ctx.Attr(ctx.FindAttr("paddings") ? "paddings" : "pads", std::vector<int64_t>{});
    fill_f = ctx.Attr("value", 0.0f);
    fill_i = static_cast<int64_t>(fill_f);
  }
  if (axes.empty()) {
    for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
  }
  auto norm = NormalizeAxes(ctx, axes, rank);
  if (!norm.ok()) return norm.status();
  if (pads.size() != 2 * norm->size()) {
    return ctx.Error("pads " + ShapeString(pads) + " need 2 entries for each of the " +
                     ShapeStr(static_cast<int64_t>(norm->size())) + " padded axes of " +
                     ShapeString(in.shape));
  }
  std::vector<int64_t> begin(static_cast<size_t>(rank), 0), shape = in.shape;
  for (size_t k = 0; k < norm->size(); ++k) {
    const int64_t a = (*norm)[k];
    const int64_t b = pads[k], e = pads[k + norm->size()];
    int64_t d = 0;
    if (__builtin_add_overflow(in.shape[a], b, &d) || __builtin_add_overflow(d, e, &d) || d < 0) {
      return ctx.Error("pads " + ShapeString(pads) + " leave axis " + ShapeStr(a) + " of size " +
                       ShapeStr(in.shape[a]) + " with a negative or overflowing size");
    }
    if (mode != "constant" && in.shape[a] == 0 && d > 0) {
      return ctx.Error("cannot pad the empty axis " + ShapeStr(a) + " in " + mode + " mode");
    }
    begin[a] = b;
    shape[a] = d;
  }
  auto size = CheckedSize(ctx, shape, "the output");
  if (!size.ok()) return size.status();
  const std::vector<int64_t> stride = Strides(in.shape);
  std::vector<std::vector<int64_t>> offsets(shape.size());
  if (*size > 0) {
    for (size_t a = 0; a < shape.size(); ++a) {
      const int64_t dim = in.shape[a];
      offsets[a].resize(static_cast<size_t>(shape[a]));
      for (int64_t p = 0; p < shape[a]; ++p) {
        int64_t src = p - begin[a];
        if (src < 0 || src >= dim) {
          if (mode == "constant") {
            offsets[a][p] = -1;
            continue;
          }
          if (mode == "edge") {
            src = std::clamp<int64_t>(src, 0, dim - 1);
          } else if (mode == "wrap") {
            src = ((src % dim) + dim) % dim;
          } else if (dim == 1) {
            src = 0;
          } else {  // reflect about the first and last elements, repeatedly (numpy.pad)
            const int64_t period = 2 * (dim - 1);
            src = ((src % period) + period) % period;
            if (src >= dim) src = period - src;
          }
        }
        offsets[a][p] = src * stride[a];
      }
    }
  }
  ctx.output(0) = GatherAxes(in, shape, offsets, fill_f, fill_i);
  return Status::Ok();
}

// ---- Resize, Upsample --------------------------------------------------------------------------

// How Resize maps an output coordinate to an input one along one axis.
struct AxisResize {
  int64_t in = 0, out = 0;
  double scale = 1.0;  // float as given, or out / in exactly when sizes are given
  float roi_start = 0.0f, roi_end = 1.0f;
};

// x_original for x_resized = x, per coordinate_transformation_mode.
double SourceCoordinate(const std::string& mode, const AxisResize& r, int64_t x) {
  const double scale = r.scale, xr = static_cast<double>(x);
  if (mode == "half_pixel") return (xr + 0.5) / scale - 0.5;
  if (mode == "pytorch_half_pixel") return r.out > 1 ? (xr + 0.5) / scale - 0.5 : 0.0;
  if (mode == "align_corners") {
    return r.out == 1 ? 0.0 : xr * static_cast<double>(r.in - 1) / static_cast<double>(r.out - 1);
  }
  if (mode == "tf_half_pixel_for_nn") return (xr + 0.5) / scale;
  if (mode == "tf_crop_and_resize") {
    const double len = static_cast<double>(r.in - 1);
    return r.out > 1 ? r.roi_start * len +
                           xr * (r.roi_end - r.roi_start) * len / static_cast<double>(r.out - 1)
                     : 0.5 * (r.roi_start + r.roi_end) * len;
  }
  return xr / scale;  // asymmetric
}

// The nearest input index to x per nearest_mode ("simple": Upsample's and Resize-10's floor
// when enlarging, ceil when shrinking).
int64_t NearestIndex(const std::string& mode, double x, bool shrinking) {
  if (mode == "floor") return static_cast<int64_t>(std::floor(x));
  if (mode == "ceil") return static_cast<int64_t>(std::ceil(x));
  if (mode == "round_prefer_ceil") return static_cast<int64_t>(std::floor(x + 0.5));
  if (mode == "simple") return static_cast<int64_t>(shrinking ? std::ceil(x) : std::floor(x));
  // round_prefer_floor: halves go down.
  return static_cast<int64_t>(std::ceil(x - 0.5));
}

struct ResizeSpec {
  std::vector<AxisResize> axes;  // one per input axis
  std::string mode;              // nearest, linear
  std::string transform;         // coordinate_transformation_mode
  std::string nearest_mode;
  float extrapolation = 0.0f;
};

// The output: nearest mode as one gather; linear as one pass of 1-D interpolation per axis
// whose mapping is not the identity (N-linear interpolation is separable).
Status RunResize(OpContext& ctx, const Tensor& in, const ResizeSpec& spec) {
  std::vector<int64_t> shape;
  for (const AxisResize& r : spec.axes) shape.push_back(r.out);
  auto size = CheckedSize(ctx, shape, "the output");
  if (!size.ok()) return size.status();
  for (const AxisResize& r : spec.axes) {
    if (r.in == 0 && r.out > 0) return ctx.Error("cannot resize an empty axis to a nonempty one");
    if (!(r.scale > 0.0) || !std::isfinite(r.scale)) {
      return ctx.Error("scale " + std::to_string(r.scale) + " is not positive");
    }
  }
  if (*size == 0) {
    ctx.output(0) = Like(in, shape);
    return Status::Ok();
  }
  const bool crop = spec.transform == "tf_crop_and_resize";
  auto outside = [&](const AxisResize& r, double x) {
    return crop && (x < 0.0 || x > static_cast<double>(r.in - 1));
  };
  if (spec.mode == "nearest") {
    const std::vector<int64_t> stride = Strides(in.shape);
    std::vector<std::vector<int64_t>> offsets(shape.size());
    for (size_t a = 0; a < shape.size(); ++a) {
      const AxisResize& r = spec.axes[a];
      offsets[a].resize(static_cast<size_t>(r.out));
      for (int64_t p = 0; p < r.out; ++p) {
        const double x = SourceCoordinate(spec.transform, r, p);
        const int64_t k = NearestIndex(spec.nearest_mode, x, r.scale < 1.0);
        offsets[a][p] = outside(r, x) ? -1 : std::clamp<int64_t>(k, 0, r.in - 1) * stride[a];
      }
    }
    ctx.output(0) = GatherAxes(in, shape, offsets, spec.extrapolation,
                               static_cast<int64_t>(spec.extrapolation));
    return Status::Ok();
  }
  if (!in.is_float())
    return ctx.Error("linear mode needs a float input, not " + std::string(DTypeName(in.type)));
  // Interpolate axis by axis; `cur` holds the result so far, with axes [0, a) resized.
  Tensor cur = in;
  std::vector<std::vector<bool>> out_of_range(shape.size());
  for (size_t a = 0; a < shape.size(); ++a) {
    const AxisResize& r = spec.axes[a];
    std::vector<int64_t> lo(static_cast<size_t>(r.out)), hi(lo.size());
    std::vector<float> w(lo.size());
    out_of_range[a].assign(lo.size(), false);
    bool identity = r.in == r.out;
    for (int64_t p = 0; p < r.out; ++p) {
      const double x = SourceCoordinate(spec.transform, r, p);
      out_of_range[a][p] = outside(r, x);
      const double c = std::clamp(x, 0.0, static_cast<double>(r.in - 1));
      lo[p] = static_cast<int64_t>(std::floor(c));
      hi[p] = std::min(lo[p] + 1, r.in - 1);
      w[p] = static_cast<float>(c - static_cast<double>(lo[p]));
      identity = identity && lo[p] == p && w[p] == 0.0f;
    }
    if (identity) continue;
    std::vector<int64_t> next_shape = cur.shape;
    next_shape[a] = r.out;
    Tensor next = Tensor::Float(next_shape);
    const int64_t outer = ShapeSize(std::vector<int64_t>(cur.shape.begin(), cur.shape.begin() + a));
    const int64_t inner =
        ShapeSize(std::vector<int64_t>(cur.shape.begin() + a + 1, cur.shape.end()));
    ParallelFor(static_cast<size_t>(outer), [&](size_t o) {
      const float* src = cur.f.data() + static_cast<int64_t>(o) * r.in * inner;
      float* dst = next.f.data() + static_cast<int64_t>(o) * r.out * inner;
      for (int64_t p = 0; p < r.out; ++p) {
        const float* s0 = src + lo[p] * inner;
        const float* s1 = src + hi[p] * inner;
        const float wp = w[p];
        for (int64_t j = 0; j < inner; ++j) dst[p * inner + j] = s0[j] + wp * (s1[j] - s0[j]);
      }
    });
    cur = std::move(next);
  }
  if (crop) {
    // An element any of whose coordinates falls outside the input takes the extrapolation value.
    std::vector<std::vector<int64_t>> offsets(shape.size());
    const std::vector<int64_t> stride = Strides(shape);
    for (size_t a = 0; a < shape.size(); ++a) {
      offsets[a].resize(static_cast<size_t>(shape[a]));
      for (int64_t p = 0; p < shape[a]; ++p) {
        offsets[a][p] = out_of_range[a][p] ? -1 : p * stride[a];
      }
    }
    cur = GatherAxes(cur, shape, offsets, spec.extrapolation);
  }
  ctx.output(0) = std::move(cur);
  return Status::Ok();
}

// The scales of Upsample and Resize-10: one per axis, output dim floor(input dim · scale).
Status ScalesToAxes(OpContext& ctx, const Tensor& in, const std::vector<float>& scales,
                    ResizeSpec* spec) {
  if (static_cast<int64_t>(scales.size()) != in.rank()) {
    return ctx.Error(ShapeStr(static_cast<int64_t>(scales.size())) +
                     " scales for an input of rank " + ShapeStr(in.rank()));
  }
  for (size_t a = 0; a < scales.size(); ++a) {
    AxisResize r;
    r.in = in.shape[a];
    r.scale = scales[a];
    // In float, as onnxruntime and the ONNX reference compute it.
    const double out = std::floor(static_cast<float>(r.in) * scales[a]);
    if (!(out >= 0.0 && out <= static_cast<double>(kMaxShapeElements))) {
      return ctx.Error("scale " + std::to_string(scales[a]) + " on axis " + ShapeStr(a) +
                       " of size " + ShapeStr(r.in) + " gives no valid output size");
    }
    r.out = static_cast<int64_t>(out);
    spec->axes.push_back(r);
  }
  return Status::Ok();
}

StatusOr<std::vector<float>> Floats(const OpContext& ctx, int k) {
  auto t = ctx.Input(k, DType::kFloat);
  if (!t.ok()) return t.status();
  return (*t)->f;
}

// Upsample (opsets 7 to 9) and Resize-10: asymmetric coordinates; nearest takes the floor.
Status LegacyResize(OpContext& ctx, const Tensor& in, std::vector<float> scales) {
  ResizeSpec spec;
  spec.mode = ctx.Attr("mode", std::string("nearest"));
  if (spec.mode == "bilinear") spec.mode = "linear";
  if (spec.mode != "nearest" && spec.mode != "linear") {
    return ctx.Error("mode '" + spec.mode + "' is not one of nearest, linear");
  }
  spec.transform = "asymmetric";
  spec.nearest_mode = "simple";
  REINIT_RETURN_IF_ERROR(ScalesToAxes(ctx, in, scales, &spec));
  return RunResize(ctx, in, spec);
}

Status Upsample(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  std::vector<float> scales;
  if (ctx.opset() >= 9) {
    auto s = Floats(ctx, 1);
    if (!s.ok()) return s.status();
    scales = *s;
  } else {
    scales = ctx.Attr("scales", std::vector<float>{});
  }
  return LegacyResize(ctx, **in_or, scales);
}

Status Resize(OpContext& ctx) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  if (ctx.opset() < 11) {
    auto s = Floats(ctx, 1);
    if (!s.ok()) return s.status();
    return LegacyResize(ctx, in, *s);
  }
  ResizeSpec spec;
  spec.mode = ctx.Attr("mode", std::string("nearest"));
  if (spec.mode == "cubic") return ctx.Error("mode 'cubic' is not supported (nearest, linear are)");
  if (spec.mode != "nearest" && spec.mode != "linear") {
    return ctx.Error("mode '" + spec.mode + "' is not one of nearest, linear, cubic");
  }
  spec.transform = ctx.Attr("coordinate_transformation_mode", std::string("half_pixel"));
  static const char* const kTransforms[] = {"half_pixel",           "pytorch_half_pixel",
                                            "align_corners",        "asymmetric",
                                            "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  if (std::find(std::begin(kTransforms), std::end(kTransforms), spec.transform) ==
      std::end(kTransforms)) {
    return ctx.Error("coordinate_transformation_mode '" + spec.transform +
                     "' is not one of half_pixel, pytorch_half_pixel, align_corners, asymmetric, "
                     "tf_half_pixel_for_nn, tf_crop_and_resize");
  }
  spec.nearest_mode = ctx.Attr("nearest_mode", std::string("round_prefer_floor"));
  if (spec.nearest_mode != "round_prefer_floor" && spec.nearest_mode != "round_prefer_ceil" &&
      spec.nearest_mode != "floor" && spec.nearest_mode != "ceil") {
    return ctx.Error("nearest_mode '" + spec.nearest_mode +
                     "' is not one of round_prefer_floor, round_prefer_ceil, floor, ceil");
  }
  spec.extrapolation = ctx.Attr("extrapolation_value", 0.0f);
  if (ctx.Attr("antialias", int64_t{0}) != 0) return ctx.Error("antialias is not supported");
  const std::string policy = ctx.Attr("keep_aspect_ratio_policy", std::string("stretch"));
  if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller") {
    return ctx.Error("keep_aspect_ratio_policy '" + policy +
                     "' is not one of stretch, not_larger, not_smaller");
  }
  // The axes the scales, sizes and roi are given for (opset 18's axes; all by default).
  std::vector<int64_t> axes = ctx.Attr("axes", std::vector<int64_t>{});
  if (axes.empty()) {
    for (int64_t a = 0; a < in.rank(); ++a) axes.push_back(a);
  }
  auto norm = NormalizeAxes(ctx, axes, in.rank());
  if (!norm.ok()) return norm.status();
  const size_t n = norm->size();

  std::vector<float> scales, roi;
  std::vector<int64_t> sizes;
  if (ctx.has_input(2)) {
    auto s = Floats(ctx, 2);
    if (!s.ok()) return s.status();
    scales = *s;
  }
  if (ctx.has_input(3)) {
    auto s = ctx.Ints(3);
    if (!s.ok()) return s.status();
    sizes = *s;
  }
  if (scales.empty() == sizes.empty()) {
    return ctx.Error("exactly one of scales and sizes must be given");
  }
  if (scales.size() + sizes.size() != n) {
    return ctx.Error(std::string(scales.empty() ? "sizes" : "scales") + " has " +
                     ShapeStr(static_cast<int64_t>(scales.size() + sizes.size())) +
                     " entries for " + ShapeStr(static_cast<int64_t>(n)) + " axes of " +
                     ShapeString(in.shape));
  }
  if (spec.transform == "tf_crop_and_resize") {
    auto r = Floats(ctx, 1);
    if (!r.ok()) return r.status();
    roi = *r;
    if (roi.size() != 2 * n) {
      return ctx.Error("roi has " + ShapeStr(static_cast<int64_t>(roi.size())) + " entries, not " +
                       ShapeStr(static_cast<int64_t>(2 * n)));
    }
  }
  for (int64_t a = 0; a < in.rank(); ++a) {
    AxisResize r;
    r.in = r.out = in.shape[a];
    spec.axes.push_back(r);
  }
  // With sizes under keep_aspect_ratio_policy, one scale for all the axes.
  double common = 0.0;
  if (!sizes.empty() && policy != "stretch") {
    common = policy == "not_larger" ? std::numeric_limits<double>::infinity() : 0.0;
    for (size_t k = 0; k < n; ++k) {
      const double s = static_cast<double>(sizes[k]) / static_cast<double>(in.shape[(*norm)[k]]);
      common = policy == "not_larger" ? std::min(common, s) : std::max(common, s);
    }
  }
  for (size_t k = 0; k < n; ++k) {
    AxisResize& r = spec.axes[(*norm)[k]];
    if (!roi.empty()) {
      r.roi_start = roi[k];
      r.roi_end = roi[k + n];
    }
    double out = 0.0;
    if (!scales.empty()) {
      r.scale = scales[k];
      out = std::floor(static_cast<float>(r.in) * (r.roi_end - r.roi_start) * scales[k]);
    } else if (policy != "stretch") {
      out = std::floor(common * static_cast<double>(r.in) + 0.5);
    } else {
      out = static_cast<double>(sizes[k]);
    }
    if (!(out >= 0.0 && out <= static_cast<double>(kMaxShapeElements))) {
      return ctx.Error("axis " + ShapeStr((*norm)[k]) + " of size " + ShapeStr(r.in) +
                       " would be resized to an invalid or too large size");
    }
    r.out = static_cast<int64_t>(out);
    if (scales.empty()) {
      r.scale = policy != "stretch" || r.in == 0
                    ? (r.in == 0 ? 1.0 : common)
                    : static_cast<double>(r.out) / static_cast<double>(r.in);
    }
  }
  return RunResize(ctx, in, spec);
}

// ---- DepthToSpace, SpaceToDepth ----------------------------------------------------------------

// Both are a reshape to 6-D, a transpose and a reshape to 4-D: one gather over the 6 axes of
// the transposed view, whose input strides follow from the 6-D reshape of the input.
Status BlockRearrange(OpContext& ctx, bool to_space) {
  auto in_or = Data(ctx, 0);
  if (!in_or.ok()) return in_or.status();
  const Tensor& in = **in_or;
  if (in.rank() != 4) return ctx.Error("input " + ShapeString(in.shape) + " is not 4-D");
  const int64_t b = ctx.Attr("blocksize", int64_t{0});
  if (b <= 0 || b > (int64_t{1} << 16)) {
    return ctx.Error("blocksize " + ShapeStr(b) + " is not in [1, 65536]");
  }
  const int64_t n = in.shape[0], c = in.shape[1], h = in.shape[2], w = in.shape[3];
  std::vector<int64_t> view, perm, shape;
  if (to_space) {
    if (c % (b * b) != 0) {
      return ctx.Error(ShapeStr(c) + " channels do not divide into blocks of " + ShapeStr(b) + "x" +
                       ShapeStr(b));
    }
    const std::string mode = ctx.Attr("mode", std::string("DCR"));
    if (mode == "DCR") {
      view = {n, b, b, c / (b * b), h, w};
      perm = {0, 3, 4, 1, 5, 2};
    } else if (mode == "CRD") {
      view = {n, c / (b * b), b, b, h, w};
      perm = {0, 1, 4, 2, 5, 3};
    } else {
      return ctx.Error("mode '" + mode + "' is not one of DCR, CRD");
    }
    shape = {n, c / (b * b), h * b, w * b};  // no overflow: h, w <= 2^31 (Data), b <= 2^16
  } else {
    if (h % b != 0 || w % b != 0) {
      return ctx.Error("height " + ShapeStr(h) + " and width " + ShapeStr(w) +
                       " do not divide by " + ShapeStr(b));
    }
    int64_t depth = 0;
    if (__builtin_mul_overflow(c, b * b, &depth)) {
      return ctx.Error(ShapeStr(c) + " channels in blocks of " + ShapeStr(b) + "x" + ShapeStr(b) +
                       " overflow");
    }
    view = {n, c, h / b, b, w / b, b};
    perm = {0, 3, 5, 1, 2, 4};
    shape = {n, depth, h / b, w / b};
  }
  auto size = CheckedSize(ctx, shape, "the output");
  if (!size.ok()) return size.status();
  const std::vector<int64_t> stride = Strides(view);
  std::vector<int64_t> out6(6);
  std::vector<std::vector<int64_t>> offsets(6);
  for (size_t a = 0; a < 6; ++a) {
    out6[a] = view[perm[a]];
    if (in.size() == 0) continue;
    offsets[a].resize(static_cast<size_t>(out6[a]));
    for (int64_t p = 0; p < out6[a]; ++p) offsets[a][p] = p * stride[perm[a]];
  }
  Tensor out = GatherAxes(in, out6, offsets);
  out.shape = shape;
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

Status DepthToSpace(OpContext& ctx) { return BlockRearrange(ctx, true); }
Status SpaceToDepth(OpContext& ctx) { return BlockRearrange(ctx, false); }

}  // namespace

void RegisterShapeOps(OpTable* table) {
  (*table)["Reshape"] = Reshape;
  (*table)["Flatten"] = Flatten;
  (*table)["Squeeze"] = Squeeze;
  (*table)["Unsqueeze"] = Unsqueeze;
  (*table)["Transpose"] = Transpose;
  (*table)["Concat"] = Concat;
  (*table)["Split"] = Split;
  (*table)["Slice"] = Slice;
  (*table)["Gather"] = Gather;
  (*table)["Shape"] = Shape;
  (*table)["Size"] = Size;
  (*table)["ConstantOfShape"] = ConstantOfShape;
  (*table)["Expand"] = Expand;
  (*table)["Tile"] = Tile;
  (*table)["Pad"] = Pad;
  (*table)["Resize"] = Resize;
  (*table)["Upsample"] = Upsample;
  (*table)["DepthToSpace"] = DepthToSpace;
  (*table)["SpaceToDepth"] = SpaceToDepth;
}

}  // namespace reinit::exec

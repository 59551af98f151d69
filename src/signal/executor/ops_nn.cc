// The NN family: convolution (Conv, ConvTranspose), pooling (MaxPool, AveragePool, LpPool and
// their Global forms) and normalization (BatchNormalization, in inference or training mode,
// Instance-, Layer-, Group-, Lp- and MeanVarianceNormalization).
//
// Conv is im2col + GEMM. For each group, the columns (every output position of every image,
// in that order) are cut into blocks whose width depends only on the layer; a ParallelFor
// piece gathers one block from the input and multiplies it by the group's weights with Eigen,
// so every thread count gives the same bytes. A convolution with one input channel per group
// (depthwise) is a direct loop over the kernel taps instead. ConvTranspose is the GEMM turned
// around: the weights' transpose times the input gives, for each input position, everything
// it adds to the output, and col2im scatters that; a piece owns a few output channels, so no
// two pieces write the same value.
//
// Spatial attributes follow ONNX up to opset 17: pads [x1_begin, x2_begin, ..., x1_end, ...],
// auto_pad SAME_UPPER (odd padding at the end), SAME_LOWER (at the start) or VALID. In
// ceil_mode a pooling window that would start in the end padding is dropped (PyTorch's rule,
// written into the ONNX spec by onnx/onnx#5741).
// Normalization statistics are accumulated in double.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "parallel.h"
#include "signal/executor/ops.h"

namespace reinit::exec {

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapConst = Eigen::Map<const RowMatrix>;
using Map = Eigen::Map<RowMatrix>;
using StridedConst = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;
using Strided = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;

// Attribute values beyond this (pads, strides, dilations, kernel dims, output_shape) are
// refused, which keeps every size computed from them far from int64 overflow.
constexpr int64_t kMaxAttribute = int64_t{1} << 31;
// The most elements an output may have.
constexpr int64_t kMaxElements = int64_t{1} << 31;
// Width of the blocks of columns im2col gathers: about this many floats per block, and at
// least kMinBlock columns so that the GEMM amortizes packing its weights.
constexpr int64_t kBlockFloats = int64_t{1} << 17;
constexpr int64_t kMinBlock = 128;
// ParallelFor pieces of the elementwise-like loops hold about this many multiply-adds.
constexpr int64_t kPieceWork = int64_t{1} << 16;

// ceil(a / b) for b > 0 and any a.
int64_t CeilDiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

std::string Str(int64_t v) { return std::to_string(v); }

// The float input k, an error naming it otherwise.
StatusOr<const Tensor*> FloatInput(const OpContext& ctx, int k) {
  return ctx.Input(k, DType::kFloat);
}

// Product of `shape`, an error when it is negative, overflows or exceeds kMaxElements.
Status CheckElements(const OpContext& ctx, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n) || n > kMaxElements) {
      return ctx.Error("the output " + ShapeString(shape) +
                       " is larger than the executor allows (" + Str(kMaxElements) + " elements)");
    }
  }
  return Status::Ok();
}

// How many items of `work` multiply-adds each go in one ParallelFor piece (double: the
// product of a hostile kernel's dims need not fit an int64).
int64_t ItemsPerPiece(double work) {
  return work >= static_cast<double>(kPieceWork)
             ? 1
             : std::max<int64_t>(
                   1, static_cast<int64_t>(static_cast<double>(kPieceWork) / std::max(1.0, work)));
}

// Scratch space of the calling thread, `slot` 0 or 1, at least n floats, uninitialized: kept
// for the next piece and call, up to kKeptScratch floats (larger ones are freed when the
// thread next asks for a small one).
float* Scratch(int slot, int64_t n) {
  constexpr size_t kKeptScratch = size_t{1} << 24;
  thread_local std::unique_ptr<float[]> buffers[2];
  thread_local size_t sizes[2] = {0, 0};
  const size_t want = static_cast<size_t>(std::max<int64_t>(n, 1));
  if (sizes[slot] < want || (sizes[slot] > kKeptScratch && want <= kKeptScratch)) {
    buffers[slot] = std::make_unique_for_overwrite<float[]>(want);
    sizes[slot] = want;
  }
  return buffers[slot].get();
}

// Runs task(first, last) over [0, count) cut into pieces of `per_piece` items.
template <typename Task>
void ParallelRanges(int64_t count, int64_t per_piece, const Task& task) {
  const int64_t pieces = CeilDiv(count, per_piece);
  ParallelFor(static_cast<size_t>(pieces), [&](size_t p) {
    const int64_t first = static_cast<int64_t>(p) * per_piece;
    task(first, std::min(count, first + per_piece));
  });
}

// ---- Spatial geometry ---------------------------------------------------------------------------

// Per spatial axis: input and output sizes, kernel, stride, dilation and pads. For Conv and
// the pools output position o reads input o * stride - pad_begin + k * dilation; for
// ConvTranspose input position i adds to output i * stride - pad_begin + k * dilation.
struct Geometry {
  std::vector<int64_t> in, out, kernel, stride, dilation, pad_begin, pad_end;

  size_t rank() const { return in.size(); }
  int64_t Extent(size_t a) const { return (kernel[a] - 1) * dilation[a] + 1; }
};

// The ints attribute `name` with `count` values in [min, kMaxAttribute]; `fallback` for each
// when absent.
Status IntsAttr(const OpContext& ctx, const std::string& name, size_t count, int64_t fallback,
                int64_t min, std::vector<int64_t>* out) {
  const onnx::AttributeProto* a = ctx.FindAttr(name);
  if (a == nullptr) {
    out->assign(count, fallback);
    return Status::Ok();
  }
  if (static_cast<size_t>(a->ints_size()) != count) {
    return ctx.Error(name + " has " + Str(a->ints_size()) + " values, expected " +
                     Str(static_cast<int64_t>(count)));
  }
  out->assign(a->ints().begin(), a->ints().end());
  for (int64_t v : *out) {
    if (v < min || v > kMaxAttribute) {
      return ctx.Error(name + " value " + Str(v) + " is out of range [" + Str(min) + ", " +
                       Str(kMaxAttribute) + "]");
    }
  }
  return Status::Ok();
}

// The kernel shape: W's spatial dims (when `weights`), which kernel_shape must repeat if
// given, or kernel_shape alone (the pools).
Status KernelShape(const OpContext& ctx, size_t rank, const std::vector<int64_t>* weights,
                   std::vector<int64_t>* kernel) {
  if (weights == nullptr) {
    if (ctx.FindAttr("kernel_shape") == nullptr) return ctx.Error("kernel_shape is missing");
    return IntsAttr(ctx, "kernel_shape", rank, 1, 1, kernel);
  }
  kernel->assign(weights->end() - static_cast<int64_t>(rank), weights->end());
  for (int64_t k : *kernel) {
    if (k < 1) return ctx.Error("W " + ShapeString(*weights) + " has an empty kernel");
  }
  if (ctx.FindAttr("kernel_shape") != nullptr) {
    std::vector<int64_t> attr;
    REINIT_RETURN_IF_ERROR(IntsAttr(ctx, "kernel_shape", rank, 1, 1, &attr));
    if (attr != *kernel) {
      return ctx.Error("kernel_shape " + ShapeString(attr) + " disagrees with W " +
                       ShapeString(*weights));
    }
  }
  return Status::Ok();
}

// auto_pad, checked; "" counts as NOTSET. Explicit nonzero pads with another value are an error.
StatusOr<std::string> AutoPad(const OpContext& ctx) {
  std::string auto_pad = ctx.Attr("auto_pad", std::string("NOTSET"));
  if (auto_pad.empty()) auto_pad = "NOTSET";
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" &&
      auto_pad != "VALID") {
    return ctx.Error("auto_pad '" + auto_pad +
                     "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
  }
  if (auto_pad != "NOTSET") {
    for (int64_t p : ctx.Attr("pads", std::vector<int64_t>{})) {
      if (p != 0) return ctx.Error("pads cannot be given with auto_pad " + auto_pad);
    }
  }
  return auto_pad;
}

// Strides, dilations (1 when `dilations` is false), pads and output sizes of Conv and the
// pools, for input spatial sizes `in` and kernel `kernel`. `pool`: ceil_mode is read and a pad
// must be smaller than the kernel's extent, so that no window lies wholly in the padding.
Status ForwardGeometry(const OpContext& ctx, const std::vector<int64_t>& in,
                       const std::vector<int64_t>& kernel, bool dilations, bool pool, Geometry* g) {
  const size_t rank = in.size();
  g->in = in;
  g->kernel = kernel;
  REINIT_RETURN_IF_ERROR(IntsAttr(ctx, "strides", rank, 1, 1, &g->stride));
  if (dilations) {
    REINIT_RETURN_IF_ERROR(IntsAttr(ctx, "dilations", rank, 1, 1, &g->dilation));
  } else {
    g->dilation.assign(rank, 1);
  }
  auto auto_pad = AutoPad(ctx);
  if (!auto_pad.ok()) return auto_pad.status();
  const bool ceil_mode = pool && ctx.Attr("ceil_mode", int64_t{0}) != 0;
  std::vector<int64_t> pads(2 * rank, 0);
  if (*auto_pad == "NOTSET") REINIT_RETURN_IF_ERROR(IntsAttr(ctx, "pads", 2 * rank, 0, 0, &pads));
  g->pad_begin.assign(pads.begin(), pads.begin() + static_cast<int64_t>(rank));
  g->pad_end.assign(pads.begin() + static_cast<int64_t>(rank), pads.end());
  g->out.resize(rank);
  for (size_t a = 0; a < rank; ++a) {
    const int64_t extent = g->Extent(a), s = g->stride[a];
    if (*auto_pad == "SAME_UPPER" || *auto_pad == "SAME_LOWER") {
      g->out[a] = CeilDiv(in[a], s);
      const int64_t total = std::max<int64_t>(0, (g->out[a] - 1) * s + extent - in[a]);
      const int64_t small = total / 2;
      g->pad_begin[a] = *auto_pad == "SAME_UPPER" ? small : total - small;
      g->pad_end[a] = total - g->pad_begin[a];
      continue;
    }
    const int64_t span = in[a] + g->pad_begin[a] + g->pad_end[a] - extent;
    if (span < 0) {
      return ctx.Error("the kernel's extent " + Str(extent) + " on spatial axis " +
                       Str(static_cast<int64_t>(a)) + " is larger than the padded input (" +
                       Str(in[a]) + " + pads " + Str(g->pad_begin[a]) + ", " + Str(g->pad_end[a]) +
                       ")");
    }
    g->out[a] = (ceil_mode ? CeilDiv(span, s) : span / s) + 1;
    if (ceil_mode && (g->out[a] - 1) * s >= in[a] + g->pad_begin[a]) --g->out[a];
  }
  if (pool) {
    for (size_t a = 0; a < rank; ++a) {
      if (g->pad_begin[a] >= g->Extent(a) || g->pad_end[a] >= g->Extent(a)) {
        return ctx.Error("pads " + Str(g->pad_begin[a]) + ", " + Str(g->pad_end[a]) +
                         " on spatial axis " + Str(static_cast<int64_t>(a)) +
                         " are not smaller than the kernel's extent " + Str(g->Extent(a)));
      }
    }
  }
  return Status::Ok();
}

// A stretch of consecutive positions on one line (along the last spatial axis) of one image:
// what im2col, col2im and the direct convolution work on.
struct Run {
  int64_t n;       // image
  int64_t line;    // the line, numbering the lines of an image in row-major order
  int64_t first;   // position on the line of the first element
  int64_t length;  // elements
  int64_t at;      // offset of the first element in the block
};

// The runs covering flat positions [q0, q1) of images of spatial shape `shape`, where position
// p of image n is q = n * size + p.
std::vector<Run> MakeRuns(const std::vector<int64_t>& shape, int64_t q0, int64_t q1) {
  std::vector<Run> runs;
  const int64_t size = ShapeSize(shape), last = shape.back();
  for (int64_t q = q0; q < q1;) {
    const int64_t n = q / size, p = q % size;
    const int64_t first = p % last, length = std::min(last - first, q1 - q);
    runs.push_back({n, p / last, first, length, q - q0});
    q += length;
  }
  return runs;
}

// The line of `to` that line `line` of `from` meets through kernel tap `tap`: on every axis but
// the last, to = from * stride - pad_begin + tap * dilation; -1 where that leaves `to`.
int64_t MapLine(const Geometry& g, const std::vector<int64_t>& from, const std::vector<int64_t>& to,
                int64_t line, const std::vector<int64_t>& tap) {
  int64_t offset = 0, lines = 1;
  for (size_t a = g.rank() - 1; a-- > 0;) {
    const int64_t f = line % from[a];
    line /= from[a];
    const int64_t t = f * g.stride[a] - g.pad_begin[a] + tap[a] * g.dilation[a];
    if (t < 0 || t >= to[a]) return -1;
    offset += t * lines;
    lines *= to[a];
  }
  return offset;
}

// The part [*lo, *hi) of a run's elements j whose target on the last axis,
// (first + j) * stride + shift, lies in [0, limit).
void RunRange(const Run& r, int64_t stride, int64_t shift, int64_t limit, int64_t* lo,
              int64_t* hi) {
  *lo = std::clamp(CeilDiv(-shift, stride) - r.first, int64_t{0}, r.length);
  *hi = std::clamp(CeilDiv(limit - shift, stride) - r.first, *lo, r.length);
}

// Advances the kernel tap `tap` (row-major over `kernel`).
void NextTap(const std::vector<int64_t>& kernel, std::vector<int64_t>* tap) {
  for (size_t a = kernel.size(); a-- > 0;) {
    if (++(*tap)[a] < kernel[a]) return;
    (*tap)[a] = 0;
  }
}

// ---- Conv ---------------------------------------------------------------------------------------

// col[(c * ksize + tap) * cols + run.at + j] = input channel c0 + c of image run.n at the
// position output position (run, j) reads through `tap`, or 0 in the padding.
void Im2Col(const float* x, int64_t channels, int64_t c0, int64_t cg, const Geometry& g,
            const std::vector<Run>& runs, int64_t cols, float* col) {
  const size_t last = g.rank() - 1;
  const int64_t in_size = ShapeSize(g.in), in_last = g.in[last], ksize = ShapeSize(g.kernel);
  const int64_t s = g.stride[last];
  std::vector<int64_t> tap(g.rank(), 0);
  for (int64_t t = 0; t < ksize; ++t, NextTap(g.kernel, &tap)) {
    const int64_t shift = tap[last] * g.dilation[last] - g.pad_begin[last];
    for (const Run& r : runs) {
      const int64_t line = MapLine(g, g.out, g.in, r.line, tap);
      int64_t lo = 0, hi = 0;
      if (line >= 0) RunRange(r, s, shift, in_last, &lo, &hi);
      for (int64_t c = 0; c < cg; ++c) {
        float* dst = col + (c * ksize + t) * cols + r.at;
        std::fill(dst, dst + lo, 0.0f);
        std::fill(dst + hi, dst + r.length, 0.0f);
        if (lo == hi) continue;
        const float* src = x + (r.n * channels + c0 + c) * in_size + line * in_last;
        const int64_t i0 = r.first * s + shift;  // input index of element 0 (may be < 0)
        if (s == 1) {
          std::copy(src + i0 + lo, src + i0 + hi, dst + lo);
        } else {
          for (int64_t j = lo; j < hi; ++j) dst[j] = src[i0 + j * s];
        }
      }
    }
  }
}

// Output plane y (bias already in it) += the convolution of input plane x with one kernel w.
// Output line by line; for each, the kernel's taps on the other axes pick an input line, and
// its taps on the last axis slide along it.
void DirectConvPlane(const float* x, const float* w, const Geometry& g, float* y) {
  const size_t last = g.rank() - 1;
  const int64_t in_last = g.in[last], out_last = g.out[last], k_last = g.kernel[last];
  const int64_t s = g.stride[last], lines = ShapeSize(g.out) / out_last;
  const int64_t outer_taps = ShapeSize(g.kernel) / k_last;
  // Per tap on the last axis: its input shift and the outputs [lo, hi) it reaches.
  std::vector<int64_t> shift(static_cast<size_t>(k_last)), lo(shift.size()), hi(shift.size());
  for (int64_t kl = 0; kl < k_last; ++kl) {
    shift[kl] = kl * g.dilation[last] - g.pad_begin[last];
    RunRange(Run{0, 0, 0, out_last, 0}, s, shift[kl], in_last, &lo[kl], &hi[kl]);
  }
  std::vector<int64_t> o(last, 0), k(last, 0);  // the line's and the tap's outer coordinates
  for (int64_t l = 0; l < lines; ++l) {
    float* dst = y + l * out_last;
    std::fill(k.begin(), k.end(), 0);
    for (int64_t ot = 0; ot < outer_taps; ++ot) {
      int64_t line = 0;
      bool inside = true;
      for (size_t a = 0; a < last; ++a) {
        const int64_t i = o[a] * g.stride[a] - g.pad_begin[a] + k[a] * g.dilation[a];
        inside = inside && i >= 0 && i < g.in[a];
        line = line * g.in[a] + i;
      }
      for (int64_t kl = 0; inside && kl < k_last; ++kl) {
        const float wt = w[ot * k_last + kl];
        const float* src = x + line * in_last;
        const int64_t sh = shift[kl];
        if (s == 1) {
          for (int64_t j = lo[kl]; j < hi[kl]; ++j) dst[j] += wt * src[j + sh];
        } else {
          for (int64_t j = lo[kl]; j < hi[kl]; ++j) dst[j] += wt * src[j * s + sh];
        }
      }
      for (size_t a = last; a-- > 0;) {
        if (++k[a] < g.kernel[a]) break;
        k[a] = 0;
      }
    }
    for (size_t a = last; a-- > 0;) {
      if (++o[a] < g.out[a]) break;
      o[a] = 0;
    }
  }
}

// The optional bias input k: a float vector of `count` values, or nullptr when absent.
StatusOr<const float*> Bias(const OpContext& ctx, int k, int64_t count) {
  if (!ctx.has_input(k)) return static_cast<const float*>(nullptr);
  auto b = FloatInput(ctx, k);
  if (!b.ok()) return b.status();
  if ((*b)->rank() != 1 || (*b)->shape[0] != count) {
    return ctx.Error("B " + ShapeString((*b)->shape) + " should be [" + Str(count) + "]");
  }
  return (*b)->f.data();
}

// X and W of a convolution: float, W of X's rank, at least one spatial axis.
Status ConvOperands(const OpContext& ctx, const Tensor** x, const Tensor** w) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  auto w_or = FloatInput(ctx, 1);
  if (!w_or.ok()) return w_or.status();
  *x = *x_or;
  *w = *w_or;
  if ((*x)->rank() < 3) {
    return ctx.Error("X " + ShapeString((*x)->shape) +
                     " should be N x C x D1 x ... (rank 3 or more)");
  }
  if ((*w)->rank() != (*x)->rank()) {
    return ctx.Error("W " + ShapeString((*w)->shape) + " has rank " + Str((*w)->rank()) + ", X " +
                     ShapeString((*x)->shape) + " has rank " + Str((*x)->rank()));
  }
  return Status::Ok();
}

// Y = conv(X, W) + B: X [N, C, D...], W [M, C / group, K...], B [M], Y [N, M, O...].
Status Conv(OpContext& ctx) {
  const Tensor* x = nullptr;
  const Tensor* w = nullptr;
  REINIT_RETURN_IF_ERROR(ConvOperands(ctx, &x, &w));
  const size_t rank = static_cast<size_t>(x->rank()) - 2;
  const int64_t group = ctx.Attr("group", int64_t{1});
  const int64_t n_images = x->shape[0], channels = x->shape[1], maps = w->shape[0];
  const int64_t cg = w->shape[1];
  if (group < 1) return ctx.Error("group " + Str(group) + " is not positive");
  if (channels % group != 0 || cg != channels / group) {
    return ctx.Error("W " + ShapeString(w->shape) + " has " + Str(cg) +
                     " input channels per group, X " + ShapeString(x->shape) + " has " +
                     Str(channels) + " channels in " + Str(group) + " groups");
  }
  if (maps % group != 0) {
    return ctx.Error("W's " + Str(maps) + " output channels do not divide into " + Str(group) +
                     " groups");
  }
  Geometry g;
  std::vector<int64_t> kernel;
  REINIT_RETURN_IF_ERROR(KernelShape(ctx, rank, &w->shape, &kernel));
  REINIT_RETURN_IF_ERROR(ForwardGeometry(
      ctx, std::vector<int64_t>(x->shape.begin() + 2, x->shape.end()), kernel, true, false, &g));
  auto bias = Bias(ctx, 2, maps);
  if (!bias.ok()) return bias.status();
  std::vector<int64_t> out_shape = {n_images, maps};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  REINIT_RETURN_IF_ERROR(CheckElements(ctx, out_shape));
  Tensor y = Tensor::Float(out_shape);
  const int64_t out_size = ShapeSize(g.out), in_size = ShapeSize(g.in);
  const int64_t ksize = ShapeSize(g.kernel), mg = maps / group, k = cg * ksize;
  if (y.f.empty()) {
    ctx.output(0) = std::move(y);
    return Status::Ok();
  }
  const float* xf = x->f.data();
  const float* wf = w->f.data();
  const float* b = *bias;

  if (cg == 1 && group > 1) {
    // Depthwise: output channel m reads input channel m / mg alone.
    const int64_t planes = n_images * maps;
    ParallelRanges(
        planes, ItemsPerPiece(static_cast<double>(out_size) * static_cast<double>(ksize)),
        [&](int64_t first, int64_t end) {
          for (int64_t plane = first; plane < end; ++plane) {
            const int64_t n = plane / maps, m = plane % maps;
            float* yp = y.f.data() + plane * out_size;
            std::fill(yp, yp + out_size, b ? b[m] : 0.0f);
            DirectConvPlane(xf + (n * channels + m / mg) * in_size, wf + m * ksize, g, yp);
          }
        });
    ctx.output(0) = std::move(y);
    return Status::Ok();
  }

  // Columns q = n * out_size + p of each group, in blocks of equal width (the last may be
  // narrower by a few).
  const int64_t columns = n_images * out_size;
  const int64_t target =
      std::min(columns, std::max(kMinBlock, kBlockFloats / std::max<int64_t>(k, 1)));
  const int64_t blocks = CeilDiv(columns, target), block = CeilDiv(columns, blocks);
  ParallelFor(static_cast<size_t>(group * blocks), [&](size_t piece) {
    const int64_t gi = static_cast<int64_t>(piece) / blocks;
    const int64_t q0 = static_cast<int64_t>(piece) % blocks * block;
    const int64_t q1 = std::min(columns, q0 + block), cols = q1 - q0;
    const std::vector<Run> runs = MakeRuns(g.out, q0, q1);
    float* col = Scratch(0, k * cols);
    Im2Col(xf, channels, gi * cg, cg, g, runs, cols, col);
    const MapConst wg(wf + gi * mg * k, mg, k);
    const float* bg = b ? b + gi * mg : nullptr;
    if (q0 / out_size == (q1 - 1) / out_size) {
      // Within one image: straight into Y.
      const int64_t n = q0 / out_size;
      float* dst = y.f.data() + (n * maps + gi * mg) * out_size + q0 % out_size;
      Strided(dst, mg, cols, Eigen::OuterStride<>(out_size)).noalias() =
          wg * MapConst(col, k, cols);
      for (int64_t m = 0; bg && m < mg; ++m) {
        for (int64_t j = 0; j < cols; ++j) dst[m * out_size + j] += bg[m];
      }
      return;
    }
    float* out = Scratch(1, mg * cols);
    Map(out, mg, cols).noalias() = wg * MapConst(col, k, cols);
    // Scatter the block to Y, image by image.
    for (int64_t q = q0; q < q1;) {
      const int64_t n = q / out_size, p = q % out_size, len = std::min(out_size - p, q1 - q);
      for (int64_t m = 0; m < mg; ++m) {
        const float* src = out + m * cols + (q - q0);
        float* dst = y.f.data() + (n * maps + gi * mg + m) * out_size + p;
        const float bm = bg ? bg[m] : 0.0f;
        for (int64_t j = 0; j < len; ++j) dst[j] = src[j] + bm;
      }
      q += len;
    }
  });
  ctx.output(0) = std::move(y);
  return Status::Ok();
}

// ---- ConvTranspose ------------------------------------------------------------------------------

// Y = conv_transpose(X, W) + B: X [N, C, D...], W [C, M / group, K...], B [M], Y [N, M, O...].
// Output position o gets input i through tap k when o = i * stride - pad_begin + k * dilation.
Status ConvTranspose(OpContext& ctx) {
  const Tensor* x = nullptr;
  const Tensor* w = nullptr;
  REINIT_RETURN_IF_ERROR(ConvOperands(ctx, &x, &w));
  const size_t rank = static_cast<size_t>(x->rank()) - 2;
  const int64_t group = ctx.Attr("group", int64_t{1});
  const int64_t n_images = x->shape[0], channels = x->shape[1];
  if (group < 1) return ctx.Error("group " + Str(group) + " is not positive");
  if (w->shape[0] != channels || channels % group != 0) {
    return ctx.Error("W " + ShapeString(w->shape) + " should have X's " + Str(channels) +
                     " channels first, in " + Str(group) + " groups");
  }
  const int64_t cg = channels / group, mg = w->shape[1], maps = mg * group;
  Geometry g;
  g.in.assign(x->shape.begin() + 2, x->shape.end());
  REINIT_RETURN_IF_ERROR(KernelShape(ctx, rank, &w->shape, &g.kernel));
  REINIT_RETURN_IF_ERROR(IntsAttr(ctx, "strides", rank, 1, 1, &g.stride));
  REINIT_RETURN_IF_ERROR(IntsAttr(ctx, "dilations", rank, 1, 1, &g.dilation));
  std::vector<int64_t> output_padding;
  REINIT_RETURN_IF_ERROR(IntsAttr(ctx, "output_padding", rank, 0, 0, &output_padding));
  auto auto_pad = AutoPad(ctx);
  if (!auto_pad.ok()) return auto_pad.status();
  std::vector<int64_t> pads(2 * rank, 0);
  if (*auto_pad == "NOTSET") REINIT_RETURN_IF_ERROR(IntsAttr(ctx, "pads", 2 * rank, 0, 0, &pads));
  g.pad_begin.assign(pads.begin(), pads.begin() + static_cast<int64_t>(rank));
  g.pad_end.assign(pads.begin() + static_cast<int64_t>(rank), pads.end());
  // output_shape (spatial, or the whole shape) sets the output and the pads; so does SAME.
  std::vector<int64_t> output_shape;
  if (const auto* a = ctx.FindAttr("output_shape")) {
    const size_t given = static_cast<size_t>(a->ints_size());
    if (given != rank && given != rank + 2) {
      return ctx.Error("output_shape has " + Str(a->ints_size()) + " values, expected " +
                       Str(static_cast<int64_t>(rank)));
    }
    REINIT_RETURN_IF_ERROR(IntsAttr(ctx, "output_shape", given, 0, 0, &output_shape));
    output_shape.erase(output_shape.begin(), output_shape.end() - static_cast<int64_t>(rank));
  } else if (*auto_pad == "SAME_UPPER" || *auto_pad == "SAME_LOWER") {
    for (size_t a = 0; a < rank; ++a) output_shape.push_back(g.in[a] * g.stride[a]);
  }
  g.out.resize(rank);
  for (size_t a = 0; a < rank; ++a) {
    const int64_t full = g.stride[a] * (g.in[a] - 1) + output_padding[a] + g.Extent(a);
    if (!output_shape.empty()) {
      // The total padding split as the spec says; a negative total (an output larger than
      // the full result) extends the end.
      const int64_t total = full - output_shape[a];
      const int64_t begin = *auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pad_begin[a] = total <= 0 ? 0 : begin;
      g.pad_end[a] = total - g.pad_begin[a];
      g.out[a] = output_shape[a];
    } else {
      g.out[a] = full - g.pad_begin[a] - g.pad_end[a];
    }
    if (g.out[a] < 1) {
      return ctx.Error("the output would have " + Str(g.out[a]) + " elements on spatial axis " +
                       Str(static_cast<int64_t>(a)) + " (pads " + Str(g.pad_begin[a]) + ", " +
                       Str(g.pad_end[a]) + ")");
    }
  }
  auto bias = Bias(ctx, 2, maps);
  if (!bias.ok()) return bias.status();
  std::vector<int64_t> out_shape = {n_images, maps};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  REINIT_RETURN_IF_ERROR(CheckElements(ctx, out_shape));
  Tensor y = Tensor::Float(out_shape);
  const int64_t out_size = ShapeSize(g.out), in_size = ShapeSize(g.in);
  const int64_t ksize = ShapeSize(g.kernel), out_last = g.out[rank - 1];
  const float* xf = x->f.data();
  const float* wf = w->f.data();
  const float* b = *bias;
  if (y.f.empty()) {
    ctx.output(0) = std::move(y);
    return Status::Ok();
  }
  // A piece: image n, group gi, output channels [m0, m0 + chunk) of the group; within it,
  // the input positions in blocks.
  const int64_t chunk = std::min<int64_t>(mg, 16), chunks = CeilDiv(mg, chunk);
  const int64_t rows_max = chunk * ksize;
  const int64_t block =
      in_size == 0 ? 1 : std::min(in_size, std::max(kMinBlock, kBlockFloats / rows_max));
  const int64_t s = g.stride[rank - 1];
  ParallelFor(static_cast<size_t>(n_images * group * chunks), [&](size_t piece) {
    const int64_t n = static_cast<int64_t>(piece) / (group * chunks);
    const int64_t gi = static_cast<int64_t>(piece) / chunks % group;
    const int64_t m0 = static_cast<int64_t>(piece) % chunks * chunk;
    const int64_t mc = std::min(chunk, mg - m0), rows = mc * ksize;
    float* yn = y.f.data() + (n * maps + gi * mg + m0) * out_size;
    for (int64_t m = 0; m < mc; ++m) {
      std::fill(yn + m * out_size, yn + (m + 1) * out_size, b ? b[gi * mg + m0 + m] : 0.0f);
    }
    const MapConst wg(wf + gi * cg * mg * ksize, cg, mg * ksize);
    float* col = Scratch(0, rows * std::min(block, in_size));
    for (int64_t q0 = 0; q0 < in_size; q0 += block) {
      const int64_t cols = std::min(block, in_size - q0);
      const StridedConst xb(xf + (n * channels + gi * cg) * in_size + q0, cg, cols,
                            Eigen::OuterStride<>(in_size));
      Map(col, rows, cols).noalias() = wg.middleCols(m0 * ksize, rows).transpose() * xb;
      // col2im: row (m, tap), column j adds to the output position it reaches.
      const std::vector<Run> runs = MakeRuns(g.in, q0, q0 + cols);
      std::vector<int64_t> tap(rank, 0);
      for (int64_t t = 0; t < ksize; ++t, NextTap(g.kernel, &tap)) {
        const int64_t shift = tap[rank - 1] * g.dilation[rank - 1] - g.pad_begin[rank - 1];
        for (const Run& r : runs) {
          const int64_t line = MapLine(g, g.in, g.out, r.line, tap);
          if (line < 0) continue;
          int64_t lo = 0, hi = 0;
          RunRange(r, s, shift, out_last, &lo, &hi);
          for (int64_t m = 0; m < mc; ++m) {
            const float* src = col + (m * ksize + t) * cols + r.at;
            float* dst = yn + m * out_size + line * out_last;
            const int64_t o0 = r.first * s + shift;  // output index of element 0 (may be < 0)
            for (int64_t j = lo; j < hi; ++j) dst[o0 + j * s] += src[j];
          }
        }
      }
    }
  });
  ctx.output(0) = std::move(y);
  return Status::Ok();
}

// ---- Pooling ------------------------------------------------------------------------------------

enum class PoolKind { kMax, kAverage, kLp };

// The p of LpPool / GlobalLpPool (an int since opset 2, a float before); an error unless > 0.
StatusOr<float> LpExponent(const OpContext& ctx) {
  const onnx::AttributeProto* a = ctx.FindAttr("p");
  float p = 2.0f;
  if (a != nullptr) {
    p = a->type() == onnx::AttributeProto::FLOAT ? a->f() : static_cast<float>(a->i());
  }
  if (!(p > 0.0f) || !std::isfinite(p))
    return ctx.Error("p " + std::to_string(p) + " is not positive");
  return p;
}

// (sum |x|^p)^(1/p) of the accumulated sum of |x|^p.
float LpRoot(double sum, float p) {
  if (p == 1.0f) return static_cast<float>(sum);
  if (p == 2.0f) return static_cast<float>(std::sqrt(sum));
  return static_cast<float>(std::pow(sum, 1.0 / p));
}

double LpTerm(float v, float p) {
  const double a = std::fabs(static_cast<double>(v));
  if (p == 1.0f) return a;
  if (p == 2.0f) return a * a;
  return std::pow(a, static_cast<double>(p));
}

// Per spatial axis and output position: where the window starts in the input, the taps
// [lo, hi) that land in the input, and how many taps land in the input or its pads (a
// ceil_mode window may reach past the end padding).
struct AxisWindows {
  std::vector<int64_t> start, lo, hi, padded;
};

std::vector<AxisWindows> Windows(const Geometry& g) {
  std::vector<AxisWindows> w(g.rank());
  for (size_t a = 0; a < g.rank(); ++a) {
    const int64_t d = g.dilation[a];
    for (int64_t o = 0; o < g.out[a]; ++o) {
      const int64_t start = o * g.stride[a] - g.pad_begin[a];
      w[a].start.push_back(start);
      w[a].lo.push_back(std::max<int64_t>(0, CeilDiv(-start, d)));
      w[a].hi.push_back(std::min(g.kernel[a], CeilDiv(g.in[a] - start, d)));
      w[a].padded.push_back(std::min(g.kernel[a], CeilDiv(g.in[a] + g.pad_end[a] - start, d)));
    }
  }
  return w;
}

struct PoolOptions {
  bool count_include_pad = false;
  float p = 2.0f;
  bool indices = false;
  bool column_major = false;  // storage_order 1: Indices number the spatial axes column-major
};

// One plane (image and channel) of a pool. The output walks line by line (along the last
// spatial axis); for each line, `bases` holds the input offsets of the window's taps on the
// other axes, so the innermost loops only step along the last axis.
template <PoolKind kKind, bool kIndices = false>
void PoolPlane(const float* x, const Geometry& g, const std::vector<AxisWindows>& w,
               const PoolOptions& opt, float* y, int64_t* index) {
  const size_t rank = g.rank(), last = rank - 1;
  const int64_t out_last = g.out[last], lines = ShapeSize(g.out) / out_last;
  const int64_t d_last = g.dilation[last];
  std::vector<int64_t> in_stride(rank, 1);
  for (size_t a = last; a-- > 0;) in_stride[a] = in_stride[a + 1] * g.in[a + 1];
  std::vector<int64_t> o(rank, 0), k(rank, 0), bases;
  for (int64_t line = 0; line < lines; ++line) {
    // The outer taps of this line's windows.
    for (size_t a = last, rest = static_cast<size_t>(line); a-- > 0;) {
      o[a] = static_cast<int64_t>(rest % static_cast<size_t>(g.out[a]));
      rest /= static_cast<size_t>(g.out[a]);
    }
    bases.clear();
    double outer_padded = 1.0;
    bool empty = false;
    for (size_t a = 0; a < last; ++a) {
      k[a] = w[a].lo[o[a]];
      empty = empty || k[a] >= w[a].hi[o[a]];
      outer_padded *= static_cast<double>(w[a].padded[o[a]]);
    }
    while (!empty) {
      int64_t base = 0;
      for (size_t a = 0; a < last; ++a)
        base += (w[a].start[o[a]] + k[a] * g.dilation[a]) * in_stride[a];
      bases.push_back(base);
      size_t a = last;
      while (a-- > 0) {
        if (++k[a] < w[a].hi[o[a]]) break;
        k[a] = w[a].lo[o[a]];
      }
      if (a == static_cast<size_t>(-1)) break;
    }
    for (int64_t ol = 0; ol < out_last; ++ol) {
      const int64_t start = w[last].start[ol], lo = w[last].lo[ol], hi = w[last].hi[ol];
      float best = -std::numeric_limits<float>::infinity();
      int64_t best_at = 0;
      bool nan = false;  // a NaN in the window makes the max NaN
      double sum = 0.0;
      for (int64_t base : bases) {
        const float* row = x + base + start;
        for (int64_t kk = lo; kk < hi; ++kk) {
          const float v = row[kk * d_last];
          if constexpr (kKind == PoolKind::kMax && kIndices) {
            if (v > best || (v != v && best == best)) {
              best = v;
              best_at = base + start + kk * d_last;
            }
          } else if constexpr (kKind == PoolKind::kMax) {
            best = v > best ? v : best;  // branch-free (maxss)
            nan |= v != v;
          } else if constexpr (kKind == PoolKind::kAverage) {
            sum += v;
          } else {
            sum += LpTerm(v, opt.p);
          }
        }
      }
      const int64_t at = line * out_last + ol;
      if constexpr (kKind == PoolKind::kMax) {
        y[at] = nan ? std::numeric_limits<float>::quiet_NaN() : best;
        if constexpr (kIndices) {
          // The row-major offset of the maximum, renumbered for storage_order 1.
          int64_t flat = best_at, renumbered = 0, column_stride = 1;
          if (opt.column_major) {
            for (size_t a = 0; a < rank; ++a) {
              renumbered += flat / in_stride[a] * column_stride;
              flat %= in_stride[a];
              column_stride *= g.in[a];
            }
            best_at = renumbered;
          }
          index[at] = best_at;
        }
      } else if constexpr (kKind == PoolKind::kAverage) {
        const double taps = static_cast<double>(bases.size()) * static_cast<double>(hi - lo);
        const double divisor =
            opt.count_include_pad ? outer_padded * static_cast<double>(w[last].padded[ol]) : taps;
        y[at] = divisor > 0.0 ? static_cast<float>(sum / divisor) : 0.0f;
      } else {
        y[at] = LpRoot(sum, opt.p);
      }
    }
  }
}

// MaxPool (with its optional Indices), AveragePool and LpPool.
Status Pool(OpContext& ctx, PoolKind kind) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  if (x.rank() < 3) {
    return ctx.Error("X " + ShapeString(x.shape) + " should be N x C x D1 x ... (rank 3 or more)");
  }
  const size_t rank = static_cast<size_t>(x.rank()) - 2;
  std::vector<int64_t> kernel;
  REINIT_RETURN_IF_ERROR(KernelShape(ctx, rank, nullptr, &kernel));
  Geometry g;
  REINIT_RETURN_IF_ERROR(ForwardGeometry(
      ctx, std::vector<int64_t>(x.shape.begin() + 2, x.shape.end()), kernel, true, true, &g));
  PoolOptions opt;
  opt.count_include_pad = ctx.Attr("count_include_pad", int64_t{0}) != 0;
  if (kind == PoolKind::kLp) {
    auto p = LpExponent(ctx);
    if (!p.ok()) return p.status();
    opt.p = *p;
  }
  opt.indices = kind == PoolKind::kMax && ctx.output_count() > 1 && !ctx.node().output(1).empty();
  opt.column_major = ctx.Attr("storage_order", int64_t{0}) != 0;
  std::vector<int64_t> out_shape = {x.shape[0], x.shape[1]};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  REINIT_RETURN_IF_ERROR(CheckElements(ctx, out_shape));
  Tensor y = Tensor::Float(out_shape);
  Tensor index;
  if (opt.indices) index = Tensor::Int64(out_shape);
  if (y.f.empty()) {  // N or C is 0 (an axis of the windows may still be huge: no tables)
    ctx.output(0) = std::move(y);
    if (opt.indices) ctx.output(1) = std::move(index);
    return Status::Ok();
  }
  const int64_t in_size = ShapeSize(g.in), out_size = ShapeSize(g.out);
  const int64_t planes = x.shape[0] * x.shape[1];
  const std::vector<AxisWindows> windows = Windows(g);
  double taps = 1.0;
  for (int64_t k : kernel) taps *= static_cast<double>(k);
  ParallelRanges(planes, ItemsPerPiece(static_cast<double>(out_size) * taps),
                 [&](int64_t first, int64_t end) {
                   for (int64_t plane = first; plane < end; ++plane) {
                     const float* xp = x.f.data() + plane * in_size;
                     float* yp = y.f.data() + plane * out_size;
                     int64_t* ip = opt.indices ? index.i.data() + plane * out_size : nullptr;
                     if (kind == PoolKind::kMax) {
                       if (ip == nullptr) {
                         PoolPlane<PoolKind::kMax>(xp, g, windows, opt, yp, ip);
                       } else {
                         PoolPlane<PoolKind::kMax, true>(xp, g, windows, opt, yp, ip);
                         for (int64_t i = 0; i < out_size; ++i) ip[i] += plane * in_size;
                       }
                     } else if (kind == PoolKind::kAverage) {
                       PoolPlane<PoolKind::kAverage>(xp, g, windows, opt, yp, ip);
                     } else {
                       PoolPlane<PoolKind::kLp>(xp, g, windows, opt, yp, ip);
                     }
                   }
                 });
  ctx.output(0) = std::move(y);
  if (opt.indices) ctx.output(1) = std::move(index);
  return Status::Ok();
}

Status MaxPool(OpContext& ctx) { return Pool(ctx, PoolKind::kMax); }
Status AveragePool(OpContext& ctx) { return Pool(ctx, PoolKind::kAverage); }
Status LpPool(OpContext& ctx) { return Pool(ctx, PoolKind::kLp); }

// Global pools: over all spatial positions of each channel; Y [N, C, 1, ...].
Status GlobalPool(OpContext& ctx, PoolKind kind) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  if (x.rank() < 2) return ctx.Error("X " + ShapeString(x.shape) + " should be N x C x ...");
  float p = 2.0f;
  if (kind == PoolKind::kLp) {
    auto p_or = LpExponent(ctx);
    if (!p_or.ok()) return p_or.status();
    p = *p_or;
  }
  std::vector<int64_t> out_shape(x.shape.size(), 1);
  out_shape[0] = x.shape[0];
  out_shape[1] = x.shape[1];
  const int64_t planes = x.shape[0] * x.shape[1];
  const int64_t size = planes == 0 ? 0 : x.size() / planes;
  if (size == 0 && planes > 0)
    return ctx.Error("X " + ShapeString(x.shape) + " has nothing to pool");
  Tensor y = Tensor::Float(out_shape);
  ParallelRanges(planes, ItemsPerPiece(static_cast<double>(size)), [&](int64_t first, int64_t end) {
    for (int64_t plane = first; plane < end; ++plane) {
      const float* xp = x.f.data() + plane * size;
      if (kind == PoolKind::kMax) {
        float best = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < size; ++i) {
          if (xp[i] > best || std::isnan(xp[i])) best = xp[i];
          if (std::isnan(best)) break;
        }
        y.f[static_cast<size_t>(plane)] = best;
        continue;
      }
      double sum = 0.0;
      for (int64_t i = 0; i < size; ++i)
        sum += kind == PoolKind::kAverage ? xp[i] : LpTerm(xp[i], p);
      y.f[static_cast<size_t>(plane)] = kind == PoolKind::kAverage
                                            ? static_cast<float>(sum / static_cast<double>(size))
                                            : LpRoot(sum, p);
    }
  });
  ctx.output(0) = std::move(y);
  return Status::Ok();
}

Status GlobalMaxPool(OpContext& ctx) { return GlobalPool(ctx, PoolKind::kMax); }
Status GlobalAveragePool(OpContext& ctx) { return GlobalPool(ctx, PoolKind::kAverage); }
Status GlobalLpPool(OpContext& ctx) { return GlobalPool(ctx, PoolKind::kLp); }

// ---- Normalization ------------------------------------------------------------------------------

// Input k: float with exactly `count` elements, as a [count] vector (`what` names it).
StatusOr<const float*> ChannelVector(const OpContext& ctx, int k, int64_t count,
                                     const std::string& what) {
  auto t = FloatInput(ctx, k);
  if (!t.ok()) return t.status();
  if ((*t)->rank() != 1 || (*t)->shape[0] != count) {
    return ctx.Error(what + " " + ShapeString((*t)->shape) + " should be [" + Str(count) + "]");
  }
  return (*t)->f.data();
}

// Mean and 1 / sqrt(variance + epsilon) of `count` values `stride` apart, in double.
void MeanAndInverseStd(const float* x, int64_t count, int64_t stride, float epsilon, double* mean,
                       double* inv_std) {
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i) sum += x[i * stride];
  const double m = count > 0 ? sum / static_cast<double>(count) : 0.0;
  double sq = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const double d = x[i * stride] - m;
    sq += d * d;
  }
  *mean = m;
  *inv_std = 1.0 / std::sqrt((count > 0 ? sq / static_cast<double>(count) : 0.0) + epsilon);
}

// Y = (X - mean) / sqrt(var + epsilon) * scale + B per channel (axis 1; a 1-D X is one
// channel), with the given statistics (inference) or the batch's own (training, see below).
Status BatchNormalization(OpContext& ctx) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  if (x.rank() < 1) return ctx.Error("X is a scalar");
  // Training mode (training_mode = 1 from opset 14; before, asking for the statistics
  // outputs): the batch's own statistics normalize, and the running ones are updated.
  bool training = ctx.Attr("training_mode", int64_t{0}) != 0;
  for (int k = 1; k < ctx.output_count() && ctx.opset() < 14; ++k) {
    training |= !ctx.node().output(k).empty();
  }
  if (ctx.Attr("spatial", int64_t{1}) == 0) {
    return ctx.Error("spatial = 0 (per-activation statistics) is not supported");
  }
  const int64_t channels = x.rank() == 1 ? 1 : x.shape[1];
  const char* names[] = {"scale", "B", "input_mean", "input_var"};
  const float* v[4];
  for (int k = 0; k < 4; ++k) {
    auto c = ChannelVector(ctx, k + 1, channels, names[k]);
    if (!c.ok()) return c.status();
    v[k] = *c;
  }
  const float epsilon = ctx.Attr("epsilon", 1e-5f);
  const int64_t planes = x.rank() == 1 ? 1 : x.shape[0] * channels;
  const int64_t size = planes == 0 ? 0 : x.size() / planes;
  // Per channel: the mean and (population) variance over the batch and spatial positions.
  std::vector<double> mean(static_cast<size_t>(channels)), var(static_cast<size_t>(channels));
  if (training) {
    const double count = static_cast<double>(planes / channels * size);
    for (int64_t plane = 0; plane < planes; ++plane) {
      const float* xp = x.f.data() + plane * size;
      for (int64_t i = 0; i < size; ++i) mean[plane % channels] += xp[i];
    }
    for (double& m : mean) m = count > 0 ? m / count : 0;
    for (int64_t plane = 0; plane < planes; ++plane) {
      const float* xp = x.f.data() + plane * size;
      const double m = mean[plane % channels];
      for (int64_t i = 0; i < size; ++i) var[plane % channels] += (xp[i] - m) * (xp[i] - m);
    }
    for (double& s : var) s = count > 0 ? s / count : 0;
  } else {
    for (int64_t c = 0; c < channels; ++c) mean[c] = v[2][c], var[c] = v[3][c];
  }
  std::vector<float> a(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const double s = v[0][c] / std::sqrt(var[c] + epsilon);
    a[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(v[1][c] - mean[c] * s);
  }
  if (training) {
    // running = input * momentum + current * (1 - momentum); opset < 14 also had saved_mean
    // and saved_var, given the batch's statistics here.
    const double momentum = ctx.Attr("momentum", 0.9f);
    for (int k = 1; k < ctx.output_count() && k < 5; ++k) {
      Tensor t = Tensor::Float({channels});
      for (int64_t c = 0; c < channels; ++c) {
        const double current = k == 1 || k == 3 ? mean[c] : var[c];
        const double input = k == 1 ? v[2][c] : v[3][c];
        t.f[c] = static_cast<float>(k <= 2 ? input * momentum + current * (1 - momentum) : current);
      }
      ctx.output(k) = std::move(t);
    }
  }
  Tensor y = Tensor::Float(x.shape);
  ParallelRanges(planes, ItemsPerPiece(static_cast<double>(size)), [&](int64_t first, int64_t end) {
    for (int64_t plane = first; plane < end; ++plane) {
      const int64_t c = plane % channels;
      const float* xp = x.f.data() + plane * size;
      float* yp = y.f.data() + plane * size;
      for (int64_t i = 0; i < size; ++i) yp[i] = xp[i] * a[c] + shift[c];
    }
  });
  ctx.output(0) = std::move(y);
  return Status::Ok();
}

// Per image and channel: Y = (X - mean) / sqrt(var + epsilon) * scale[c] + B[c].
Status InstanceNormalization(OpContext& ctx) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  if (x.rank() < 3) {
    return ctx.Error("X " + ShapeString(x.shape) + " should be N x C x D1 x ... (rank 3 or more)");
  }
  const int64_t channels = x.shape[1];
  auto scale = ChannelVector(ctx, 1, channels, "scale");
  if (!scale.ok()) return scale.status();
  auto b = ChannelVector(ctx, 2, channels, "B");
  if (!b.ok()) return b.status();
  const float epsilon = ctx.Attr("epsilon", 1e-5f);
  Tensor y = Tensor::Float(x.shape);
  const int64_t planes = x.shape[0] * channels;
  const int64_t size = planes == 0 ? 0 : x.size() / planes;
  ParallelRanges(planes, ItemsPerPiece(3.0 * static_cast<double>(size)),
                 [&](int64_t first, int64_t end) {
                   for (int64_t plane = first; plane < end; ++plane) {
                     const int64_t c = plane % channels;
                     const float* xp = x.f.data() + plane * size;
                     double mean = 0.0, inv = 0.0;
                     MeanAndInverseStd(xp, size, 1, epsilon, &mean, &inv);
                     const double s = inv * (*scale)[c];
                     for (int64_t i = 0; i < size; ++i) {
                       y.f[static_cast<size_t>(plane * size + i)] =
                           static_cast<float>((xp[i] - mean) * s + (*b)[c]);
                     }
                   }
                 });
  ctx.output(0) = std::move(y);
  return Status::Ok();
}

// Over the axes [axis, rank): Y = (X - mean) / sqrt(var + epsilon) * Scale + B, Scale and B
// broadcasting to those axes; optional outputs Mean and InvStdDev shaped as X with those axes 1.
Status LayerNormalization(OpContext& ctx) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  int64_t axis = ctx.Attr("axis", int64_t{-1});
  if (axis < -x.rank() || axis > x.rank()) {
    return ctx.Error("axis " + Str(axis) + " is out of range for rank " + Str(x.rank()));
  }
  if (axis < 0) axis += x.rank();
  const std::vector<int64_t> inner_shape(x.shape.begin() + axis, x.shape.end());
  const int64_t inner = ShapeSize(inner_shape);
  const int64_t outer = inner == 0 ? 0 : x.size() / inner;
  // Scale and B as indices into them for each position of the normalized block.
  std::vector<int64_t> index[2];
  const float* params[2] = {nullptr, nullptr};
  for (int k = 1; k <= 2; ++k) {
    if (k == 2 && !ctx.has_input(2)) break;
    auto t = FloatInput(ctx, k);
    if (!t.ok()) return t.status();
    auto shape = BroadcastShape((*t)->shape, inner_shape);
    if (!shape.ok() || *shape != inner_shape) {
      return ctx.Error(std::string(k == 1 ? "Scale " : "B ") + ShapeString((*t)->shape) +
                       " does not broadcast to the normalized shape " + ShapeString(inner_shape));
    }
    index[k - 1] = BroadcastIndex((*t)->shape, inner_shape);
    params[k - 1] = (*t)->f.data();
  }
  const float epsilon = ctx.Attr("epsilon", 1e-5f);
  std::vector<int64_t> stat_shape = x.shape;
  for (size_t a = static_cast<size_t>(axis); a < stat_shape.size(); ++a) stat_shape[a] = 1;
  Tensor y = Tensor::Float(x.shape);
  Tensor mean_out = Tensor::Float(stat_shape), inv_out = Tensor::Float(stat_shape);
  ParallelRanges(outer, ItemsPerPiece(3.0 * static_cast<double>(inner)),
                 [&](int64_t first, int64_t end) {
                   for (int64_t row = first; row < end; ++row) {
                     const float* xr = x.f.data() + row * inner;
                     float* yr = y.f.data() + row * inner;
                     double mean = 0.0, inv = 0.0;
                     MeanAndInverseStd(xr, inner, 1, epsilon, &mean, &inv);
                     for (int64_t i = 0; i < inner; ++i) {
                       float v = static_cast<float>((xr[i] - mean) * inv) * params[0][index[0][i]];
                       if (params[1] != nullptr) v += params[1][index[1][i]];
                       yr[i] = v;
                     }
                     mean_out.f[static_cast<size_t>(row)] = static_cast<float>(mean);
                     inv_out.f[static_cast<size_t>(row)] = static_cast<float>(inv);
                   }
                 });
  ctx.output(0) = std::move(y);
  if (ctx.output_count() > 1) ctx.output(1) = std::move(mean_out);
  if (ctx.output_count() > 2) ctx.output(2) = std::move(inv_out);
  return Status::Ok();
}

// Statistics per image and group of C / num_groups channels; scale and bias per channel ([C],
// opset 21) or per group ([num_groups], opset 18; the same when num_groups = C).
Status GroupNormalization(OpContext& ctx) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  if (x.rank() < 2) return ctx.Error("X " + ShapeString(x.shape) + " should be N x C x ...");
  const int64_t channels = x.shape[1];
  if (ctx.FindAttr("num_groups") == nullptr) return ctx.Error("num_groups is missing");
  const int64_t groups = ctx.Attr("num_groups", int64_t{1});
  if (groups < 1 || channels % groups != 0) {
    return ctx.Error("num_groups " + Str(groups) + " does not divide the " + Str(channels) +
                     " channels");
  }
  const float* params[2];
  bool per_group[2];
  for (int k = 1; k <= 2; ++k) {
    auto t = FloatInput(ctx, k);
    if (!t.ok()) return t.status();
    const int64_t n = (*t)->rank() == 1 ? (*t)->shape[0] : -1;
    if (n != channels && n != groups) {
      return ctx.Error(std::string(k == 1 ? "scale " : "bias ") + ShapeString((*t)->shape) +
                       " should be [" + Str(channels) + "] (or [" + Str(groups) + "], opset 18)");
    }
    params[k - 1] = (*t)->f.data();
    per_group[k - 1] = n != channels;
  }
  const float epsilon = ctx.Attr("epsilon", 1e-5f);
  const int64_t per = channels / groups;
  const int64_t blocks = x.shape[0] * groups;
  const int64_t size = blocks == 0 ? 0 : x.size() / blocks;  // one group of one image
  const int64_t plane = per == 0 ? 0 : size / per;
  Tensor y = Tensor::Float(x.shape);
  ParallelRanges(blocks, ItemsPerPiece(3.0 * static_cast<double>(size)),
                 [&](int64_t first, int64_t end) {
                   for (int64_t blk = first; blk < end; ++blk) {
                     const int64_t gi = blk % groups;
                     const float* xb = x.f.data() + blk * size;
                     double mean = 0.0, inv = 0.0;
                     MeanAndInverseStd(xb, size, 1, epsilon, &mean, &inv);
                     for (int64_t i = 0; i < size; ++i) {
                       const int64_t c = gi * per + i / plane;
                       const float s = params[0][per_group[0] ? gi : c];
                       const float sh = params[1][per_group[1] ? gi : c];
                       y.f[static_cast<size_t>(blk * size + i)] =
                           static_cast<float>((xb[i] - mean) * inv) * s + sh;
                     }
                   }
                 });
  ctx.output(0) = std::move(y);
  return Status::Ok();
}

// X divided by its L1 or L2 norm along `axis` (a zero norm leaves the zeros).
Status LpNormalization(OpContext& ctx) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  auto axis = NormalizeAxis(ctx, ctx.Attr("axis", int64_t{-1}), x.rank());
  if (!axis.ok()) return axis.status();
  const int64_t p = ctx.Attr("p", int64_t{2});
  if (p != 1 && p != 2) return ctx.Error("p " + Str(p) + " is not 1 or 2");
  if (x.rank() == 0) return ctx.Error("X is a scalar");
  const int64_t len = x.shape[static_cast<size_t>(*axis)];
  const int64_t inner = ShapeSize(std::vector<int64_t>(x.shape.begin() + *axis + 1, x.shape.end()));
  const int64_t outer = ShapeSize(std::vector<int64_t>(x.shape.begin(), x.shape.begin() + *axis));
  Tensor y = Tensor::Float(x.shape);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * len * inner + i;
      double norm = 0.0;
      for (int64_t j = 0; j < len; ++j) {
        const double v = x.f[static_cast<size_t>(base + j * inner)];
        norm += p == 1 ? std::fabs(v) : v * v;
      }
      if (p == 2) norm = std::sqrt(norm);
      for (int64_t j = 0; j < len; ++j) {
        const size_t at = static_cast<size_t>(base + j * inner);
        y.f[at] = norm > 0.0 ? static_cast<float>(x.f[at] / norm) : x.f[at];
      }
    }
  }
  ctx.output(0) = std::move(y);
  return Status::Ok();
}

// Local response normalization across channels (AlexNet, GoogLeNet): y = x / (bias +
// alpha / size * sum of x^2 over the channels c - floor((size-1)/2) .. c + ceil((size-1)/2))^beta.
Status Lrn(OpContext& ctx) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  if (x.rank() < 2) return ctx.Error("X has rank " + Str(x.rank()) + ", not at least 2");
  const int64_t size = ctx.Attr("size", int64_t{0});
  if (size < 1) return ctx.Error("size " + Str(size) + " is not positive");
  const double alpha = ctx.Attr("alpha", 0.0001f), beta = ctx.Attr("beta", 0.75f);
  const double bias = ctx.Attr("bias", 1.0f);
  const int64_t channels = x.shape[1];
  const int64_t inner = ShapeSize(std::vector<int64_t>(x.shape.begin() + 2, x.shape.end()));
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  Tensor y = Tensor::Float(x.shape);
  for (int64_t n = 0; n < x.shape[0]; ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t lo = std::max<int64_t>(0, c - before);
      const int64_t hi = std::min<int64_t>(channels - 1, c + after);
      for (int64_t i = 0; i < inner; ++i) {
        double square_sum = 0.0;
        for (int64_t k = lo; k <= hi; ++k) {
          const double v = x.f[static_cast<size_t>((n * channels + k) * inner + i)];
          square_sum += v * v;
        }
        const size_t at = static_cast<size_t>((n * channels + c) * inner + i);
        y.f[at] = static_cast<float>(x.f[at] / std::pow(bias + alpha / size * square_sum, beta));
      }
    }
  }
  ctx.output(0) = std::move(y);
  return Status::Ok();
}

// (X - mean) / (sqrt(var) + 1e-9), mean and var over `axes` (default [0, 2, 3]).
Status MeanVarianceNormalization(OpContext& ctx) {
  auto x_or = FloatInput(ctx, 0);
  if (!x_or.ok()) return x_or.status();
  const Tensor& x = **x_or;
  std::vector<bool> reduced(x.shape.size(), false);
  for (int64_t a : ctx.Attr("axes", std::vector<int64_t>{0, 2, 3})) {
    auto axis = NormalizeAxis(ctx, a, x.rank());
    if (!axis.ok()) return axis.status();
    if (x.rank() == 0) return ctx.Error("X is a scalar");
    if (reduced[static_cast<size_t>(*axis)]) return ctx.Error("axes repeat axis " + Str(a));
    reduced[static_cast<size_t>(*axis)] = true;
  }
  // Each element's statistics slot: its index over the kept axes.
  std::vector<int64_t> kept_shape;
  for (size_t a = 0; a < x.shape.size(); ++a) kept_shape.push_back(reduced[a] ? 1 : x.shape[a]);
  const std::vector<int64_t> slot = BroadcastIndex(kept_shape, x.shape);
  const int64_t slots = ShapeSize(kept_shape);
  std::vector<double> sum(static_cast<size_t>(slots), 0.0), sq(static_cast<size_t>(slots), 0.0);
  std::vector<int64_t> count(static_cast<size_t>(slots), 0);
  for (size_t i = 0; i < x.f.size(); ++i) {
    sum[slot[i]] += x.f[i];
    ++count[slot[i]];
  }
  for (int64_t s = 0; s < slots; ++s) {
    if (count[s] > 0) sum[s] /= static_cast<double>(count[s]);
  }
  for (size_t i = 0; i < x.f.size(); ++i) {
    const double d = x.f[i] - sum[slot[i]];
    sq[slot[i]] += d * d;
  }
  Tensor y = Tensor::Float(x.shape);
  for (size_t i = 0; i < x.f.size(); ++i) {
    const int64_t s = slot[i];
    const double sd = std::sqrt(sq[s] / static_cast<double>(count[s]));
    y.f[i] = static_cast<float>((x.f[i] - sum[s]) / (sd + 1e-9));
  }
  ctx.output(0) = std::move(y);
  return Status::Ok();
}

}  // namespace

void RegisterNnOps(OpTable* table) {
  (*table)["Conv"] = Conv;
  (*table)["ConvTranspose"] = ConvTranspose;
  (*table)["MaxPool"] = MaxPool;
  (*table)["AveragePool"] = AveragePool;
  (*table)["LpPool"] = LpPool;
  (*table)["GlobalMaxPool"] = GlobalMaxPool;
  (*table)["GlobalAveragePool"] = GlobalAveragePool;
  (*table)["GlobalLpPool"] = GlobalLpPool;
  (*table)["BatchNormalization"] = BatchNormalization;
  (*table)["InstanceNormalization"] = InstanceNormalization;
  (*table)["LayerNormalization"] = LayerNormalization;
  (*table)["GroupNormalization"] = GroupNormalization;
  (*table)["LpNormalization"] = LpNormalization;
  (*table)["LRN"] = Lrn;
  (*table)["MeanVarianceNormalization"] = MeanVarianceNormalization;
}

}  // namespace reinit::exec

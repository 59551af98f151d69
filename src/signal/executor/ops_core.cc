// The table, the OpContext, the shared helpers, and the core ops: Identity, Dropout
// (inference), Constant, MatMul, Gemm.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "parallel.h"
#include "signal/executor/executor.h"
#include "signal/executor/ops.h"

namespace reinit::exec {

// ---- OpContext ---------------------------------------------------------------------------------

StatusOr<const Tensor*> OpContext::Input(int k, DType type) const {
  if (!has_input(k)) return Error("input " + std::to_string(k) + " is missing");
  if (inputs_[k]->type != type) {
    return Error("input " + std::to_string(k) + " '" + node_.input(k) + "' is " +
                 DTypeName(inputs_[k]->type) + ", expected " + DTypeName(type));
  }
  return inputs_[k];
}

StatusOr<std::vector<int64_t>> OpContext::Ints(int k) const {
  auto t = Input(k, DType::kInt64);
  if (!t.ok()) return t.status();
  return (*t)->i;
}

const onnx::AttributeProto* OpContext::FindAttr(const std::string& name) const {
  for (const auto& a : node_.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t OpContext::Attr(const std::string& name, int64_t fallback) const {
  const auto* a = FindAttr(name);
  return a ? a->i() : fallback;
}

float OpContext::Attr(const std::string& name, float fallback) const {
  const auto* a = FindAttr(name);
  return a ? a->f() : fallback;
}

std::string OpContext::Attr(const std::string& name, const std::string& fallback) const {
  const auto* a = FindAttr(name);
  return a ? a->s() : fallback;
}

std::vector<int64_t> OpContext::Attr(const std::string& name,
                                     const std::vector<int64_t>& fallback) const {
  const auto* a = FindAttr(name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

std::vector<float> OpContext::Attr(const std::string& name,
                                   const std::vector<float>& fallback) const {
  const auto* a = FindAttr(name);
  return a ? std::vector<float>(a->floats().begin(), a->floats().end()) : fallback;
}

Status OpContext::Error(const std::string& what) const { return ModelError(what); }

// ---- Helpers -----------------------------------------------------------------------------------

StatusOr<std::vector<int64_t>> BroadcastShape(const std::vector<int64_t>& a,
                                              const std::vector<int64_t>& b) {
  const size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t da = k < rank - a.size() ? 1 : a[k - (rank - a.size())];
    const int64_t db = k < rank - b.size() ? 1 : b[k - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return ModelError("shapes " + ShapeString(a) + " and " + ShapeString(b) +
                        " do not broadcast");
    }
    out[k] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> BroadcastIndex(const std::vector<int64_t>& shape,
                                    const std::vector<int64_t>& out_shape) {
  const size_t rank = out_shape.size();
  const size_t offset = rank - shape.size();
  // Stride of each output axis in the input (0 where the input broadcasts).
  std::vector<int64_t> stride(rank, 0);
  int64_t s = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    stride[k + offset] = shape[k] == 1 ? 0 : s;
    s *= shape[k];
  }
  std::vector<int64_t> index(static_cast<size_t>(ShapeSize(out_shape)));
  std::vector<int64_t> pos(rank, 0);
  int64_t at = 0;
  for (size_t n = 0; n < index.size(); ++n) {
    index[n] = at;
    for (size_t k = rank; k-- > 0;) {
      if (++pos[k] < out_shape[k]) {
        at += stride[k];
        break;
      }
      at -= stride[k] * (out_shape[k] - 1);
      pos[k] = 0;
    }
  }
  return index;
}

StatusOr<int64_t> NormalizeAxis(const OpContext& ctx, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) {
    return ctx.Error("axis " + std::to_string(axis) + " is out of range for rank " +
                     std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

// Truncation toward zero; NaN to 0 and values past int64's range to its ends (a plain cast
// would be undefined behaviour there).
namespace {
int64_t SaturatingInt(float v) {
  if (std::isnan(v)) return 0;
  if (v >= 9.2233720368547758e18f) return INT64_MAX;
  if (v <= -9.2233720368547758e18f) return INT64_MIN;
  return static_cast<int64_t>(v);
}
}  // namespace

Tensor CastTo(const Tensor& in, DType type) {
  if (in.type == type) return in;
  Tensor out;
  out.type = type;
  out.shape = in.shape;
  const size_t n = static_cast<size_t>(in.size());
  if (type == DType::kFloat) {
    out.f.resize(n);
    for (size_t k = 0; k < n; ++k) out.f[k] = static_cast<float>(in.i[k]);
  } else if (in.type == DType::kFloat) {
    out.i.resize(n);
    for (size_t k = 0; k < n; ++k) {
      out.i[k] = type == DType::kBool ? in.f[k] != 0.0f : SaturatingInt(in.f[k]);
    }
  } else {
    out.i = in.i;
    if (type == DType::kBool) {
      for (int64_t& v : out.i) v = v != 0;
    }
  }
  return out;
}

// ---- Ops ---------------------------------------------------------------------------------------

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapConst = Eigen::Map<const RowMatrix>;
using Map = Eigen::Map<RowMatrix>;

// C[m, n] (+)= A[m, k] · B[k, n], row-major, rows of A split over the pool when it pays.
void MatMulInto(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n,
                bool accumulate) {
  constexpr int64_t kRowsPerPiece = 64;
  const int64_t pieces = m * k * n > (1 << 18) ? (m + kRowsPerPiece - 1) / kRowsPerPiece : 1;
  const int64_t rows = pieces == 1 ? m : kRowsPerPiece;
  ParallelFor(static_cast<size_t>(pieces), [&](size_t p) {
    const int64_t r0 = static_cast<int64_t>(p) * rows;
    const int64_t r = std::min(rows, m - r0);
    MapConst A(a + r0 * k, r, k);
    MapConst B(b, k, n);
    Map C(c + r0 * n, r, n);
    if (accumulate) {
      C.noalias() += A * B;
    } else {
      C.noalias() = A * B;
    }
  });
}

Status Identity(OpContext& ctx) {
  if (!ctx.has_input(0)) return ctx.Error("input 0 is missing");
  ctx.output(0) = ctx.input(0);
  return Status::Ok();
}

// Inference: the input as it is; the optional mask output is all true.
Status Dropout(OpContext& ctx) {
  REINIT_RETURN_IF_ERROR(Identity(ctx));
  if (ctx.output_count() > 1) {
    ctx.output(1) = Tensor::Bool(ctx.input(0).shape);
    std::fill(ctx.output(1).i.begin(), ctx.output(1).i.end(), 1);
  }
  return Status::Ok();
}

Status Constant(OpContext& ctx) {
  const auto& node = ctx.node();
  for (const auto& a : node.attribute()) {
    if (a.name() == "value") {
      auto t = DecodeTensor(a.t());
      if (!t.ok()) return t.status();
      ctx.output(0) = std::move(*t);
      return Status::Ok();
    }
    if (a.name() == "value_float") {
      ctx.output(0) = Tensor::Float({}, {a.f()});
      return Status::Ok();
    }
    if (a.name() == "value_floats") {
      ctx.output(0) = Tensor::Float({a.floats_size()}, {a.floats().begin(), a.floats().end()});
      return Status::Ok();
    }
    if (a.name() == "value_int") {
      ctx.output(0) = Tensor::Int64({}, {a.i()});
      return Status::Ok();
    }
    if (a.name() == "value_ints") {
      ctx.output(0) = Tensor::Int64({a.ints_size()}, {a.ints().begin(), a.ints().end()});
      return Status::Ok();
    }
  }
  return ctx.Error("no value attribute the executor reads (value, value_float(s), value_int(s))");
}

// numpy.matmul: 1-D operands promoted and the added axis removed; batch axes broadcast.
Status MatMul(OpContext& ctx) {
  auto a_or = ctx.Input(0, DType::kFloat);
  auto b_or = ctx.Input(1, DType::kFloat);
  if (!a_or.ok()) return a_or.status();
  if (!b_or.ok()) return b_or.status();
  const Tensor& a = **a_or;
  const Tensor& b = **b_or;
  if (a.rank() == 0 || b.rank() == 0) return ctx.Error("MatMul of a scalar");
  std::vector<int64_t> as = a.shape, bs = b.shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  if (bs[bs.size() - 2] != k) {
    return ctx.Error("shapes " + ShapeString(a.shape) + " and " + ShapeString(b.shape) +
                     " cannot be multiplied");
  }
  const std::vector<int64_t> a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  auto batch = BroadcastShape(a_batch, b_batch);
  if (!batch.ok()) return ctx.Error(batch.status().message());
  const std::vector<int64_t> ai = BroadcastIndex(a_batch, *batch);
  const std::vector<int64_t> bi = BroadcastIndex(b_batch, *batch);
  std::vector<int64_t> out_shape = *batch;
  if (a.rank() > 1) out_shape.push_back(m);
  if (b.rank() > 1) out_shape.push_back(n);
  Tensor out = Tensor::Float(out_shape);
  for (size_t p = 0; p < ai.size(); ++p) {
    MatMulInto(a.f.data() + ai[p] * m * k, b.f.data() + bi[p] * k * n,
               out.f.data() + static_cast<int64_t>(p) * m * n, m, k, n, false);
  }
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

// Y = alpha · op(A) · op(B) + beta · C, C broadcast to [M, N].
Status Gemm(OpContext& ctx) {
  auto a_or = ctx.Input(0, DType::kFloat);
  auto b_or = ctx.Input(1, DType::kFloat);
  if (!a_or.ok()) return a_or.status();
  if (!b_or.ok()) return b_or.status();
  const Tensor& a = **a_or;
  const Tensor& b = **b_or;
  if (a.rank() != 2 || b.rank() != 2) return ctx.Error("Gemm needs 2-D A and B");
  const bool ta = ctx.Attr("transA", int64_t{0}) != 0;
  const bool tb = ctx.Attr("transB", int64_t{0}) != 0;
  const float alpha = ctx.Attr("alpha", 1.0f), beta = ctx.Attr("beta", 1.0f);
  const int64_t m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1];
  const int64_t kb = tb ? b.shape[1] : b.shape[0], n = tb ? b.shape[0] : b.shape[1];
  if (k != kb) {
    return ctx.Error("A " + ShapeString(a.shape) + " and B " + ShapeString(b.shape) +
                     " do not multiply (transA " + std::to_string(ta) + ", transB " +
                     std::to_string(tb) + ")");
  }
  // Operands laid out as [M, K] and [K, N] for MatMulInto.
  std::vector<float> at, bt;
  const float* pa = a.f.data();
  const float* pb = b.f.data();
  if (ta) {
    at.resize(a.f.size());
    Map(at.data(), m, k) = MapConst(a.f.data(), k, m).transpose();
    pa = at.data();
  }
  if (tb) {
    bt.resize(b.f.size());
    Map(bt.data(), k, n) = MapConst(b.f.data(), n, k).transpose();
    pb = bt.data();
  }
  Tensor out = Tensor::Float({m, n});
  MatMulInto(pa, pb, out.f.data(), m, k, n, false);
  if (alpha != 1.0f) {
    for (float& v : out.f) v *= alpha;
  }
  if (ctx.has_input(2) && beta != 0.0f) {
    auto c_or = ctx.Input(2, DType::kFloat);
    if (!c_or.ok()) return c_or.status();
    const Tensor& c = **c_or;
    auto shape = BroadcastShape(c.shape, out.shape);
    if (!shape.ok() || *shape != out.shape) {
      return ctx.Error("C " + ShapeString(c.shape) + " does not broadcast to " +
                       ShapeString(out.shape));
    }
    const std::vector<int64_t> ci = BroadcastIndex(c.shape, out.shape);
    for (size_t p = 0; p < out.f.size(); ++p) out.f[p] += beta * c.f[ci[p]];
  }
  ctx.output(0) = std::move(out);
  return Status::Ok();
}

}  // namespace

void RegisterCoreOps(OpTable* table) {
  (*table)["Identity"] = Identity;
  (*table)["Dropout"] = Dropout;
  (*table)["Constant"] = Constant;
  (*table)["MatMul"] = MatMul;
  (*table)["Gemm"] = Gemm;
}

const OpTable& Ops() {
  static const OpTable table = [] {
    OpTable t;
    RegisterCoreOps(&t);
    RegisterElementwiseOps(&t);
    RegisterNnOps(&t);
    RegisterShapeOps(&t);
    RegisterRecurrentOps(&t);
    return t;
  }();
  return table;
}

}  // namespace reinit::exec

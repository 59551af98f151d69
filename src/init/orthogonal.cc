#include "init/orthogonal.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <functional>

#include "parallel.h"

// Why the result is Haar-distributed.
//
// Let A be an m x n matrix (m >= n) of i.i.d. N(0, 1) entries and A = QR its Householder QR:
// H_k = I - τ_k v_k v_kᵀ acts on rows k..m-1 and maps x_k, rows k..m-1 of column k of
// H_{k-1}···H_0 A, to β_k e_1, so R_kk = β_k and Q = H_0 H_1 ··· H_{n-1} [I_n; 0]. Mezzadri
// (2007, "How to generate random matrices from the classical compact groups") shows that
// Q·diag(sign R_kk) is Haar-distributed: A's law is invariant under A -> UA for orthogonal U, and
// the QR with R_kk > 0 is unique, so its Q factor is equivariant (it becomes UQ) and has the
// invariant law; for m > n it is the first n columns of a Haar m x m matrix.
//
// Stewart (1980): H_0..H_{k-1} are functions of A's columns 0..k-1 only. Column k is
// independent of them and its law is invariant under orthogonal maps, so H_{k-1}···H_0 a_k is
// again i.i.d. N(0, 1) and independent of H_0..H_{k-1}; x_k, its rows k..m-1, is a fresh
// standard Gaussian vector of length m - k. So drawing x_k directly, for k = 0..n-1, gives the
// reflectors (and the signs of β_k) the same joint law as in the QR of A, and A itself, with its
// trailing updates A <- H_k A, is never needed. What is left is forming Q·D, D = diag(sign β_k).
//
// Forming Q. The reflectors of panel p (columns j..j+b-1) combine into one block reflector
// (Schreiber & Van Loan 1989, compact WY): H_j···H_{j+b-1} = I - V T Vᵀ, with V (m-j x b)
// holding v_j..v_{j+b-1} (unit diagonal, zeros above it) and T upper triangular from LAPACK's
// dlarft recursion. As in LAPACK's dorgqr, Q = H_0(H_1(···(H_{n-1} E))) with E = [I_n; 0] is
// accumulated from the last panel to the first: panel p changes only rows and columns >= j (E's
// columns < j are zero in rows >= j), C <- C - V (T (Vᵀ C)) for C = Q[j:m, j:n]. Those columns
// are cut into slabs of fixed width, one task each; the reflectors of all panels are independent
// of Q and of each other, so they are built up front, one task per panel.

namespace reinit {
namespace {

// Reflectors per panel: wide enough that C -= V W runs near Eigen's peak GEMM rate, narrow
// enough that the level-2 work (building V and T, ~3 m b flops per column) stays small.
constexpr int64_t kPanel = 64;
// Columns of Q per task in a panel's update. Each panel's first slab also holds its own columns.
constexpr int64_t kSlab = 128;
static_assert(kSlab >= kPanel);
// Normals per task when drawing the reflectors' vectors.
constexpr int64_t kFillChunk = int64_t{1} << 16;
// Output rows per task when writing the result.
constexpr int64_t kOutRows = 64;
// Below this many matrix elements the tasks run on the calling thread: waking the pool would
// cost more than the work. Same pieces, same values either way.
constexpr int64_t kParallelElements = int64_t{1} << 14;

// Column-major and allocated by Eigen, so aligned: every block's alignment, and with it Eigen's
// choice between vector and scalar code at its edges, depends on the matrix size only.
template <typename T>
using ColMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;

// Turns x (length L >= 1) into a Householder vector in place, LAPACK's dlarfg:
//   β = -sign(x_0) ||x||,  τ = (β - x_0) / β,  v = [1; x_1: / (x_0 - β)],
// so that (I - τ v vᵀ) x = β e_1. When x_1: = 0 (always for L = 1): τ = 0, β = x_0.
// Sums in double, in a fixed order. Returns β.
template <typename T>
double MakeReflector(T* x, int64_t length, double* tau) {
  const double alpha = x[0];
  double tail = 0;
  for (int64_t i = 1; i < length; ++i) tail += static_cast<double>(x[i]) * x[i];
  x[0] = T(1);
  if (tail == 0) {
    *tau = 0;
    return alpha;
  }
  const double norm = std::sqrt(alpha * alpha + tail);
  const double beta = alpha >= 0 ? -norm : norm;
  *tau = (beta - alpha) / beta;
  const double scale = 1 / (alpha - beta);
  for (int64_t i = 1; i < length; ++i) x[i] = static_cast<T>(x[i] * scale);
  return beta;
}

// The upper triangular T of I - V T Vᵀ = H_0···H_{b-1}, LAPACK's dlarft (forward, columnwise):
//   T_ii = τ_i,  T[0:i, i] = -τ_i T[0:i, 0:i] (V[:, 0:i]ᵀ v_i),
// with G = Vᵀ V holding the dot products. The O(b³) recursion runs in double.
template <typename T>
ColMatrix<T> MakeT(const ColMatrix<T>& gram, const double* tau, int64_t b) {
  Eigen::MatrixXd t = Eigen::MatrixXd::Zero(b, b);
  std::vector<double> w(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t r = 0; r < i; ++r) w[r] = -tau[i] * static_cast<double>(gram(r, i));
    for (int64_t r = 0; r < i; ++r) {
      double s = 0;
      for (int64_t c = r; c < i; ++c) s += t(r, c) * w[c];
      t(r, i) = s;
    }
    t(i, i) = tau[i];
  }
  return t.cast<T>();
}

// Runs task(0), ..., task(count - 1): on the worker threads when `parallel`, else in order on
// the calling thread.
void RunTasks(bool parallel, int64_t count, const std::function<void(size_t)>& task) {
  if (parallel) {
    ParallelFor(static_cast<size_t>(count), task);
  } else {
    for (int64_t i = 0; i < count; ++i) task(static_cast<size_t>(i));
  }
}

// Draws x_k, rows k..m-1 of column k of v (m x n), for every k: stream elements k·m + k ..
// k·m + m - 1, in chunks of kFillChunk rows. The entries above the diagonal are left as they are.
template <typename T>
void DrawReflectorVectors(StreamKey key, bool parallel, ColMatrix<T>* v) {
  const int64_t m = v->rows(), n = v->cols();
  struct Chunk {
    int64_t col, row, length;
  };
  std::vector<Chunk> chunks;
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t r = k; r < m; r += kFillChunk)
      chunks.push_back({k, r, std::min(kFillChunk, m - r)});
  }
  RunTasks(parallel, static_cast<int64_t>(chunks.size()), [&](size_t i) {
    const Chunk& c = chunks[i];
    FillNormal<T>(key, 1.0, static_cast<uint64_t>(c.col * m + c.row),
                  std::span<T>(&(*v)(c.row, c.col), static_cast<size_t>(c.length)));
  });
}

// Turns v's columns into Householder vectors (zeros above the diagonal within each panel) and
// returns each panel's T, one task per panel. scale[k] = g·sign(β_k), the Mezzadri correction.
template <typename T>
std::vector<ColMatrix<T>> MakeReflectors(double gain, bool parallel, ColMatrix<T>* v,
                                         std::vector<double>* scale) {
  const int64_t m = v->rows(), n = v->cols();
  const int64_t panels = (n + kPanel - 1) / kPanel;
  std::vector<double> tau(static_cast<size_t>(n));
  std::vector<ColMatrix<T>> t(static_cast<size_t>(panels));
  RunTasks(parallel, panels, [&](size_t p) {
    const int64_t j = static_cast<int64_t>(p) * kPanel, b = std::min(kPanel, n - j);
    for (int64_t k = j; k < j + b; ++k) {
      const double beta = MakeReflector(&(*v)(k, k), m - k, &tau[k]);
      (*scale)[k] = beta >= 0 ? gain : -gain;
      for (int64_t r = j; r < k; ++r) (*v)(r, k) = T(0);
    }
    const auto vp = v->block(j, j, m - j, b);
    const ColMatrix<T> gram = vp.transpose() * vp;
    t[p] = MakeT<T>(gram, &tau[j], b);
  });
  return t;
}

// Q = H_0(H_1(···(H_{n-1} E))) from the reflectors in v and the panels' T, last panel first;
// each panel's slabs in parallel.
template <typename T>
ColMatrix<T> AccumulateQ(const ColMatrix<T>& v, const std::vector<ColMatrix<T>>& t, bool parallel) {
  const int64_t m = v.rows(), n = v.cols();
  const int64_t panels = static_cast<int64_t>(t.size());
  ColMatrix<T> q(m, n);
  for (int64_t p = panels - 1; p >= 0; --p) {
    const int64_t j = p * kPanel, b = std::min(kPanel, n - j), height = m - j;
    const int64_t slabs = (n - j + kSlab - 1) / kSlab;
    const auto vp = v.block(j, j, height, b);
    const ColMatrix<T>& tp = t[p];
    RunTasks(parallel, slabs, [&](size_t s) {
      const int64_t c0 = j + static_cast<int64_t>(s) * kSlab, width = std::min(kSlab, n - c0);
      if (s == 0) {
        // The panel's own columns, untouched so far: E's, over all m rows (rows < j of every
        // column >= j stay zero from here on).
        q.middleCols(j, b).setZero();
        for (int64_t k = j; k < j + b; ++k) q(k, k) = T(1);
      }
      auto c = q.block(j, c0, height, width);
      const ColMatrix<T> w = vp.transpose() * c;
      const ColMatrix<T> tw = tp * w;
      c.noalias() -= vp * tw;
    });
  }
  return q;
}

// W = g·(Q D)ᵀ when rows < cols, else g·Q D: W[i][c] = scale[i]·Q[c][i] (rows < cols, so W
// row i is Q's column i), W[r][i] = scale[i]·Q[r][i] otherwise.
template <typename T>
void WriteScaledQ(const ColMatrix<T>& q, const std::vector<double>& scale, int64_t rows,
                  int64_t cols, bool parallel, std::span<T> out) {
  const int64_t row_blocks = (rows + kOutRows - 1) / kOutRows;
  RunTasks(parallel, row_blocks, [&](size_t blk) {
    const int64_t r0 = static_cast<int64_t>(blk) * kOutRows, r1 = std::min(rows, r0 + kOutRows);
    if (rows < cols) {
      for (int64_t i = r0; i < r1; ++i) {
        for (int64_t c = 0; c < cols; ++c) out[i * cols + c] = static_cast<T>(scale[i] * q(c, i));
      }
    } else {
      for (int64_t i = 0; i < cols; ++i) {
        for (int64_t r = r0; r < r1; ++r) out[r * cols + i] = static_cast<T>(scale[i] * q(r, i));
      }
    }
  });
}

template <typename T>
void FillOrthogonalImpl(StreamKey key, int64_t rows, int64_t cols, double gain, std::span<T> out) {
  const int64_t m = std::max(rows, cols), n = std::min(rows, cols);
  if (n <= 0) return;
  Eigen::initParallel();
  const bool parallel = m * n >= kParallelElements;
  ColMatrix<T> v(m, n);
  DrawReflectorVectors(key, parallel, &v);
  std::vector<double> scale(static_cast<size_t>(n));
  const std::vector<ColMatrix<T>> t = MakeReflectors(gain, parallel, &v, &scale);
  const ColMatrix<T> q = AccumulateQ(v, t, parallel);
  WriteScaledQ(q, scale, rows, cols, parallel, out);
}

template <typename T>
void ScatterRowsImpl(std::span<const T> matrix, const std::vector<int64_t>& shape, int output_axis,
                     std::span<T> tensor) {
  // Tensor index = (outer, row, inner) with outer = ∏shape[:axis], inner = ∏shape[axis+1:];
  // column = outer * inner_size + inner.
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < output_axis; ++d) outer *= shape[d];
  for (size_t d = output_axis + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t rows = shape.empty() ? 1 : shape[output_axis];
  const int64_t cols = outer * inner;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < inner; ++i) {
        tensor[(o * rows + r) * inner + i] = matrix[r * cols + o * inner + i];
      }
    }
  }
}

}  // namespace

void FillOrthogonal(StreamKey key, int64_t rows, int64_t cols, double gain, std::span<float> out) {
  FillOrthogonalImpl(key, rows, cols, gain, out);
}

void FillOrthogonal(StreamKey key, int64_t rows, int64_t cols, double gain, std::span<double> out) {
  FillOrthogonalImpl(key, rows, cols, gain, out);
}

void ScatterRows(std::span<const float> matrix, const std::vector<int64_t>& shape, int output_axis,
                 std::span<float> tensor) {
  ScatterRowsImpl(matrix, shape, output_axis, tensor);
}

void ScatterRows(std::span<const double> matrix, const std::vector<int64_t>& shape, int output_axis,
                 std::span<double> tensor) {
  ScatterRowsImpl(matrix, shape, output_axis, tensor);
}

}  // namespace reinit

// Orthogonal initialization (Saxe et al. 2013) with the distribution PyTorch, Keras and JAX draw
// from, computed fast enough for 4096 x 4096 weights and split across threads.
//
// For a weight viewed as a (rows x cols) matrix, rows = output units, the frameworks draw a
// Gaussian matrix A of shape (m, n) = (max, min), take its Householder QR A = QR, multiply
// column k of Q by sign(R_kk) (Mezzadri 2007: without it Q is not Haar-distributed), transpose
// when rows < cols and multiply by the gain g. Then W Wᵀ = g²I if rows <= cols, else
// Wᵀ W = g²I, and W/g is Haar-distributed (uniform) over such matrices.
//
// FillOrthogonal draws from exactly that distribution for about half the work (Stewart 1980,
// "The efficient generation of random orthogonal matrices with an application to condition
// estimators"): the k-th Householder reflector of the QR of a Gaussian matrix is built from a
// vector that is again i.i.d. standard Gaussian and independent of the earlier reflectors, so
// it is built from fresh normals and the QR's trailing updates are never done; only Q is
// formed, ~2mn² - 2n³/3 flops, as blocked products (compact WY). The argument is spelled out
// in orthogonal.cc.
//
// The result depends only on (key, rows, cols, gain): not on the thread count (the work is cut
// into pieces fixed by the matrix size), not on where `out` lives in memory. It may differ in
// the last bits between machines whose caches differ, as Eigen's product blocking does.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "init/rng.h"

namespace reinit {

// Fills `out` (rows * cols values, row-major) with a gain-scaled orthogonal matrix drawn from
// the stream `key`, in the precision of `out` (float for float32/float16/bfloat16 tensors, as
// PyTorch does in float32). The k-th reflector's vector takes the stream's elements k·m + i,
// k <= i < m (m = max(rows, cols)). rows and cols must be positive.
void FillOrthogonal(StreamKey key, int64_t rows, int64_t cols, double gain, std::span<float> out);
void FillOrthogonal(StreamKey key, int64_t rows, int64_t cols, double gain, std::span<double> out);

// Writes a row-major (rows x cols) matrix into a tensor of `shape` (row-major) whose axis
// `output_axis` indexes the rows and whose other axes, in order, flatten into the columns.
// Every element of `tensor` (∏shape of them) is written.
void ScatterRows(std::span<const float> matrix, const std::vector<int64_t>& shape, int output_axis,
                 std::span<float> tensor);
void ScatterRows(std::span<const double> matrix, const std::vector<int64_t>& shape, int output_axis,
                 std::span<double> tensor);

}  // namespace reinit

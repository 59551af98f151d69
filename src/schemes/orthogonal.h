// Orthogonal initialization (Saxe et al. 2013), as PyTorch, Keras and JAX do it.
//
// For a weight viewed as a (rows x cols) matrix, rows = output units: draw a Gaussian matrix A
// of shape (max, min), take its reduced QR A = QR, multiply column j of Q by sign(R_jj)
// (Mezzadri 2007: without it Q is not Haar-distributed), transpose when rows < cols, and
// multiply by the gain. Then W W^T = g^2 I if rows <= cols, else W^T W = g^2 I.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "rng.h"

namespace reinit {

// Fills `out` (rows * cols values, row-major) with a gain-scaled orthogonal matrix drawn from
// the stream `key`.
void FillOrthogonal(StreamKey key, int64_t rows, int64_t cols, double gain, std::span<double> out);

// Writes a row-major (rows x cols) matrix into a tensor of `shape` (row-major) whose axis
// `output_axis` indexes the rows and whose other axes, in order, flatten into the columns.
void ScatterRows(std::span<const double> matrix, const std::vector<int64_t>& shape, int output_axis,
                 std::span<double> tensor);

}  // namespace reinit

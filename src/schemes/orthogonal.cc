#include "schemes/orthogonal.h"

#include <Eigen/Dense>

namespace reinit {

void FillOrthogonal(StreamKey key, int64_t rows, int64_t cols, double gain, std::span<double> out) {
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t big = std::max(rows, cols), small = std::min(rows, cols);
  Matrix a(big, small);
  FillNormal<double>(key, 1.0, 0, std::span<double>(a.data(), static_cast<size_t>(big * small)));
  Eigen::HouseholderQR<Matrix> qr(a);
  Matrix q = qr.householderQ() * Matrix::Identity(big, small);
  const auto& r = qr.matrixQR();
  for (int64_t j = 0; j < small; ++j) {
    if (r(j, j) < 0) q.col(j) *= -1;
  }
  q *= gain;
  Eigen::Map<Matrix> w(out.data(), rows, cols);
  if (rows < cols)
    w = q.transpose();
  else
    w = q;
}

void ScatterRows(std::span<const double> matrix, const std::vector<int64_t>& shape, int output_axis,
                 std::span<double> tensor) {
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

}  // namespace reinit

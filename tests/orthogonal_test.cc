// FillOrthogonal on its own: orthogonality for every shape and both precisions, the same bytes
// for every thread count, and evidence that the matrices are Haar-distributed, each statistic
// checked against its known moments within 5 standard errors of its sample size.
#include "init/orthogonal.h"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "init/rng.h"
#include "parallel.h"

namespace reinit {
namespace orthogonal_test {
namespace {

constexpr double kSigmas = 5.0;

template <typename T>
std::vector<T> Draw(StreamKey key, int64_t rows, int64_t cols, double gain = 1.0) {
  std::vector<T> w(static_cast<size_t>(rows * cols));
  FillOrthogonal(key, rows, cols, gain, std::span<T>(w));
  return w;
}

Eigen::MatrixXd ToMatrix(const auto& w, int64_t rows, int64_t cols) {
  Eigen::MatrixXd m(rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) m(r, c) = static_cast<double>(w[r * cols + c]);
  }
  return m;
}

template <typename T>
class OrthogonalTyped : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(OrthogonalTyped, Precisions);

// W Wᵀ = g²I (rows <= cols) or Wᵀ W = g²I, Gram computed in double. Tolerance 10·max(m, n)·ε·g²:
// the error of a product of Householder reflections grows at most linearly with the dimension
// (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §19.3); in practice it is a
// few ε. A wrong reflector, block or sign gives an error of order 1.
TYPED_TEST(OrthogonalTyped, OrthogonalForSquareTallWideAndTinyShapesWithGain) {
  using T = TypeParam;
  const struct {
    int64_t rows, cols;
    double gain;
  } shapes[] = {{1, 1, 1.0},   {1, 7, 1.0},       {7, 1, 2.0},   {2, 2, 1.0},
                {64, 64, 1.0}, {65, 65, 5.0 / 3}, {300, 300, 1}, {257, 130, std::sqrt(2.0)},
                {130, 257, 1}, {1000, 3, 0.5},    {3, 1000, 1},  {129, 128, 1.0}};
  for (const auto& s : shapes) {
    const std::string what = std::to_string(s.rows) + "x" + std::to_string(s.cols);
    const auto w = ToMatrix(Draw<T>(KeyFor(7, what), s.rows, s.cols, s.gain), s.rows, s.cols);
    const Eigen::MatrixXd gram =
        s.rows <= s.cols ? Eigen::MatrixXd(w * w.transpose()) : Eigen::MatrixXd(w.transpose() * w);
    const double g2 = s.gain * s.gain;
    const double error =
        (gram - g2 * Eigen::MatrixXd::Identity(gram.rows(), gram.cols())).cwiseAbs().maxCoeff();
    EXPECT_LE(error, 10.0 * std::max(s.rows, s.cols) * std::numeric_limits<T>::epsilon() * g2)
        << what;
  }
}

// Sizes with several panels (64 reflectors), slabs (128 columns) and ragged edges, and one with
// several fill chunks (65536 rows) per column. The result must not depend on the thread count
// nor on the alignment of the output.
TYPED_TEST(OrthogonalTyped, SameBytesForEveryThreadCountAndOutputAddress) {
  using T = TypeParam;
  const std::pair<int64_t, int64_t> shapes[] = {{300, 300}, {257, 130}, {130, 257}, {70000, 3}};
  for (const auto& [rows, cols] : shapes) {
    const std::string what = std::to_string(rows) + "x" + std::to_string(cols);
    const StreamKey key = KeyFor(11, what);
    SetThreadCount(1);
    const std::vector<T> reference = Draw<T>(key, rows, cols);
    for (int threads : {2, 3, 8}) {
      SetThreadCount(threads);
      const std::vector<T> w = Draw<T>(key, rows, cols);
      EXPECT_EQ(std::memcmp(w.data(), reference.data(), w.size() * sizeof(T)), 0)
          << what << " threads " << threads;
    }
    // One element off Eigen's alignment.
    std::vector<T> shifted(reference.size() + 1);
    FillOrthogonal(key, rows, cols, 1.0, std::span<T>(shifted.data() + 1, reference.size()));
    EXPECT_EQ(std::memcmp(shifted.data() + 1, reference.data(), reference.size() * sizeof(T)), 0)
        << what << " shifted";
  }
  SetThreadCount(0);
}

TEST(Orthogonal, SameKeySameMatrixOtherKeyOtherMatrix) {
  const auto a = Draw<float>(KeyFor(1, "w"), 40, 30);
  EXPECT_EQ(a, Draw<float>(KeyFor(1, "w"), 40, 30));
  const auto b = Draw<float>(KeyFor(2, "w"), 40, 30);
  const auto c = Draw<float>(KeyFor(1, "v"), 40, 30);
  int equal_b = 0, equal_c = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    equal_b += a[i] == b[i];
    equal_c += a[i] == c[i];
  }
  EXPECT_EQ(equal_b, 0);
  EXPECT_EQ(equal_c, 0);
}

// Entries q of one Haar n x n matrix. Their mean is 1ᵀQ1 / n², and Q1 is uniform on the sphere
// of radius √n, so 1ᵀQ1 has mean 0 and variance n: SE of the mean n^-3/2 exactly. Their fourth
// moment is E q⁴ = 3/(n(n+2)) (kurtosis 3n/(n+2)); a permutation or signed identity would give
// n, a sign-biased matrix a large mean. SE of the sample kurtosis ≈ √(24/N) for N = n² nearly
// independent, nearly normal entries.
TEST(OrthogonalHaar, EntriesOfALargeMatrixHaveMeanZeroAndGaussianKurtosis) {
  const int64_t n = 400;
  const auto w = Draw<float>(KeyFor(3, "large"), n, n);
  double m1 = 0, m2 = 0, m4 = 0;
  for (float f : w) {
    const double x = f;
    m1 += x;
    m2 += x * x;
    m4 += x * x * x * x;
  }
  const double count = static_cast<double>(w.size());
  m1 /= count;
  m2 /= count;
  m4 /= count;
  EXPECT_NEAR(m1, 0, kSigmas * std::pow(n, -1.5));
  EXPECT_NEAR(m2, 1.0 / n, 1e-6);  // exact for an orthogonal matrix, up to float rounding
  EXPECT_NEAR(m4 / (m2 * m2), 3.0 * n / (n + 2), kSigmas * std::sqrt(24.0 / count));
}

// Over many keys, single entries of a rows x cols W: W's columns (rows >= cols) or rows are
// uniform on the unit sphere of R^m, m = max(rows, cols), so an entry q has E q = 0,
// E q² = 1/m, Var q² = 2(m-1)/(m²(m+2)) (q² ~ Beta(1/2, (m-1)/2)), and P(q > 0) = 1/2. Without
// the sign correction W[0][0] would be negative every time. The positions cover the first and
// last panels.
TEST(OrthogonalHaar, SingleEntriesOverManyKeys) {
  const int kDraws = 2000;
  const std::pair<int64_t, int64_t> shapes[] = {{8, 8}, {70, 70}, {70, 20}, {20, 70}};
  for (const auto& [rows, cols] : shapes) {
    const double m = static_cast<double>(std::max(rows, cols));
    const std::pair<int64_t, int64_t> positions[] = {
        {0, 0}, {rows - 1, cols - 1}, {rows / 2, cols - 1}, {rows - 1, 0}};
    std::vector<double> sum(4), sum2(4), positive(4);
    for (int d = 0; d < kDraws; ++d) {
      const auto w = Draw<double>(KeyFor(d, "entries"), rows, cols);
      for (int p = 0; p < 4; ++p) {
        const double q = w[positions[p].first * cols + positions[p].second];
        sum[p] += q;
        sum2[p] += q * q;
        positive[p] += q > 0;
      }
    }
    for (int p = 0; p < 4; ++p) {
      const std::string what = std::to_string(rows) + "x" + std::to_string(cols) + " at (" +
                               std::to_string(positions[p].first) + ", " +
                               std::to_string(positions[p].second) + ")";
      EXPECT_NEAR(sum[p] / kDraws, 0, kSigmas * std::sqrt(1 / m / kDraws)) << what;
      const double var_q2 = 2 * (m - 1) / (m * m * (m + 2));
      EXPECT_NEAR(sum2[p] / kDraws, 1 / m, kSigmas * std::sqrt(var_q2 / kDraws)) << what;
      EXPECT_NEAR(positive[p] / kDraws, 0.5, kSigmas * std::sqrt(0.25 / kDraws)) << what;
    }
  }
}

// For Q Haar on O(n): E tr Q = 0 and E (tr Q)² = 1 (n >= 2), and E (tr Q)⁴ = 3 once n >= 8
// (Diaconis & Shahshahani 1994: the moments of tr Q up to order n/2 are those of N(0, 1)), so
// Var (tr Q)² = 2. det Q = ±1 with probability 1/2 each.
TEST(OrthogonalHaar, TraceMomentsAndDeterminantSign) {
  const int kDraws = 4000;
  const int64_t n = 8;
  double trace = 0, trace2 = 0, positive_det = 0;
  for (int d = 0; d < kDraws; ++d) {
    const Eigen::MatrixXd q = ToMatrix(Draw<double>(KeyFor(d, "trace"), n, n), n, n);
    const double t = q.trace();
    trace += t;
    trace2 += t * t;
    positive_det += q.determinant() > 0;
  }
  EXPECT_NEAR(trace / kDraws, 0, kSigmas * std::sqrt(1.0 / kDraws));
  EXPECT_NEAR(trace2 / kDraws, 1, kSigmas * std::sqrt(2.0 / kDraws));
  EXPECT_NEAR(positive_det / kDraws, 0.5, kSigmas * std::sqrt(0.25 / kDraws));
}

TEST(ScatterRows, OutputAxisRowsAndTheOtherAxesAsColumns) {
  // A [2, 3, 2] tensor with output axis 1: 3 rows; column = axis-0 index * 2 + axis-2 index.
  std::vector<float> matrix(12), tensor(12);
  for (int i = 0; i < 12; ++i) matrix[i] = static_cast<float>(i);
  ScatterRows(matrix, {2, 3, 2}, 1, tensor);
  EXPECT_EQ(tensor, (std::vector<float>{0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11}));
}

}  // namespace
}  // namespace orthogonal_test
}  // namespace reinit

// Statistical checks for drawn weights, with tolerances derived from the sample size: every
// check allows 5 standard errors of the statistic it tests.
#pragma once

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace reinit_test {

inline double Mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
inline double Variance(const std::vector<double>& v) {
  const double m = Mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size() - 1);
}
inline double MaxAbs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Mean 0 and variance `var` within 5 standard errors for a normal sample.
inline void ExpectNormal(const std::vector<double>& v, double var, const std::string& what = "") {
  const double n = static_cast<double>(v.size());
  EXPECT_NEAR(Mean(v), 0, 5 * std::sqrt(var / n)) << what;
  EXPECT_NEAR(Variance(v), var, 5 * var * std::sqrt(2 / (n - 1))) << what;
}

// U(-b, b): variance b²/3 (SE from μ4 = b⁴/5), all inside, the extremes near ±b.
inline void ExpectUniform(const std::vector<double>& v, double b, const std::string& what = "") {
  const double n = static_cast<double>(v.size());
  const double var = b * b / 3, mu4 = std::pow(b, 4) / 5;
  EXPECT_NEAR(Mean(v), 0, 5 * std::sqrt(var / n)) << what;
  EXPECT_NEAR(Variance(v), var, 5 * std::sqrt((mu4 - var * var) / n)) << what;
  EXPECT_LE(MaxAbs(v), b * (1 + 1e-6)) << what;
  // P(max |x| < b(1 - 20/n)) = (1 - 20/n)^n ≈ e^-20.
  EXPECT_GT(MaxAbs(v), b * (1 - 20 / n)) << what;
}

// Truncated at ±2σ_u where σ_u = √var / 0.8796...: variance exactly var, nothing beyond the cut,
// and values close to it exist.
inline void ExpectTruncated(const std::vector<double>& v, double var, const std::string& what = "") {
  const double n = static_cast<double>(v.size());
  // Variance of N(0,1) cut at ±2, from its closed form: 1 - 2·2·φ(2) / (2Φ(2) - 1).
  const double phi2 = std::exp(-2.0) / std::sqrt(2 * M_PI);
  const double mass = std::erf(2 / std::sqrt(2.0));
  const double unit_var = 1 - 4 * phi2 / mass;
  const double sigma_u = std::sqrt(var / unit_var);
  EXPECT_NEAR(Mean(v), 0, 5 * std::sqrt(var / n)) << what;
  // μ4 of the truncated normal is below the normal's 3σ_u⁴: a conservative SE.
  EXPECT_NEAR(Variance(v), var, 5 * std::sqrt((3 * std::pow(sigma_u, 4) - var * var) / n)) << what;
  EXPECT_LE(MaxAbs(v), 2 * sigma_u * (1 + 1e-6)) << what;
  // P(no value within 1% of the cut) is below e^-20 for the sample sizes tests use.
  EXPECT_GT(MaxAbs(v), 2 * sigma_u * 0.99) << what;
}

// A row-major rows x cols matrix with W Wᵀ = g²I (rows <= cols) or Wᵀ W = g²I (rows > cols),
// to float32 precision.
inline void ExpectOrthogonal(const std::vector<double>& v, int64_t rows, int64_t cols, double g,
                             const std::string& what = "") {
  Eigen::MatrixXd w(rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) w(r, c) = v[r * cols + c];
  }
  const Eigen::MatrixXd gram = rows <= cols ? Eigen::MatrixXd(w * w.transpose())
                                            : Eigen::MatrixXd(w.transpose() * w);
  const auto eye = Eigen::MatrixXd::Identity(gram.rows(), gram.cols());
  EXPECT_LT((gram - g * g * eye).cwiseAbs().maxCoeff(), 1e-5 * g * g * std::max(rows, cols))
      << what;
}

}  // namespace reinit_test

// Times FillOrthogonal and checks its result.
//
//   orthogonal_bench [--size N | --rows R --cols C] [--threads T] [--repeats K] [--double]
//
// Defaults: 4096 x 4096 float, 2 threads, 3 repeats. Prints the median wall time as one line,
//   orthogonal_f32 4096x4096 threads=2 seconds=1.23 max_error=4.1e-06
// where max_error is max |W Wᵀ - I| (rows <= cols; Wᵀ W otherwise) over a sample of rows of the
// Gram matrix, computed in double. Exits 1 when that error exceeds 10·max(rows, cols)·ε of the
// precision: a Householder Q loses O(mn ε) in the worst case (Higham, "Accuracy and Stability
// of Numerical Algorithms", 2nd ed., Thm. 19.4); a wrong reflector or block gives O(1).
#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "init/orthogonal.h"
#include "init/rng.h"
#include "parallel.h"

namespace {

struct Options {
  int64_t rows = 4096, cols = 4096;
  int threads = 2, repeats = 3;
  bool use_double = false;
};

[[noreturn]] void Usage(const char* message) {
  std::fprintf(stderr,
               "orthogonal_bench: error: %s\nusage: orthogonal_bench [--size N | --rows R --cols C]"
               " [--threads T] [--repeats K] [--double]\n",
               message);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--double") {
      o.use_double = true;
      continue;
    }
    if (i + 1 >= argc) Usage(("missing value after " + arg).c_str());
    const long long value = std::atoll(argv[++i]);
    if (value <= 0) Usage(("bad value for " + arg).c_str());
    if (arg == "--size") {
      o.rows = o.cols = value;
    } else if (arg == "--rows") {
      o.rows = value;
    } else if (arg == "--cols") {
      o.cols = value;
    } else if (arg == "--threads") {
      o.threads = static_cast<int>(value);
    } else if (arg == "--repeats") {
      o.repeats = static_cast<int>(value);
    } else {
      Usage(("unknown option " + arg).c_str());
    }
  }
  return o;
}

// max |(M Mᵀ)[i][r] - δ_ir| for up to 64 rows i spread over M, M = W if rows <= cols, else Wᵀ.
template <typename T>
double OrthogonalityError(const std::vector<T>& w, int64_t rows, int64_t cols) {
  using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajor> wm(w.data(), rows, cols);
  const Eigen::MatrixXd m = rows <= cols ? Eigen::MatrixXd(wm.template cast<double>())
                                         : Eigen::MatrixXd(wm.transpose().template cast<double>());
  const int64_t count = std::min<int64_t>(64, m.rows());
  double error = 0;
  for (int64_t s = 0; s < count; ++s) {
    const int64_t i = s * m.rows() / count;
    Eigen::VectorXd dots = m * m.row(i).transpose();
    dots(i) -= 1;
    error = std::max(error, dots.cwiseAbs().maxCoeff());
  }
  return error;
}

template <typename T>
int Run(const Options& o, const char* name) {
  reinit::SetThreadCount(o.threads);
  std::vector<T> w(static_cast<size_t>(o.rows * o.cols));
  std::vector<double> seconds;
  for (int r = 0; r < o.repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    reinit::FillOrthogonal(reinit::KeyFor(r, "bench"), o.rows, o.cols, 1.0, std::span<T>(w));
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double error = OrthogonalityError(w, o.rows, o.cols);
  std::printf("%s %lldx%lld threads=%d seconds=%.3f max_error=%.2g\n", name,
              static_cast<long long>(o.rows), static_cast<long long>(o.cols), o.threads,
              seconds[seconds.size() / 2], error);
  const double tolerance =
      10.0 * static_cast<double>(std::max(o.rows, o.cols)) * std::numeric_limits<T>::epsilon();
  if (!(error <= tolerance)) {
    std::fprintf(stderr, "orthogonal_bench: error: max |W Wᵀ - I| = %g > %g\n", error, tolerance);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  return o.use_double ? Run<double>(o, "orthogonal_f64") : Run<float>(o, "orthogonal_f32");
}

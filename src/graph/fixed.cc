#include "graph/fixed.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numbers>
#include <set>

#include "io/tensor_codec.h"
#include "io/tensor_store.h"

namespace reinit {

namespace {

using Vectors = std::vector<std::vector<double>>;

bool NameSaysFixed(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* word : {"buffer", "basis", "window", "filterbank", "filter_bank"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return false;
}

// The output units' weight vectors: rows when the units are axis 0, columns of a matrix whose
// units are its last axis; empty otherwise.
Vectors Units(const std::vector<double>& v, const std::vector<int64_t>& shape, int axis) {
  Vectors units;
  if (shape.empty()) return units;
  const size_t count = static_cast<size_t>(shape[static_cast<size_t>(axis)]);
  if (count == 0 || v.size() % count != 0) return units;
  const size_t length = v.size() / count;
  if (axis == 0) {
    for (size_t u = 0; u < count; ++u)
      units.emplace_back(v.begin() + u * length, v.begin() + (u + 1) * length);
  } else if (shape.size() == 2 && axis == 1) {
    units.assign(count, std::vector<double>(length));
    for (size_t r = 0; r < length; ++r) {
      for (size_t u = 0; u < count; ++u) units[u][r] = v[r * count + u];
    }
  }
  return units;
}

double Energy(const std::vector<double>& x) {
  double e = 0;
  for (double a : x) e += a * a;
  return e;
}

// The share of x's energy within 2 bins of harmonic k (and of its mirror N - k); 0 when its
// strongest bin there is not k itself.
double Concentration(const std::vector<double>& x, int64_t k) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::set<int64_t> bins;
  for (int64_t d = -2; d <= 2; ++d) {
    bins.insert(((k + d) % n + n) % n);
    bins.insert(((n - k + d) % n + n) % n);
  }
  double near = 0, peak = 0, at_k = 0;
  for (int64_t j : bins) {
    double re = 0, im = 0;
    for (int64_t t = 0; t < n; ++t) {
      const double phase = 2 * std::numbers::pi * static_cast<double>(j * t % n) / n;
      re += x[t] * std::cos(phase);
      im -= x[t] * std::sin(phase);
    }
    const double e = re * re + im * im;
    near += e;
    peak = std::max(peak, e);
    if (j == k % n || j == (n - k % n) % n) at_k = std::max(at_k, e);
  }
  // Bin k itself must be among its strongest: a window (zero-padded, short) leaks a low k into
  // DC, but a row of another harmonic has next to nothing at k.
  if (at_k < 0.25 * peak) return 0;
  return near / (static_cast<double>(n) * Energy(x));  // Parseval: Σ|X|² = N Σx²
}

// Rows of one harmonic each, k = r (or r mod M/2: cos rows, then sin rows); rows zero up to
// rounding (sin at k = 0 and N/2) allowed, at least half the rows not zero.
bool IsDftBasis(const Vectors& units) {
  const size_t m = units.size();
  if (m < 4 || units[0].size() < 16) return false;
  double most = 0;
  for (const auto& u : units) most = std::max(most, Energy(u));
  for (size_t period : {m, m % 2 == 0 ? m / 2 : m}) {
    size_t nonzero = 0;
    bool all = true;
    for (size_t r = 0; r < m && all; ++r) {
      // Zero up to rounding: sin at k = 0 and at N/2.
      if (Energy(units[r]) <= 1e-9 * most) continue;
      ++nonzero;
      all = Concentration(units[r], static_cast<int64_t>(r % period)) >= 0.9;
    }
    if (all && 2 * nonzero >= m) return true;
  }
  return false;
}

// Triangular-ish filters: non-negative, one contiguous run with one peak, peaks rising.
bool IsMelBank(const Vectors& units) {
  if (units.size() < 8) return false;
  double top = 0;
  for (const auto& u : units) {
    for (double a : u) top = std::max(top, std::abs(a));
  }
  if (!(top > 0)) return false;
  const double eps = 1e-6 * top;
  int64_t last_peak = -1, filters = 0, wide = 0;
  for (const auto& u : units) {
    int64_t first = -1, end = -1, peak = -1;
    for (size_t i = 0; i < u.size(); ++i) {
      if (u[i] < -eps) return false;
      if (u[i] > eps) {
        if (first < 0) first = static_cast<int64_t>(i);
        if (end >= 0 && end != static_cast<int64_t>(i)) return false;  // a second run
        end = static_cast<int64_t>(i) + 1;
        if (peak < 0 || u[i] > u[static_cast<size_t>(peak)]) peak = static_cast<int64_t>(i);
      }
    }
    if (first < 0) continue;  // an empty filter
    for (int64_t i = first + 1; i <= peak; ++i) {
      if (u[i] + eps < u[i - 1]) return false;
    }
    for (int64_t i = peak + 1; i < end; ++i) {
      if (u[i] > u[i - 1] + eps) return false;
    }
    if (peak <= last_peak) return false;
    last_peak = peak;
    ++filters;
    wide += end - first >= 3;
  }
  // Triangles spanning bins, more bins than filters: not a (scaled) identity or a permutation.
  return filters >= 8 && 4 * wide >= 3 * filters && units[0].size() > units.size();
}

std::optional<std::string> Window(const std::vector<double>& v) {
  const size_t n = v.size();
  if (n < 16) return std::nullopt;
  struct Kind {
    const char* name;
    double a0, a1, a2;
  };
  for (const Kind& w : {Kind{"hann", 0.5, 0.5, 0}, Kind{"hamming", 0.54, 0.46, 0},
                        Kind{"blackman", 0.42, 0.5, 0.08}}) {
    for (size_t period : {n, n - 1}) {
      bool same = true;
      for (size_t i = 0; i < n && same; ++i) {
        const double x =
            2 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(period);
        same = std::abs(v[i] - (w.a0 - w.a1 * std::cos(x) + w.a2 * std::cos(2 * x))) < 1e-4;
      }
      if (same) return std::string("window (") + w.name + ")";
    }
  }
  return std::nullopt;
}

bool IsSmoothingKernel(const std::vector<double>& v, const std::vector<int64_t>& shape) {
  if (shape.empty() || shape[0] != 1 || v.size() < 3 || v.size() > 64) return false;
  double sum = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 0 || std::abs(v[i] - v[v.size() - 1 - i]) > 1e-6) return false;
    sum += v[i];
  }
  return std::abs(sum - 1) < 1e-3;
}

}  // namespace

std::optional<std::string> FixedTensorKind(const onnx::TensorProto& tensor, const std::string& name,
                                           const std::vector<int64_t>& shape, int output_axis) {
  std::optional<std::vector<double>> values;
  if (!IsDeferred(tensor) && tensor.data_location() != onnx::TensorProto::EXTERNAL) {
    auto read = ReadValues(tensor);
    if (read.ok()) values = std::move(*read);
  }
  if (values && !values->empty() && Energy(*values) > 0) {
    if (shape.size() == 1) {
      if (auto w = Window(*values)) return w;
    } else if (output_axis >= 0 && output_axis < static_cast<int>(shape.size())) {
      const Vectors units = Units(*values, shape, output_axis);
      if (IsDftBasis(units)) return std::string("DFT basis");
      if (IsMelBank(units)) return std::string("mel filter bank");
      if (IsSmoothingKernel(*values, shape)) return std::string("smoothing kernel");
    }
  }
  if (NameSaysFixed(name)) return std::string("buffer (by its name)");
  return std::nullopt;
}

}  // namespace reinit

#include "rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

namespace reinit {
namespace {

// Statistical checks use n draws and accept deviations up to kSigmas standard errors, each
// standard error derived from n and the distribution's known moments. The streams are
// deterministic, so a pass is reproducible, not luck on a given run.
constexpr size_t kN = 200000;
constexpr double kSigmas = 5.0;

// Random123's kat_vectors, "philox4x32 10" lines: counter (4 words), key (2 words), output.
TEST(Philox4x32Test, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(Philox4x32({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (std::array<uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (std::array<uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// An independent, byte-at-a-time FNV-1a 64 and SplitMix64 mix, written from their definitions.
StreamKey ReferenceKey(uint64_t seed, const std::string& name) {
  uint64_t h = 14695981039346656037ULL;  // FNV-1a 64 offset basis
  for (size_t i = 0; i < name.size(); ++i) {
    h = h ^ static_cast<uint8_t>(name[i]);
    h = h * 1099511628211ULL;  // FNV-1a 64 prime
  }
  uint64_t z = seed ^ h;
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ULL;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return StreamKey{static_cast<uint32_t>(z & 0xffffffffu), static_cast<uint32_t>(z >> 32)};
}

TEST(KeyForTest, MatchesIndependentFnv1aSplitMix64) {
  for (uint64_t seed : {0ULL, 1ULL, 42ULL, 0xdeadbeefcafef00dULL}) {
    for (const std::string name : {"", "fc1.weight", "conv1.bias", "a"}) {
      EXPECT_EQ(KeyFor(seed, name), ReferenceKey(seed, name)) << seed << " '" << name << "'";
    }
  }
  // Known FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c; with seed equal to it, the mixed value is 0.
  EXPECT_EQ(KeyFor(0xaf63dc4c8601ec8cULL, "a"), (StreamKey{0, 0}));
}

TEST(KeyForTest, DiffersAcrossNamesAndSeedsAndIsStable) {
  const std::vector<std::string> names = {"fc1.weight", "fc1.bias", "fc2.weight", "fc1.weight ",
                                          "Fc1.weight"};
  std::vector<StreamKey> keys;
  for (uint64_t seed : {0ULL, 1ULL, 2ULL}) {
    for (const std::string& name : names) keys.push_back(KeyFor(seed, name));
  }
  for (size_t a = 0; a < keys.size(); ++a) {
    for (size_t b = a + 1; b < keys.size(); ++b) EXPECT_FALSE(keys[a] == keys[b]) << a << " " << b;
  }
  EXPECT_EQ(KeyFor(7, "fc1.weight"), KeyFor(7, std::string("fc1.weight")));
}

// Pinned outputs: the streams decide every re-initialized weight, so a change to them (domain
// words, lane order, Box-Muller form) must be deliberate. Uniform values are pure arithmetic
// and exact; normal ones go through libm log/sincos, so they get a small tolerance.
TEST(FillStreamTest, PinnedValues) {
  const StreamKey key = KeyFor(2024, "fc1.weight");
  EXPECT_EQ(key, (StreamKey{0xb87ed96c, 0x7ca6eb57}));
  std::vector<double> v(6);
  FillUniform<double>(key, -1.0, 1.0, 5, std::span<double>(v));
  EXPECT_EQ(v,
            (std::vector<double>{-0.24908542330376804, -0.084994399221614003, 0.14568829745985568,
                                 0.56762125086970627, -0.33669672231189907, 0.42890703189186752}));
  auto expect_near = [&](const std::vector<double>& expected) {
    for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], expected[i], 1e-12) << i;
  };
  FillNormal<double>(key, 1.0, 5, std::span<double>(v));
  expect_near({0.36960884472819766, 0.47532312063022947, 1.5975762275728513, 0.45828609980256185,
               0.48916964491014614, 1.8263025072175703});
  FillTruncatedNormal<double>(key, 1.0, 2.0, 5, std::span<double>(v));
  expect_near({-1.0890036398392258, 1.1314240743176482, -0.6613544899003525, -0.84935688803127374,
               -1.7942230435600384, 0.3895548005126151});
}

// Fills [0, n) at once, then as [0, k) and [k, n) with first_index = k.
template <typename T, typename Fill>
void ExpectSplitInvariant(Fill fill) {
  constexpr size_t n = 37;
  std::vector<T> whole(n);
  fill(0, std::span<T>(whole));
  for (size_t k : {0, 1, 2, 3, 4, 5, 7, 8, 13, 16, 35, 36, 37}) {
    std::vector<T> parts(n);
    fill(0, std::span<T>(parts).first(k));
    fill(k, std::span<T>(parts).subspan(k));
    EXPECT_EQ(parts, whole) << "split at " << k;
  }
  // A window starting at a non-multiple of 4 matches the same elements of the whole.
  std::vector<T> window(9);
  fill(6, std::span<T>(window));
  EXPECT_TRUE(std::equal(window.begin(), window.end(), whole.begin() + 6));
}

template <typename T>
class FillTest : public ::testing::Test {};
using FillTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FillTest, FillTypes);

TYPED_TEST(FillTest, SplitInvariance) {
  using T = TypeParam;
  const StreamKey key = KeyFor(3, "layer.weight");
  ExpectSplitInvariant<T>(
      [&](uint64_t first, std::span<T> out) { FillUniform<T>(key, -0.5, 2.0, first, out); });
  ExpectSplitInvariant<T>(
      [&](uint64_t first, std::span<T> out) { FillNormal<T>(key, 0.7, first, out); });
  ExpectSplitInvariant<T>(
      [&](uint64_t first, std::span<T> out) { FillTruncatedNormal<T>(key, 0.7, 2.0, first, out); });
}

TYPED_TEST(FillTest, FloatIsDoubleRounded) {
  // Values are computed in double and then cast, so the float stream is the double one rounded.
  using T = TypeParam;
  const StreamKey key = KeyFor(9, "w");
  std::vector<double> d(50);
  std::vector<T> t(50);
  FillNormal<double>(key, 0.3, 5, std::span<double>(d));
  FillNormal<T>(key, 0.3, 5, std::span<T>(t));
  for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(t[i], static_cast<T>(d[i])) << i;
}

struct Moments {
  double mean = 0, var = 0, m4 = 0;  // var and m4 about the sample mean
  double min = 0, max = 0;
};

template <typename T>
Moments MomentsOf(const std::vector<T>& x) {
  Moments m;
  const double n = static_cast<double>(x.size());
  for (T v : x) m.mean += v;
  m.mean /= n;
  for (T v : x) {
    const double d = v - m.mean;
    m.var += d * d;
    m.m4 += d * d * d * d;
  }
  m.var /= n - 1;
  m.m4 /= n;
  m.min = *std::min_element(x.begin(), x.end());
  m.max = *std::max_element(x.begin(), x.end());
  return m;
}

TYPED_TEST(FillTest, UniformStatistics) {
  using T = TypeParam;
  const double low = -0.25, high = 0.75;  // U(-b, b) shifted by c = 0.25, b = 0.5
  const double b = (high - low) / 2, c = (high + low) / 2;
  std::vector<T> x(kN);
  FillUniform<T>(KeyFor(1, "uniform"), low, high, 0, std::span<T>(x));
  const Moments m = MomentsOf(x);
  const double n = kN;
  const double var = b * b / 3;          // variance of U(-b, b)
  const double mu4 = b * b * b * b / 5;  // fourth central moment of U(-b, b)
  EXPECT_NEAR(m.mean, c, kSigmas * std::sqrt(var / n));
  // Var of the sample variance is (mu4 - sigma^4) / n to leading order.
  EXPECT_NEAR(m.var, var, kSigmas * std::sqrt((mu4 - var * var) / n));
  EXPECT_GE(m.min, low);
  EXPECT_LE(m.max, high);
  // The extremes of n draws are within a few multiples of width / n of the bounds.
  EXPECT_LT(m.min, low + 20 * (high - low) / n);
  EXPECT_GT(m.max, high - 20 * (high - low) / n);
}

TYPED_TEST(FillTest, NormalStatistics) {
  using T = TypeParam;
  const double sigma = 0.2;
  std::vector<T> x(kN);
  FillNormal<T>(KeyFor(1, "normal"), sigma, 0, std::span<T>(x));
  const Moments m = MomentsOf(x);
  const double n = kN;
  const double var = sigma * sigma;
  EXPECT_NEAR(m.mean, 0.0, kSigmas * sigma / std::sqrt(n));
  EXPECT_NEAR(m.var, var, kSigmas * var * std::sqrt(2.0 / (n - 1)));
  // Kurtosis E z^4 = 3 with Var z^4 = E z^8 - (E z^4)^2 = 105 - 9 = 96.
  EXPECT_NEAR(m.m4 / (var * var), 3.0, kSigmas * std::sqrt(96.0 / n));
  // P(|z| > 2) = erfc(2 / sqrt 2) = 0.0455; the count is binomial.
  const double p = std::erfc(2.0 / std::numbers::sqrt2);
  const double beyond =
      std::count_if(x.begin(), x.end(), [&](T v) { return std::abs(v) > 2 * sigma; }) / n;
  EXPECT_NEAR(beyond, p, kSigmas * std::sqrt(p * (1 - p) / n));
}

TYPED_TEST(FillTest, TruncatedNormalStatistics) {
  using T = TypeParam;
  const double sigma = 0.1, cut = 2.0;
  std::vector<T> x(kN);
  FillTruncatedNormal<T>(KeyFor(1, "truncated"), sigma, cut, 0, std::span<T>(x));
  const Moments m = MomentsOf(x);
  const double n = kN;
  // Moments of N(0, 1) truncated to [-c, c]: with phi the density and Z = 2 Phi(c) - 1 the mass
  // inside, Var = 1 - 2 c phi(c) / Z and E z^4 = 3 - 2 c (c^2 + 3) phi(c) / Z.
  const double phi = std::exp(-cut * cut / 2) / std::sqrt(2 * std::numbers::pi);
  const double mass = std::erf(cut / std::numbers::sqrt2);
  const double tvar = 1 - 2 * cut * phi / mass;
  const double tm4 = 3 - 2 * cut * (cut * cut + 3) * phi / mass;
  EXPECT_NEAR(tvar, 0.7737413, 1e-6);
  const double var = sigma * sigma * tvar;
  const double mu4 = sigma * sigma * sigma * sigma * tm4;
  // Casting to T rounds monotonically, so the bound holds exactly in T.
  const T bound = static_cast<T>(cut * sigma);
  EXPECT_LE(std::max(-m.min, m.max), bound);
  EXPECT_NEAR(m.mean, 0.0, kSigmas * std::sqrt(var / n));
  EXPECT_NEAR(m.var, var, kSigmas * std::sqrt((mu4 - var * var) / n));
  // The density at the cut is phi(2) / mass = 0.057 per unit z, so n draws leave a gap below
  // the cut of about 1 / (n * 0.057 * 2 sides) = 4e-5 in z; 1e-3 is far outside that.
  EXPECT_GT(std::max(-m.min, m.max), (cut - 1e-3) * sigma);
}

TEST(FillStreamTest, DistinctKeysAndDomainsGiveUncorrelatedStreams) {
  std::vector<double> a(kN), b(kN), c(kN);
  FillNormal<double>(KeyFor(1, "a"), 1.0, 0, std::span<double>(a));
  FillNormal<double>(KeyFor(1, "b"), 1.0, 0, std::span<double>(b));
  FillNormal<double>(KeyFor(2, "a"), 1.0, 0, std::span<double>(c));
  // Same key and index, other function: the truncated stream must not reuse the normal one.
  std::vector<double> t(kN);
  FillTruncatedNormal<double>(KeyFor(1, "a"), 1.0, 10.0, 0, std::span<double>(t));
  std::vector<double> u(kN);
  FillUniform<double>(KeyFor(1, "a"), -1.0, 1.0, 0, std::span<double>(u));
  auto correlation = [](const std::vector<double>& x, const std::vector<double>& y) {
    const Moments mx = MomentsOf(x), my = MomentsOf(y);
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += (x[i] - mx.mean) * (y[i] - my.mean);
    return s / (x.size() - 1) / std::sqrt(mx.var * my.var);
  };
  // The sample correlation of independent streams has standard error 1 / sqrt(n).
  const double tolerance = kSigmas / std::sqrt(static_cast<double>(kN));
  EXPECT_NEAR(correlation(a, b), 0.0, tolerance);
  EXPECT_NEAR(correlation(a, c), 0.0, tolerance);
  EXPECT_NEAR(correlation(a, t), 0.0, tolerance);
  EXPECT_NEAR(correlation(a, u), 0.0, tolerance);
  // Neighbouring elements (Box-Muller pairs share a block) are uncorrelated too.
  std::vector<double> even(kN / 2), odd(kN / 2);
  for (size_t i = 0; i < kN / 2; ++i) {
    even[i] = a[2 * i];
    odd[i] = a[2 * i + 1];
  }
  EXPECT_NEAR(correlation(even, odd), 0.0, kSigmas / std::sqrt(kN / 2.0));
}

TEST(FillStreamTest, UniformIsInsideOpenInterval) {
  // u = (x + 0.5) 2^-32 is never 0 or 1, so U(0, 1) in double never hits either end.
  std::vector<double> x(4096);
  FillUniform<double>(KeyFor(5, "u"), 0.0, 1.0, 0, std::span<double>(x));
  for (double v : x) {
    EXPECT_GT(v, 0.0);
    EXPECT_LT(v, 1.0);
  }
}

TEST(FillStreamTest, NonPositiveCutWritesZeros) {
  std::vector<float> x(5, 1.0f);
  FillTruncatedNormal<float>(KeyFor(5, "t"), 1.0, 0.0, 0, std::span<float>(x));
  EXPECT_EQ(x, std::vector<float>(5, 0.0f));
}

TEST(FillStreamTest, EmptySpanIsFine) {
  FillNormal<float>(KeyFor(1, "e"), 1.0, 3, std::span<float>());
  FillUniform<double>(KeyFor(1, "e"), 0.0, 1.0, 2, std::span<double>());
  FillTruncatedNormal<float>(KeyFor(1, "e"), 1.0, 2.0, 1, std::span<float>());
}

}  // namespace
}  // namespace reinit

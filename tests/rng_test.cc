#include "init/rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

#include "stats.h"

namespace reinit {
namespace rng_test {
namespace {

// Statistical checks use n draws and accept deviations up to kSigmas standard errors, each
// standard error derived from n and the distribution's known moments. The streams are
// deterministic, so a pass is reproducible, not luck on a given run.
constexpr size_t kN = 200000;
constexpr double kSigmas = 5.0;

// The domain words of rng.cc, as documented in rng.h.
constexpr uint32_t kUniformDomain = 0x756E6966;    // "unif"
constexpr uint32_t kNormalDomain = 0x6E6F726D;     // "norm"
constexpr uint32_t kTruncatedDomain = 0x74726E63;  // "trnc"

// Runs `body` once per float kernel width the CPU has (8 always, 16 with AVX-512), restoring
// the default afterwards. Values must not depend on the width.
void ForEachKernelWidth(const std::function<void(int)>& body) {
  const int saved = rng_internal::FloatKernelLanes();
  for (int lanes : {8, 16}) {
    if (!rng_internal::SetFloatKernelLanes(lanes)) continue;
    SCOPED_TRACE("float kernel lanes " + std::to_string(lanes));
    body(lanes);
  }
  rng_internal::SetFloatKernelLanes(saved);
}

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

// ---------------------------------------------------------------------------------------------
// Scalar references written from rng.h's description, one element at a time with the scalar
// Philox4x32. The float ones repeat the float algorithm operation by operation in scalar
// float code (std::frexp instead of bit fields), so equality with the vector kernels shows
// that the kernels compute exactly the documented IEEE operations, lane by lane.

std::array<uint32_t, 4> BlockOf(StreamKey key, uint64_t i, uint32_t attempt, uint32_t domain) {
  const uint64_t b = i / 4;
  return Philox4x32({static_cast<uint32_t>(b), static_cast<uint32_t>(b >> 32), attempt, domain},
                    key);
}

double OpenUnit(uint32_t x) { return (static_cast<double>(x) + 0.5) * 0x1p-32; }

float ReferenceMinusTwoLogFloat(uint32_t x) {
  const bool upper = x >> 31;
  const uint32_t n = ((upper ? ~x : x) << 1) | 1u;  // 2 y + 1
  const float v = (static_cast<float>(static_cast<int32_t>(n >> 16)) * 65536.0f +
                   static_cast<float>(static_cast<int32_t>(n & 0xffffu))) *
                  0x1p-33f;
  float f, e;
  if (!upper) {
    int exponent = 0;
    float m = std::frexp(v, &exponent);  // v = m 2^exponent, m in [1/2, 1)
    if (m < 0.707106781186547524f) {
      m = m + m;
      exponent -= 1;
    }
    f = m - 1.0f;
    e = static_cast<float>(exponent);
  } else if (v <= 0.292893218813452476f) {
    f = -v;
    e = 0.0f;
  } else {
    f = 1.0f - (v + v);
    e = -1.0f;
  }
  const float z = f * f;
  float y = 7.0376836292E-2f * f - 1.1514610310E-1f;
  y = y * f + 1.1676998740E-1f;
  y = y * f - 1.2420140846E-1f;
  y = y * f + 1.4249322787E-1f;
  y = y * f - 1.6668057665E-1f;
  y = y * f + 2.0000714765E-1f;
  y = y * f - 2.4999993993E-1f;
  y = y * f + 3.3333331174E-1f;
  y = y * f * z;
  y = y + e * -2.12194440e-4f;
  y = y - 0.5f * z;
  return -2.0f * ((f + y) + e * 0.693359375f);
}

void ReferenceCosSinFloat(uint32_t x, float* cos_theta, float* sin_theta) {
  const uint32_t q = x + 0x20000000u;
  const uint32_t k = q >> 30;
  const int32_t d = static_cast<int32_t>(q & 0x3fffffffu) - 0x20000000;
  const float a =
      static_cast<float>(d + d + 1) * static_cast<float>(2.0 * std::numbers::pi * 0x1p-33);
  const float z = a * a;
  const float s = ((-1.9515295891E-4f * z + 8.3321608736E-3f) * z - 1.6666654611E-1f) * z * a + a;
  const float c =
      ((2.443315711809948E-5f * z - 1.388731625493765E-3f) * z + 4.166664568298827E-2f) * z * z -
      0.5f * z + 1.0f;
  const float cos_by_k[4] = {c, -s, -c, s};
  const float sin_by_k[4] = {s, c, -s, -c};
  *cos_theta = cos_by_k[k];
  *sin_theta = sin_by_k[k];
}

// The Box-Muller z of element i's lane in a block, float algorithm.
float ReferenceNormalFloat(const std::array<uint32_t, 4>& x, uint64_t i) {
  const unsigned lane = i % 4, pair = lane & 2u;
  float c, s;
  ReferenceCosSinFloat(x[pair + 1], &c, &s);
  return std::sqrt(ReferenceMinusTwoLogFloat(x[pair])) * ((lane & 1u) ? s : c);
}

// The same in double with libm, theta split by quadrant as documented.
double ReferenceNormalDouble(const std::array<uint32_t, 4>& x, uint64_t i) {
  const unsigned lane = i % 4, pair = lane & 2u;
  const uint32_t q = x[pair + 1] + 0x20000000u;
  const int32_t d = static_cast<int32_t>(q & 0x3fffffffu) - 0x20000000;
  const double a = (2.0 * d + 1.0) * (2.0 * std::numbers::pi * 0x1p-33);
  const double c = std::cos(a), s = std::sin(a);
  const double cos_by_k[4] = {c, -s, -c, s};
  const double sin_by_k[4] = {s, c, -s, -c};
  const double r = std::sqrt(-2.0 * std::log(OpenUnit(x[pair])));
  return r * ((lane & 1u) ? sin_by_k[q >> 30] : cos_by_k[q >> 30]);
}

// Largest float <= cut: the float path's acceptance test.
float CutFloat(double cut) {
  float c = static_cast<float>(cut);
  if (static_cast<double>(c) > cut) c = std::nextafter(c, 0.0f);
  return c;
}

float ReferenceTruncatedFloat(StreamKey key, uint64_t i, double std, double cut) {
  const float cut_f = CutFloat(cut), bound = static_cast<float>(std * cut);
  for (uint32_t a = 0;; ++a) {
    const float z = ReferenceNormalFloat(BlockOf(key, i, a, kTruncatedDomain), i);
    if (std::abs(z) <= cut_f) return std::min(std::max(static_cast<float>(std) * z, -bound), bound);
  }
}

double ReferenceTruncatedDouble(StreamKey key, uint64_t i, double std, double cut) {
  for (uint32_t a = 0;; ++a) {
    const double z = ReferenceNormalDouble(BlockOf(key, i, a, kTruncatedDomain), i);
    if (std::abs(z) <= cut) return std * z;
  }
}

// Elements at the start, around batch boundaries and far out (high counter word in use).
std::vector<uint64_t> SampleIndices() {
  std::vector<uint64_t> first = {0, 61, 125, 1000003, (1ULL << 32) * 4 - 3, (1ULL << 40) + 7};
  return first;
}

TEST(FillStreamTest, UniformMatchesScalarReference) {
  const StreamKey key = KeyFor(2024, "fc1.weight");
  ForEachKernelWidth([&](int) {
    for (uint64_t first : SampleIndices()) {
      std::vector<double> d(300);
      std::vector<float> f(300);
      FillUniform<double>(key, -0.3, 0.7, first, std::span<double>(d));
      FillUniform<float>(key, -0.3, 0.7, first, std::span<float>(f));
      for (size_t j = 0; j < d.size(); ++j) {
        const uint64_t i = first + j;
        const double expected = -0.3 + 1.0 * OpenUnit(BlockOf(key, i, 0, kUniformDomain)[i % 4]);
        ASSERT_EQ(d[j], expected) << i;
        // The float stream is the double stream rounded once.
        ASSERT_EQ(f[j], static_cast<float>(expected)) << i;
      }
    }
  });
}

TEST(FillStreamTest, NormalMatchesScalarReference) {
  const StreamKey key = KeyFor(7, "conv.weight");
  const double std = 0.37;
  ForEachKernelWidth([&](int) {
    for (uint64_t first : SampleIndices()) {
      std::vector<double> d(300);
      std::vector<float> f(300);
      FillNormal<double>(key, std, first, std::span<double>(d));
      FillNormal<float>(key, std, first, std::span<float>(f));
      for (size_t j = 0; j < d.size(); ++j) {
        const uint64_t i = first + j;
        const std::array<uint32_t, 4> x = BlockOf(key, i, 0, kNormalDomain);
        ASSERT_EQ(std::bit_cast<uint32_t>(f[j]),
                  std::bit_cast<uint32_t>(static_cast<float>(std) * ReferenceNormalFloat(x, i)))
            << i;
        ASSERT_DOUBLE_EQ(d[j], std * ReferenceNormalDouble(x, i)) << i;
        // The quadrant split is only a way to compute r cos(2 pi u): check against the plain
        // formula in long double.
        const unsigned pair = i % 4 & 2u;
        const long double theta = 2 * std::numbers::pi_v<long double> * OpenUnit(x[pair + 1]);
        const long double r =
            std::sqrt(-2.0L * std::log(static_cast<long double>(OpenUnit(x[pair]))));
        const long double plain = std * r * (i % 2 ? std::sin(theta) : std::cos(theta));
        ASSERT_NEAR(d[j], static_cast<double>(plain), 1e-15) << i;
      }
    }
  });
}

TEST(FillStreamTest, TruncatedNormalMatchesScalarReference) {
  const StreamKey key = KeyFor(11, "dense.kernel");
  ForEachKernelWidth([&](int) {
    // Cut 0.5 rejects 62% of candidates, so most elements go through several retries.
    for (double cut : {2.0, 0.5}) {
      for (uint64_t first : SampleIndices()) {
        std::vector<double> d(300);
        std::vector<float> f(300);
        FillTruncatedNormal<double>(key, 0.05, cut, first, std::span<double>(d));
        FillTruncatedNormal<float>(key, 0.05, cut, first, std::span<float>(f));
        for (size_t j = 0; j < d.size(); ++j) {
          const uint64_t i = first + j;
          ASSERT_EQ(std::bit_cast<uint32_t>(f[j]),
                    std::bit_cast<uint32_t>(ReferenceTruncatedFloat(key, i, 0.05, cut)))
              << i << " cut " << cut;
          ASSERT_DOUBLE_EQ(d[j], ReferenceTruncatedDouble(key, i, 0.05, cut)) << i;
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Accuracy of the float approximations against libm in double (long double for the angle,
// whose reference must resolve 2 pi u near multiples of pi to better than 1e-9 relative).
//
// Bounds, relative to the exact value, each the sum of the known error terms (e = 2^-24):
//   -2 ln u: v = u or 1 - u rounded to float (<= e in v, so <= 1.44 e in ln u, as |ln u| >=
//            ln 2 when u <= 1/2 and ln(1 - v) ~ -v otherwise) + Cephes logf (7.6e-8 = 1.28 e)
//            -> 2.72 e = 1.62e-7. Measured on all 2^32 inputs: 1.36e-7 (1.57 ulp).
//   cos/sin: the reduced angle a carries float(2 d + 1) (e), float(2 pi) (0.47 e) and the
//            product (e); a relative error da in a moves sin a by <= da and cos a by
//            <= (pi / 4) da; Cephes sinf / cosf polynomials 3.8e-9 / 7.8e-8 (1.31 e) and their
//            evaluation (<= e) -> 3.8 e = 2.27e-7. Measured on all 2^32 inputs: 1.92e-7
//            (2.91 ulp); absolute <= 1.09e-7.
constexpr double kLogBound = 1.62e-7;
constexpr double kCosSinBound = 2.27e-7;

// The inputs of the accuracy tests: the ends of (0, 1), both sides of 1/2 and of the log's
// two branch points, every quadrant and octant boundary of the angle, the worst cases of the
// exhaustive search, and an odd-stride sweep of the whole range.
std::vector<uint32_t> AccuracyInputs() {
  std::vector<uint32_t> x;
  auto around = [&](uint64_t center, uint32_t radius) {
    for (uint64_t k = center - std::min<uint64_t>(center, radius); k < center + radius; ++k) {
      if (k < (1ULL << 32)) x.push_back(static_cast<uint32_t>(k));
    }
  };
  around(0, 1 << 16);
  around(1ULL << 32, 1 << 16);
  for (uint64_t k = 1; k < 8; ++k) around(k << 29, 1 << 12);
  // v = 1 - sqrt(1/2) on both halves, where the log switches branches.
  around(static_cast<uint64_t>(0.292893218813452476 * 4294967296.0), 1 << 12);
  around(4294967296ULL - static_cast<uint64_t>(0.292893218813452476 * 4294967296.0), 1 << 12);
  around(static_cast<uint64_t>(0.707106781186547524 * 2147483648.0), 1 << 12);
  for (uint32_t worst :
       {3216909887u, 2691333567u, 1084496767u, 1084422965u, 10754943u, 10681141u}) {
    x.push_back(worst);
  }
  for (uint64_t k = 12345; k < (1ULL << 32); k += 2047) x.push_back(static_cast<uint32_t>(k));
  return x;
}

TEST(FloatApproximationTest, MinusTwoLogWithinBound) {
  const std::vector<uint32_t> x = AccuracyInputs();
  std::vector<float> got(x.size());
  rng_internal::MinusTwoLogFloat(x, got);
  double worst = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    const double exact = -2.0 * std::log(OpenUnit(x[k]));
    const double rel = std::abs(got[k] - exact) / exact;
    worst = std::max(worst, rel);
    ASSERT_LE(rel, kLogBound) << "x = " << x[k] << " got " << got[k] << " exact " << exact;
    // The kernels and the scalar reference agree bit for bit.
    ASSERT_EQ(std::bit_cast<uint32_t>(got[k]),
              std::bit_cast<uint32_t>(ReferenceMinusTwoLogFloat(x[k])))
        << x[k];
  }
  // The largest radius, from u = 2^-33: -2 ln 2^-33 = 45.75, |z| <= sqrt of it = 6.764.
  EXPECT_NEAR(got[0], 66 * std::numbers::ln2, kLogBound * 45.75);
  // The bound is not loose by orders of magnitude: the worst case found is close to it.
  EXPECT_GT(worst, kLogBound / 2);
}

TEST(FloatApproximationTest, CosSinWithinBound) {
  const std::vector<uint32_t> x = AccuracyInputs();
  std::vector<float> c(x.size()), s(x.size());
  rng_internal::CosSinTurnsFloat(x, c, s);
  double worst = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    const long double theta = 2 * std::numbers::pi_v<long double> * OpenUnit(x[k]);
    const double exact_c = static_cast<double>(std::cos(theta));
    const double exact_s = static_cast<double>(std::sin(theta));
    const double rel_c = std::abs(c[k] - exact_c) / std::abs(exact_c);
    const double rel_s = std::abs(s[k] - exact_s) / std::abs(exact_s);
    worst = std::max({worst, rel_c, rel_s});
    ASSERT_LE(rel_c, kCosSinBound) << "x = " << x[k] << " cos " << c[k] << " vs " << exact_c;
    ASSERT_LE(rel_s, kCosSinBound) << "x = " << x[k] << " sin " << s[k] << " vs " << exact_s;
    float rc, rs;
    ReferenceCosSinFloat(x[k], &rc, &rs);
    ASSERT_EQ(std::bit_cast<uint32_t>(c[k]), std::bit_cast<uint32_t>(rc)) << x[k];
    ASSERT_EQ(std::bit_cast<uint32_t>(s[k]), std::bit_cast<uint32_t>(rs)) << x[k];
  }
  EXPECT_GT(worst, kCosSinBound / 2);
}

TEST(FillStreamTest, FloatNormalIsCloseToDoubleNormal) {
  // float value = float(std) * (r * cos): r = sqrt(-2 ln u) carries half the log's relative
  // error (1.36 e) and the sqrt's rounding (e); cos/sin 3.8 e; the two products and float(std)
  // e each: 9.2 e = 5.5e-7 of |value| in all (e = 2^-24).
  constexpr double kBound = 9.2 * 0x1p-24;
  const StreamKey key = KeyFor(5, "w");
  const double std = 0.3;
  std::vector<double> d(kN);
  std::vector<float> f(kN);
  FillNormal<double>(key, std, 0, std::span<double>(d));
  FillNormal<float>(key, std, 0, std::span<float>(f));
  double worst = 0;
  for (size_t i = 0; i < kN; ++i) {
    const double rel = std::abs(f[i] - d[i]) / std::abs(d[i]);
    worst = std::max(worst, rel);
    ASSERT_LE(rel, kBound) << i << ": " << f[i] << " vs " << d[i];
  }
  EXPECT_GT(worst, 0x1p-24);  // the paths do differ (float math), by a few ulp
}

TEST(FillStreamTest, FloatTruncatedNormalIsCloseToDouble) {
  // Same candidates; only a candidate within the float error of the cut can be accepted by one
  // path and rejected by the other, with probability ~ 2 phi(2) 5.5e-7 * 2 per element.
  const StreamKey key = KeyFor(5, "t");
  std::vector<double> d(kN);
  std::vector<float> f(kN);
  FillTruncatedNormal<double>(key, 0.1, 2.0, 0, std::span<double>(d));
  FillTruncatedNormal<float>(key, 0.1, 2.0, 0, std::span<float>(f));
  size_t far = 0;
  for (size_t i = 0; i < kN; ++i) far += std::abs(f[i] - d[i]) > 9.2 * 0x1p-24 * std::abs(d[i]);
  EXPECT_LE(far, 2u);
}

// ---------------------------------------------------------------------------------------------
// Determinism: split invariance and independence from the kernel width.

// Fills [0, n) at once, then in two and three pieces at many split points (multiples of 4, 8,
// 16 and not), and windows starting anywhere.
template <typename T, typename Fill>
void ExpectSplitInvariant(Fill fill) {
  constexpr size_t n = 1000;
  std::vector<T> whole(n);
  fill(0, std::span<T>(whole));
  for (size_t k : {0,  1,  2,  3,   4,   5,   7,   8,   13,  16,  17,  31,  32,  33,
                   63, 64, 65, 127, 128, 129, 255, 256, 257, 500, 997, 999, 1000}) {
    std::vector<T> parts(n);
    fill(0, std::span<T>(parts).first(k));
    fill(k, std::span<T>(parts).subspan(k));
    ASSERT_EQ(parts, whole) << "split at " << k;
    const size_t k2 = std::min(n, k + 37);
    std::vector<T> three(n);
    fill(0, std::span<T>(three).first(k));
    fill(k, std::span<T>(three).subspan(k, k2 - k));
    fill(k2, std::span<T>(three).subspan(k2));
    ASSERT_EQ(three, whole) << "split at " << k << ", " << k2;
  }
  for (size_t start : {1, 6, 9, 130, 611}) {
    std::vector<T> window(std::min<size_t>(211, n - start));
    fill(start, std::span<T>(window));
    ASSERT_TRUE(std::equal(window.begin(), window.end(), whole.begin() + start)) << start;
  }
}

template <typename T>
class FillTest : public ::testing::Test {};
using FillTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FillTest, FillTypes);

TYPED_TEST(FillTest, SplitInvariance) {
  using T = TypeParam;
  const StreamKey key = KeyFor(3, "layer.weight");
  ForEachKernelWidth([&](int) {
    ExpectSplitInvariant<T>(
        [&](uint64_t first, std::span<T> out) { FillUniform<T>(key, -0.5, 2.0, first, out); });
    ExpectSplitInvariant<T>(
        [&](uint64_t first, std::span<T> out) { FillNormal<T>(key, 0.7, first, out); });
    for (double cut : {2.0, 0.3}) {
      ExpectSplitInvariant<T>([&](uint64_t first, std::span<T> out) {
        FillTruncatedNormal<T>(key, 0.7, cut, first, out);
      });
    }
  });
}

TEST(FillStreamTest, FloatKernelWidthsGiveTheSameBytes) {
  if (!rng_internal::SetFloatKernelLanes(16)) GTEST_SKIP() << "no AVX-512 on this CPU";
  const StreamKey key = KeyFor(8, "embedding");
  const size_t n = 100003;
  auto fill_all = [&](std::vector<float>* u, std::vector<float>* z, std::vector<float>* t) {
    u->resize(n), z->resize(n), t->resize(n);
    FillUniform<float>(key, -1.0, 1.0, 5, std::span<float>(*u));
    FillNormal<float>(key, 1.0, 5, std::span<float>(*z));
    FillTruncatedNormal<float>(key, 1.0, 1.5, 5, std::span<float>(*t));
  };
  std::vector<float> u16, z16, t16, u8, z8, t8;
  fill_all(&u16, &z16, &t16);
  ASSERT_TRUE(rng_internal::SetFloatKernelLanes(8));
  fill_all(&u8, &z8, &t8);
  rng_internal::SetFloatKernelLanes(16);
  EXPECT_EQ(std::memcmp(u8.data(), u16.data(), n * 4), 0);
  EXPECT_EQ(std::memcmp(z8.data(), z16.data(), n * 4), 0);
  EXPECT_EQ(std::memcmp(t8.data(), t16.data(), n * 4), 0);
}

// ---------------------------------------------------------------------------------------------
// Distributions.

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

// Kolmogorov-Smirnov: D = sup |F_n - F|, and the Dvoretzky-Kiefer-Wolfowitz bound (Massart's
// constant) P(D > eps) <= 2 exp(-2 n eps^2): with eps = sqrt(ln(2 / alpha) / (2 n)) and
// alpha = 1e-6, a correct sampler fails with probability below one in a million.
template <typename T>
void ExpectKolmogorovSmirnov(std::vector<T> x, const std::function<double(double)>& cdf,
                             const std::string& what) {
  std::sort(x.begin(), x.end());
  const double n = static_cast<double>(x.size());
  double d = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    const double f = cdf(x[k]);
    d = std::max({d, std::abs(f - k / n), std::abs((k + 1) / n - f)});
  }
  const double critical = std::sqrt(std::log(2 / 1e-6) / (2 * n));
  EXPECT_LT(d, critical) << what << ": D = " << d << " for n = " << n;
}

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

TYPED_TEST(FillTest, UniformStatistics) {
  using T = TypeParam;
  const double low = -0.25, high = 0.75;  // U(-b, b) shifted by c = 0.25, b = 0.5
  const double b = (high - low) / 2, c = (high + low) / 2;
  std::vector<T> x(kN);
  FillUniform<T>(KeyFor(1, "uniform"), low, high, 0, std::span<T>(x));
  std::vector<double> centered(x.size());
  for (size_t i = 0; i < x.size(); ++i) centered[i] = x[i] - c;
  reinit_test::ExpectUniform(centered, b, "uniform");
  const Moments m = MomentsOf(x);
  EXPECT_GE(m.min, low);
  EXPECT_LE(m.max, high);
  ExpectKolmogorovSmirnov(
      x, [&](double v) { return std::clamp((v - low) / (high - low), 0.0, 1.0); }, "uniform");
}

TYPED_TEST(FillTest, NormalStatistics) {
  using T = TypeParam;
  const double sigma = 0.2;
  const size_t n = 1 << 22;  // enough for the tails beyond 4 sigma (266 expected)
  std::vector<T> x(n);
  FillNormal<T>(KeyFor(1, "normal"), sigma, 0, std::span<T>(x));
  reinit_test::ExpectNormal(std::vector<double>(x.begin(), x.end()), sigma * sigma, "normal");
  const Moments m = MomentsOf(x);
  const double var = sigma * sigma;
  // Kurtosis E z^4 = 3 with Var z^4 = E z^8 - (E z^4)^2 = 105 - 9 = 96.
  EXPECT_NEAR(m.m4 / (var * var), 3.0, kSigmas * std::sqrt(96.0 / n));
  // Tail counts are binomial: P(|z| > t) = erfc(t / sqrt 2).
  for (double t : {2.0, 3.0, 4.0}) {
    const double p = std::erfc(t / std::numbers::sqrt2);
    const double beyond =
        std::count_if(x.begin(), x.end(), [&](T v) { return std::abs(v) > t * sigma; }) /
        static_cast<double>(n);
    EXPECT_NEAR(beyond, p, kSigmas * std::sqrt(p * (1 - p) / n)) << "P(|z| > " << t << ")";
  }
  // Nothing beyond the largest radius sqrt(-2 ln 2^-33) = 6.764 (u never reaches 0).
  EXPECT_LE(std::max(-m.min, m.max), 6.7640 * sigma);
  ExpectKolmogorovSmirnov(
      x, [&](double v) { return NormalCdf(v / sigma); }, "normal");
}

TYPED_TEST(FillTest, TruncatedNormalStatistics) {
  using T = TypeParam;
  const double sigma = 0.1;
  for (double cut : {2.0, 1.0}) {
    std::vector<T> x(kN);
    FillTruncatedNormal<T>(KeyFor(1, "truncated"), sigma, cut, 0, std::span<T>(x));
    const Moments m = MomentsOf(x);
    const double n = kN;
    // Moments of N(0, 1) truncated to [-c, c]: with phi the density and Z = 2 Phi(c) - 1 the
    // mass inside, Var = 1 - 2 c phi(c) / Z and E z^4 = 3 - 2 c (c^2 + 3) phi(c) / Z.
    const double phi = std::exp(-cut * cut / 2) / std::sqrt(2 * std::numbers::pi);
    const double mass = std::erf(cut / std::numbers::sqrt2);
    const double tvar = 1 - 2 * cut * phi / mass;
    const double tm4 = 3 - 2 * cut * (cut * cut + 3) * phi / mass;
    if (cut == 2.0) {
      EXPECT_NEAR(tvar, 0.7737413, 1e-6);
      reinit_test::ExpectTruncated(std::vector<double>(x.begin(), x.end()), sigma * sigma * tvar,
                                   "truncated");
    }
    const double var = sigma * sigma * tvar;
    const double mu4 = sigma * sigma * sigma * sigma * tm4;
    // Casting to T rounds monotonically, so the bound holds exactly in T.
    const T bound = static_cast<T>(cut * sigma);
    EXPECT_LE(std::max(-m.min, m.max), bound);
    EXPECT_NEAR(m.mean, 0.0, kSigmas * std::sqrt(var / n));
    EXPECT_NEAR(m.var, var, kSigmas * std::sqrt((mu4 - var * var) / n));
    // Var of the sample fourth moment: E z^8 - (E z^4)^2 <= 105 sigma^8 (the untruncated one).
    EXPECT_NEAR(m.m4, mu4, kSigmas * std::sqrt(105 / n) * std::pow(sigma, 4));
    // The density at the cut is phi(c) / mass per unit z, so n draws leave a gap below the
    // cut of about 1 / (n 2 phi(c) / mass); 1e-3 is far outside that.
    EXPECT_GT(std::max(-m.min, m.max), (cut - 1e-3) * sigma);
    ExpectKolmogorovSmirnov(
        x,
        [&](double v) {
          const double z = std::clamp(v / sigma, -cut, cut);
          return (NormalCdf(z) - NormalCdf(-cut)) / mass;
        },
        "truncated at " + std::to_string(cut));
  }
}

TYPED_TEST(FillTest, DistinctKeysAndDomainsGiveUncorrelatedStreams) {
  using T = TypeParam;
  auto fill_normal = [](StreamKey key) {
    std::vector<T> v(kN);
    FillNormal<T>(key, 1.0, 0, std::span<T>(v));
    return v;
  };
  const std::vector<T> a = fill_normal(KeyFor(1, "a"));
  const std::vector<T> b = fill_normal(KeyFor(1, "b"));
  const std::vector<T> c = fill_normal(KeyFor(2, "a"));
  // Same key and index, other function: the truncated stream must not reuse the normal one.
  std::vector<T> t(kN), u(kN);
  FillTruncatedNormal<T>(KeyFor(1, "a"), 1.0, 10.0, 0, std::span<T>(t));
  FillUniform<T>(KeyFor(1, "a"), -1.0, 1.0, 0, std::span<T>(u));
  auto correlation = [](const std::vector<T>& x, const std::vector<T>& y) {
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
  // Elements sharing a block (a Box-Muller pair, or the two pairs) are uncorrelated, in value
  // and in square (the pair's r is shared, but r cos and r sin are independent).
  for (size_t offset : {1, 2, 3}) {
    std::vector<T> first(kN / 4), second(kN / 4), first_sq(kN / 4), second_sq(kN / 4);
    for (size_t i = 0; i < kN / 4; ++i) {
      first[i] = a[4 * i];
      second[i] = a[4 * i + offset];
      first_sq[i] = first[i] * first[i];
      second_sq[i] = second[i] * second[i];
    }
    const double tol = kSigmas / std::sqrt(kN / 4.0);
    EXPECT_NEAR(correlation(first, second), 0.0, tol) << offset;
    EXPECT_NEAR(correlation(first_sq, second_sq), 0.0, tol) << offset;
  }
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
  std::vector<double> y(5, 1.0);
  FillTruncatedNormal<double>(KeyFor(5, "t"), 1.0, std::nan(""), 0, std::span<double>(y));
  EXPECT_EQ(y, std::vector<double>(5, 0.0));
}

TEST(FillStreamTest, NegativeStdFlipsTheSign) {
  const StreamKey key = KeyFor(5, "negative");
  ForEachKernelWidth([&](int) {
    std::vector<float> a(1000), b(1000);
    FillNormal<float>(key, 0.5, 3, std::span<float>(a));
    FillNormal<float>(key, -0.5, 3, std::span<float>(b));
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], -b[i]) << i;
    FillTruncatedNormal<float>(key, 0.5, 1.0, 3, std::span<float>(a));
    FillTruncatedNormal<float>(key, -0.5, 1.0, 3, std::span<float>(b));
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], -b[i]) << i;
  });
}

TEST(FillStreamTest, TinyCutStaysInside) {
  // Acceptance 0.08% per candidate: about 1250 retries per element.
  std::vector<float> x(200);
  FillTruncatedNormal<float>(KeyFor(5, "tiny"), 2.0, 1e-3, 0, std::span<float>(x));
  for (float v : x) EXPECT_LE(std::abs(v), static_cast<float>(2e-3));
  EXPECT_GT(MomentsOf(x).max, 0.0f);
}

TEST(FillStreamTest, EmptySpanIsFine) {
  FillNormal<float>(KeyFor(1, "e"), 1.0, 3, std::span<float>());
  FillUniform<double>(KeyFor(1, "e"), 0.0, 1.0, 2, std::span<double>());
  FillTruncatedNormal<float>(KeyFor(1, "e"), 1.0, 2.0, 1, std::span<float>());
}

}  // namespace
}  // namespace rng_test
}  // namespace reinit

#include "rng.h"

#include <cmath>
#include <numbers>

namespace reinit {
namespace {

// Philox4x32 constants from Random123 (philox.h): round multipliers and the Weyl key bumps.
constexpr uint32_t kPhiloxM0 = 0xD2511F53;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85;
constexpr int kPhiloxRounds = 10;

// The 4th counter word of each Fill*, so that uniform, normal and truncated-normal draws for
// the same key and index never share a block. Arbitrary distinct tags ("unif", "norm", "trnc").
constexpr uint32_t kDomainUniform = 0x756E6966;
constexpr uint32_t kDomainNormal = 0x6E6F726D;
constexpr uint32_t kDomainTruncatedNormal = 0x74726E63;

constexpr double kTwoPi = 2.0 * std::numbers::pi;
constexpr double kTwoToMinus32 = 1.0 / 4294967296.0;

// u = (x + 0.5) * 2^-32: the midpoint of the x-th of 2^32 equal cells of [0, 1), so u is in
// (0, 1) and log(u) in Box-Muller is always finite. Exact in double.
inline double ToOpenUnit(uint32_t x) { return (static_cast<double>(x) + 0.5) * kTwoToMinus32; }

// One Philox round: (hi, lo) = M * x for words 0 and 2, then a Feistel-like mix with the key.
inline std::array<uint32_t, 4> PhiloxRound(const std::array<uint32_t, 4>& c, uint32_t k0,
                                           uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c[0];
  const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c[2];
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return {hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0};
}

inline std::array<uint32_t, 4> BlockCounter(uint64_t block, uint32_t word2, uint32_t domain) {
  return {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), word2, domain};
}

// Box-Muller: with u = ToOpenUnit(xa), v = ToOpenUnit(xb), r = sqrt(-2 ln u) and
// theta = 2 pi v, (r cos theta, r sin theta) are two independent N(0, 1) values.
inline std::array<double, 2> BoxMullerPair(uint32_t xa, uint32_t xb) {
  const double r = std::sqrt(-2.0 * std::log(ToOpenUnit(xa)));
  const double theta = kTwoPi * ToOpenUnit(xb);
  return {r * std::cos(theta), r * std::sin(theta)};
}

// Sets *value to the first of the pair with |z| <= cut, if any.
inline bool TakeFirstInside(const std::array<double, 2>& z, double cut, double* value) {
  for (double v : z) {
    if (std::abs(v) <= cut) {
      *value = v;
      return true;
    }
  }
  return false;
}

// Fills out[j] = T(value_of_block(block)[lane]) for element i = first_index + j, block i / 4
// and lane i % 4: one Philox call per block, with a partial block at each end at most.
template <typename T, typename BlockToValues>
void FillByBlocks(StreamKey key, uint32_t domain, uint64_t first_index, std::span<T> out,
                  BlockToValues block_to_values) {
  const size_t n = out.size();
  size_t j = 0;
  uint64_t block = first_index / 4;
  // Head: first_index may start in the middle of a block.
  if (const unsigned lane0 = first_index % 4; lane0 != 0 && n > 0) {
    const std::array<double, 4> v =
        block_to_values(Philox4x32(BlockCounter(block, 0, domain), key));
    for (unsigned lane = lane0; lane < 4 && j < n; ++lane) out[j++] = static_cast<T>(v[lane]);
    ++block;
  }
  // Whole blocks.
  for (; n - j >= 4; j += 4, ++block) {
    const std::array<double, 4> v =
        block_to_values(Philox4x32(BlockCounter(block, 0, domain), key));
    out[j] = static_cast<T>(v[0]);
    out[j + 1] = static_cast<T>(v[1]);
    out[j + 2] = static_cast<T>(v[2]);
    out[j + 3] = static_cast<T>(v[3]);
  }
  // Tail.
  if (j < n) {
    const std::array<double, 4> v =
        block_to_values(Philox4x32(BlockCounter(block, 0, domain), key));
    for (unsigned lane = 0; j < n; ++lane) out[j++] = static_cast<T>(v[lane]);
  }
}

}  // namespace

// FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) of the name's bytes,
// h = seed ^ fnv, then the SplitMix64 finalizer:
//   h = (h ^ h >> 30) * 0xbf58476d1ce4e5b9; h = (h ^ h >> 27) * 0x94d049bb133111eb; h ^= h >> 31
// k0 = low 32 bits, k1 = high 32 bits. The finalizer spreads seeds that differ in few bits.
StreamKey KeyFor(uint64_t seed, std::string_view tensor_name) {
  uint64_t fnv = 0xcbf29ce484222325ULL;
  for (const char c : tensor_name) {
    fnv ^= static_cast<unsigned char>(c);
    fnv *= 0x100000001b3ULL;
  }
  uint64_t h = seed ^ fnv;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return {static_cast<uint32_t>(h), static_cast<uint32_t>(h >> 32)};
}

// Random123's philox4x32 with R = 10: round(counter, key), then 9 times key += (W0, W1) and
// another round. Each round: (hi0, lo0) = M0 * c0, (hi1, lo1) = M1 * c2,
// c = {hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0}.
std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> counter, StreamKey key) {
  uint32_t k0 = key.k0, k1 = key.k1;
  counter = PhiloxRound(counter, k0, k1);
  for (int r = 1; r < kPhiloxRounds; ++r) {
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
    counter = PhiloxRound(counter, k0, k1);
  }
  return counter;
}

// value_i = low + (high - low) * u_i, u_i = (x_i + 0.5) * 2^-32, x_i = lane i % 4 of the block
// {i / 4, 0, kDomainUniform}.
template <typename T>
void FillUniform(StreamKey key, double low, double high, uint64_t first_index, std::span<T> out) {
  const double width = high - low;
  FillByBlocks(
      key, kDomainUniform, first_index, out, [low, width](const std::array<uint32_t, 4>& x) {
        return std::array<double, 4>{low + width * ToOpenUnit(x[0]), low + width * ToOpenUnit(x[1]),
                                     low + width * ToOpenUnit(x[2]),
                                     low + width * ToOpenUnit(x[3])};
      });
}

// value_i = std * z_i, z = Box-Muller of the block {i / 4, 0, kDomainNormal}: lanes 0, 1 are
// sqrt(-2 ln u0) (cos, sin)(2 pi u1); lanes 2, 3 the same with u2, u3.
template <typename T>
void FillNormal(StreamKey key, double std, uint64_t first_index, std::span<T> out) {
  FillByBlocks(key, kDomainNormal, first_index, out, [std](const std::array<uint32_t, 4>& x) {
    const std::array<double, 2> a = BoxMullerPair(x[0], x[1]);
    const std::array<double, 2> b = BoxMullerPair(x[2], x[3]);
    return std::array<double, 4>{std * a[0], std * a[1], std * b[0], std * b[1]};
  });
}

// value_i = std * z, z = the first of the four Box-Muller normals of block
// {i low, i high, a, kDomainTruncatedNormal} with |z| <= cut, for the smallest attempt a.
// Accepting z given |z| <= cut samples N(0, 1) conditioned on the cut exactly. Each element
// has its own blocks, so split invariance needs no bookkeeping across elements.
// A cut that is not > 0 (or NaN) accepts nothing; the limit of the distribution, 0, is written.
template <typename T>
void FillTruncatedNormal(StreamKey key, double std, double cut, uint64_t first_index,
                         std::span<T> out) {
  if (!(cut > 0.0)) {
    for (T& v : out) v = T(0);
    return;
  }
  for (size_t j = 0; j < out.size(); ++j) {
    const uint64_t i = first_index + j;
    double value = 0.0;
    // 2^32 attempts of 4 normals each: reached only for cuts near 1e-9, where 0 is the answer
    // to within the cut anyway.
    uint32_t attempt = 0;
    do {
      const std::array<uint32_t, 4> x =
          Philox4x32(BlockCounter(i, attempt, kDomainTruncatedNormal), key);
      // Lanes in order 0..3; the second Box-Muller pair is needed only if the first fails.
      if (TakeFirstInside(BoxMullerPair(x[0], x[1]), cut, &value) ||
          TakeFirstInside(BoxMullerPair(x[2], x[3]), cut, &value)) {
        break;
      }
    } while (++attempt != 0);
    out[j] = static_cast<T>(std * value);
  }
}

template void FillUniform<float>(StreamKey, double, double, uint64_t, std::span<float>);
template void FillUniform<double>(StreamKey, double, double, uint64_t, std::span<double>);
template void FillNormal<float>(StreamKey, double, uint64_t, std::span<float>);
template void FillNormal<double>(StreamKey, double, uint64_t, std::span<double>);
template void FillTruncatedNormal<float>(StreamKey, double, double, uint64_t, std::span<float>);
template void FillTruncatedNormal<double>(StreamKey, double, double, uint64_t, std::span<double>);

}  // namespace reinit

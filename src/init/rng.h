// Counter-based random numbers for weight initialization.
//
// Every value is a pure function of (seed, tensor name, element index, parameters): Philox4x32-10
// (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) keyed by a hash of
// the seed and the tensor's name, with the element's block index as the counter. So a tensor's
// values do not depend on which other tensors are re-initialized, on the order of work, or on
// how the work is split across threads or chunks: filling [0, n) at once or as [0, k) then
// [k, n) with `first_index = k` gives the same values.
//
// The float fills are vectorized (8 or 16 lanes) and use their own float approximations of
// log, sin and cos, built from +, -, *, sqrt, int-to-float conversion, comparisons and bit
// operations only: each is rounded as IEEE 754 prescribes whatever instruction runs it, so a
// float value is the same bytes on every CPU and vector width (the build does not contract
// a * b + c into FMA). The double fills compute the same formulas with libm in double.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace reinit {

struct StreamKey {
  uint32_t k0 = 0;
  uint32_t k1 = 0;
  bool operator==(const StreamKey&) const = default;
};

// The key of a tensor's stream: SplitMix64 of (seed xor FNV-1a-64(name)), split in two words.
StreamKey KeyFor(uint64_t seed, std::string_view tensor_name);

// One Philox4x32-10 block: 10 rounds on `counter` under `key`.
std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> counter, StreamKey key);

// The words of element i. Block b = i / 4 with attempt a is
//   x = Philox4x32({b low 32 bits, b high 32 bits, a, domain}, key),
// and element i reads lane l = i % 4 of it. Each Fill* has its own domain (ASCII tags
// "unif" 0x756E6966, "norm" 0x6E6F726D, "trnc" 0x74726E63), so their streams are independent;
// only the truncated normal uses attempts a > 0. Every word x becomes the open-interval uniform
//   u(x) = (x + 0.5) 2^-32 in (0, 1),
// the midpoint of the x-th of 2^32 equal cells, never 0 or 1.
//
// U(low, high): value_i = T(low + (high - low) u(x_l)) with a = 0, evaluated in double (u is
// exact there), rounded to T once. The float stream is the double stream rounded to float.
template <typename T>
void FillUniform(StreamKey key, double low, double high, uint64_t first_index, std::span<T> out);

// N(0, std^2) by Box-Muller: with a = 0, lanes 0, 1 use the pair (x0, x1) and lanes 2, 3 the
// pair (x2, x3); for the pair (p, q),
//   r = sqrt(-2 ln u(p)),  theta = 2 pi u(q),  z = r cos theta (even lane), r sin theta (odd).
// The largest |z| is sqrt(-2 ln 2^-33) = 6.764. theta is split exactly on the integers: with
// w = q + 2^29 (mod 2^32), k = w >> 30 and d = (w mod 2^30) - 2^29, theta = k pi / 2 + t,
// t = 2 pi (2 d + 1) 2^-33 in [-pi/4, pi/4], and (cos, sin) theta is (c, s), (-s, c), (-c, -s),
// (s, -c) of (c, s) = (cos, sin) t for k = 0, 1, 2, 3.
//   double: value = std * (r * cos theta) (or sin), libm log, sqrt, cos, sin in double.
//   float:  value = float(std) * (r * cos theta) in float, with -2 ln u and (cos, sin) t from
//           rng_internal's float approximations (range reduction without rounding, then
//           Cephes' logf, sinf and cosf polynomials; see rng.cc) and a correctly rounded sqrt.
//           Over all 2^32 inputs their relative errors are <= 1.36e-7 (1.6 ulp) for -2 ln u
//           and <= 1.92e-7 (2.9 ulp; absolute <= 1.1e-7) for cos and sin, so a float value is
//           within 5.5e-7 of |value| of the double one (rng_test.cc derives and checks both).
template <typename T>
void FillNormal(StreamKey key, double std, uint64_t first_index, std::span<T> out);

// N(0, std^2) conditioned on |x| <= cut * std, by rejection per element: candidate a of
// element i is the FillNormal-style z of lane i % 4 of block i / 4 with attempt a (domain
// "trnc"), and value_i = std * z for the first candidate with |z| <= cut. Accepting z given
// |z| <= cut samples N(0, 1) conditioned on the cut exactly (acceptance 95.4% per candidate at
// cut 2). Each element has its own candidates, so split invariance needs no bookkeeping.
//   double: value = std * z in double.
//   float:  the float z and the test |z| <= cut exactly (against the largest float <= cut);
//           value = float(std) * z in float, clamped to +-|float(std * cut)| so that rounding of
//           the product never leaves the interval.
// A cut that is not > 0 (or NaN) writes zeros; an element with 2^32 rejected candidates (cuts
// near 1e-9) gets 0.
template <typename T>
void FillTruncatedNormal(StreamKey key, double std, double cut, uint64_t first_index,
                         std::span<T> out);

// Internals of the float fills, exposed for tests.
namespace rng_internal {

// The float fills run W = 16 lanes per vector (AVX-512) where the CPU has it, else W = 8.
// Values do not depend on W; tests switch to check that bit for bit. Setting 16 fails (false)
// on CPUs without AVX-512 (F, VL, BW, DQ). Not for use while fills run on other threads.
int FloatKernelLanes();
bool SetFloatKernelLanes(int lanes);

// The float approximations, element k of each output computed from x[k] exactly as the fills
// compute it from a Philox word; the output spans have x.size() elements.

// -2 ln u(x), u(x) = (x + 0.5) 2^-32.
void MinusTwoLogFloat(std::span<const uint32_t> x, std::span<float> out);

// cos and sin of 2 pi u(x).
void CosSinTurnsFloat(std::span<const uint32_t> x, std::span<float> cos_out,
                      std::span<float> sin_out);

}  // namespace rng_internal

}  // namespace reinit

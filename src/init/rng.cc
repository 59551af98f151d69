#include "init/rng.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numbers>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// The kernels pass 32- and 64-byte vectors between always-inlined helpers; GCC and clang note
// that their calling convention differs without AVX, which matters only for real calls (none).
#pragma GCC diagnostic ignored "-Wpsabi"

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

// The kernels below must be inlined all the way into one function per vector width: as calls,
// their vectors would go through memory, and the AVX-512 entry points only get 64-byte
// registers for code inlined into them.
#define REINIT_INLINE inline __attribute__((always_inline))

// GCC vector extensions with W 32-bit lanes (W / 2 64-bit lanes): element-wise arithmetic,
// comparisons giving -1 / 0 lanes, ?: as a per-lane select, casts between same-size types as
// bit reinterpretation. On floats the code uses nothing but +, -, *, sqrt, int32 -> float
// conversion, comparisons and bit operations, each rounded as IEEE 754 says whatever
// instruction implements it, so every lane's value is the same for W = 8 (AVX2 or SSE) and
// W = 16 (AVX-512) and in scalar code. The build turns off contraction into FMA.
// __builtin_shuffle and ?: on vectors are GNU C++ (GCC; clang spells them differently).
template <int W>
struct Simd;
template <>
struct Simd<8> {
  typedef uint64_t U64 __attribute__((vector_size(32)));
  typedef uint32_t U32 __attribute__((vector_size(32)));
  typedef int32_t I32 __attribute__((vector_size(32)));
  typedef float F32 __attribute__((vector_size(32)));
  // __builtin_shuffle masks, see Interleave4 and PhiloxBatch.
  static constexpr I32 kUnpackLo32 = {0, 8, 1, 9, 4, 12, 5, 13};
  static constexpr I32 kUnpackHi32 = {2, 10, 3, 11, 6, 14, 7, 15};
  static constexpr I32 kUnpackLo64 = {0, 1, 8, 9, 4, 5, 12, 13};
  static constexpr I32 kUnpackHi64 = {2, 3, 10, 11, 6, 7, 14, 15};
  static constexpr I32 kLowWords = {0, 2, 8, 10, 4, 6, 12, 14};
};
template <>
struct Simd<16> {
  typedef uint64_t U64 __attribute__((vector_size(64)));
  typedef uint32_t U32 __attribute__((vector_size(64)));
  typedef int32_t I32 __attribute__((vector_size(64)));
  typedef float F32 __attribute__((vector_size(64)));
  static constexpr I32 kUnpackLo32 = {0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29};
  static constexpr I32 kUnpackHi32 = {2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31};
  static constexpr I32 kUnpackLo64 = {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
  static constexpr I32 kUnpackHi64 = {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31};
  static constexpr I32 kLowWords = {0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30};
};

typedef Simd<8>::U32 U32x8;
typedef Simd<8>::I32 I32x8;
typedef Simd<8>::F32 F32x8;

// GCC's __builtin_shuffle(a, mask) and (a, b, mask). clang has only __builtin_shufflevector,
// whose indices must be literal constants, so under clang (the fuzzing build) the permutation is
// written lane by lane: each lane is a copy, so the values are the same. GCC compiles the
// builtin itself.
#if defined(__clang__)
template <typename V, typename M>
REINIT_INLINE V ClangShuffle(const V& a, const V& b, const M& mask) {
  constexpr int kLanes = sizeof(V) / sizeof(a[0]);
  V r;
  for (int l = 0; l < kLanes; ++l) r[l] = mask[l] < kLanes ? a[mask[l]] : b[mask[l] - kLanes];
  return r;
}
template <typename V, typename M>
REINIT_INLINE V ClangShuffle(const V& a, const M& mask) {
  return ClangShuffle(a, a, mask);
}
#define REINIT_SHUFFLE ClangShuffle
#else
#define REINIT_SHUFFLE __builtin_shuffle
#endif

// (low 32 bits of a) * (low 32 bits of b) per 64-bit lane: one vpmuludq, which GCC does not
// find in the masked generic form (it multiplies 64 x 64). The 64-byte form is only inlined
// into AVX-512 code; it is written as asm because intrinsics refuse to inline into functions
// compiled for other targets, even on the way to an AVX-512 one. clang checks an asm operand's
// size against the file's target, not the function's, and refuses it: under clang the 64-byte
// forms here and in SqrtVec and MoveMask are the generic code (the same values).
template <typename U64>
REINIT_INLINE U64 MulLow32(const U64& a, const U64& b) {
#if defined(__x86_64__) && !defined(__clang__)
  if constexpr (sizeof(U64) == 64) {
    U64 r;
    asm("vpmuludq %2, %1, %0" : "=v"(r) : "v"(a), "v"(b));
    return r;
  }
#endif
#if defined(__AVX2__)
  if constexpr (sizeof(U64) == 32) return (U64)_mm256_mul_epu32((__m256i)a, (__m256i)b);
#endif
  return (a & 0xffffffffu) * (b & 0xffffffffu);
}

// The high word of each 64-bit lane moved to its low word (the high word keeps a copy): a
// shuffle, which x86 runs on another port than the multiplies and shifts.
template <typename U64>
REINIT_INLINE U64 High(const U64& p) {
  if constexpr (sizeof(U64) == 32) {
    return (U64)REINIT_SHUFFLE((Simd<8>::U32)p, Simd<8>::I32{1, 1, 3, 3, 5, 5, 7, 7});
  } else {
    return (U64)REINIT_SHUFFLE((Simd<16>::U32)p,
                               Simd<16>::I32{1, 1, 3, 3, 5, 5, 7, 7, 9, 9, 11, 11, 13, 13, 15, 15});
  }
}

// Correctly rounded, as IEEE 754 requires of every square root instruction.
template <typename F>
REINIT_INLINE F SqrtVec(const F& x) {
#if defined(__x86_64__) && !defined(__clang__)
  if constexpr (sizeof(F) == 64) {
    F r;
    asm("vsqrtps %1, %0" : "=v"(r) : "v"(x));
    return r;
  }
#endif
#if defined(__AVX__)
  if constexpr (sizeof(F) == 32) return (F)_mm256_sqrt_ps((__m256)x);
#endif
  F r;
  for (size_t l = 0; l < sizeof(F) / 4; ++l) r[l] = std::sqrt(x[l]);
  return r;
}

template <typename V, typename E>
REINIT_INLINE V Broadcast(E x) {
  return V{} + x;
}

// A batch is 2 W consecutive blocks = 8 W elements: for each Philox word, two vectors of W
// blocks (halves h = 0, 1), computed as four vectors of W / 2 blocks in 64-bit lanes.
template <int W>
constexpr int kBatchBlocks = 2 * W;
template <int W>
constexpr int kBatchValues = 8 * W;

// The Philox words of a batch: w[word][h] lane j holds the word of block h W + LaneBlock(j),
// an order chosen so that the transpose to element order (Interleave4) is two in-lane unpack
// steps, and the packing of 64-bit lanes into 32-bit ones (PhiloxBatch) one in-lane shuffle.
template <int W>
struct BatchWords {
  typename Simd<W>::U32 w[4][2];
};

// With j = 4 g + p (g the 128-bit group, p the position in it): block p W / 4 + g.
template <int W>
constexpr int LaneBlock(int j) {
  return (j % 4) * (W / 4) + j / 4;
}

// Where PhiloxBatch reads counter number s = h W + j: 64-bit vector 2 h + (p >> 1), lane
// 2 g + (p & 1) (the inverse of its kLowWords shuffle).
template <int W>
constexpr void PhiloxSlot(int s, int* v, int* lane) {
  const int h = s / W, j = s % W, g = j / 4, p = j % 4;
  *v = 2 * h + (p >> 1);
  *lane = 2 * g + (p & 1);
}

// Philox4x32-10 on 2 W counters. c[word][v] lane l is that word of counter number s with
// PhiloxSlot(s) = (v, l); only the low 32 bits of each lane are read. The rounds keep one block
// per 64-bit lane, where the 32 x 32 -> 64 multiply is one instruction, and let garbage build up
// in the high halves, which nothing reads: the multiply ignores them and only the low words are
// kept at the end.
template <int W>
REINIT_INLINE BatchWords<W> PhiloxBatch(typename Simd<W>::U64 (&c)[4][4], StreamKey key) {
  typedef typename Simd<W>::U64 U64;
  typedef typename Simd<W>::U32 U32;
  const U64 m0 = Broadcast<U64>(kPhiloxM0), m1 = Broadcast<U64>(kPhiloxM1);
  // Several independent vectors per pass hide the multiply's latency; with AVX2's 16
  // registers, two (8 state registers) is what fits.
  constexpr int kPerPass = W == 8 ? 2 : 4;
  for (int v0 = 0; v0 < 4; v0 += kPerPass) {
    U64 s[4][kPerPass];
    for (int v = 0; v < kPerPass; ++v) {
      for (int word = 0; word < 4; ++word) s[word][v] = c[word][v0 + v];
    }
    U64 k0 = Broadcast<U64>(key.k0), k1 = Broadcast<U64>(key.k1);
#pragma GCC unroll 10
    for (int r = 0; r < kPhiloxRounds; ++r) {
      for (int v = 0; v < kPerPass; ++v) {
        const U64 p0 = MulLow32(s[0][v], m0), p1 = MulLow32(s[2][v], m1);
        s[0][v] = High(p1) ^ s[1][v] ^ k0;
        s[2][v] = High(p0) ^ s[3][v] ^ k1;
        s[1][v] = p1;
        s[3][v] = p0;
      }
      k0 += kPhiloxW0;  // carries into the high halves, which are not read
      k1 += kPhiloxW1;
    }
    for (int v = 0; v < kPerPass; ++v) {
      for (int word = 0; word < 4; ++word) c[word][v0 + v] = s[word][v];
    }
  }
  BatchWords<W> out;
  for (int word = 0; word < 4; ++word) {
    for (int h = 0; h < 2; ++h) {
      out.w[word][h] =
          REINIT_SHUFFLE((U32)c[word][2 * h], (U32)c[word][2 * h + 1], Simd<W>::kLowWords);
    }
  }
  return out;
}

// The batch of blocks first_block .. first_block + 2 W - 1, counters {block, word2, domain}.
template <int W>
REINIT_INLINE BatchWords<W> PhiloxConsecutive(StreamKey key, uint64_t first_block, uint32_t word2,
                                              uint32_t domain) {
  typedef typename Simd<W>::U64 U64;
  // offsets[v][l]: the block offset that PhiloxSlot puts at vector v, lane l.
  struct Offsets {
    uint64_t at[4][W / 2];
  };
  static constexpr Offsets kOffsets = [] {
    Offsets o{};
    for (int s = 0; s < 2 * W; ++s) {
      int v = 0, lane = 0;
      PhiloxSlot<W>(s, &v, &lane);
      o.at[v][lane] = (s / W) * W + LaneBlock<W>(s % W);
    }
    return o;
  }();
  U64 c[4][4];
  for (int v = 0; v < 4; ++v) {
    U64 offset;
    std::memcpy(&offset, kOffsets.at[v], sizeof(offset));
    const U64 block = Broadcast<U64>(first_block) + offset;
    c[0][v] = block;
    c[1][v] = block >> 32;
    c[2][v] = Broadcast<U64>(word2);
    c[3][v] = Broadcast<U64>(domain);
  }
  return PhiloxBatch<W>(c, key);
}

// 4 x W transpose: from a, b, c, d with lane j = block LaneBlock(j) to 4 W values in element
// order (a, b, c, d of block 0, then of block 1, ...), stored at out.
template <int W, typename V, typename E>
REINIT_INLINE void Interleave4(const V& a, const V& b, const V& c, const V& d, E* out) {
  const V t0 = REINIT_SHUFFLE(a, b, Simd<W>::kUnpackLo32);
  const V t1 = REINIT_SHUFFLE(a, b, Simd<W>::kUnpackHi32);
  const V t2 = REINIT_SHUFFLE(c, d, Simd<W>::kUnpackLo32);
  const V t3 = REINIT_SHUFFLE(c, d, Simd<W>::kUnpackHi32);
  const V u[4] = {
      REINIT_SHUFFLE(t0, t2, Simd<W>::kUnpackLo64), REINIT_SHUFFLE(t0, t2, Simd<W>::kUnpackHi64),
      REINIT_SHUFFLE(t1, t3, Simd<W>::kUnpackLo64), REINIT_SHUFFLE(t1, t3, Simd<W>::kUnpackHi64)};
  std::memcpy(out, u, sizeof(u));
}

// The batch's 8 W words in element order: words[4 b + l] = word l of block first_block + b.
template <int W>
REINIT_INLINE void ConsecutiveWords(StreamKey key, uint64_t first_block, uint32_t domain,
                                    uint32_t* words) {
  const BatchWords<W> w = PhiloxConsecutive<W>(key, first_block, 0, domain);
  for (int h = 0; h < 2; ++h) {
    Interleave4<W>(w.w[0][h], w.w[1][h], w.w[2][h], w.w[3][h], words + 4 * W * h);
  }
}

// K independent vectors that every operation below applies to one after the other. The
// polynomials are long dependency chains (about 100 cycles for the log); written over a pack,
// the compiler emits K interleaved chains and the core keeps its units busy. Lane by lane the
// operations are exactly those on a single vector.
template <typename V, int K>
struct Pack {
  V v[K];
};

#define REINIT_PACK_BINARY(op)                                                                   \
  template <typename V, int K>                                                                   \
  REINIT_INLINE Pack<V, K> operator op(const Pack<V, K>& a, const Pack<V, K>& b) {               \
    Pack<V, K> r;                                                                                \
    for (int k = 0; k < K; ++k) r.v[k] = a.v[k] op b.v[k];                                       \
    return r;                                                                                    \
  }                                                                                              \
  template <typename V, int K, typename S, typename = std::enable_if_t<std::is_arithmetic_v<S>>> \
  REINIT_INLINE Pack<V, K> operator op(const Pack<V, K>& a, S b) {                               \
    Pack<V, K> r;                                                                                \
    for (int k = 0; k < K; ++k) r.v[k] = a.v[k] op b;                                            \
    return r;                                                                                    \
  }                                                                                              \
  template <typename V, int K, typename S, typename = std::enable_if_t<std::is_arithmetic_v<S>>> \
  REINIT_INLINE Pack<V, K> operator op(S a, const Pack<V, K>& b) {                               \
    Pack<V, K> r;                                                                                \
    for (int k = 0; k < K; ++k) r.v[k] = a op b.v[k];                                            \
    return r;                                                                                    \
  }
REINIT_PACK_BINARY(+)
REINIT_PACK_BINARY(-)
REINIT_PACK_BINARY(*)
REINIT_PACK_BINARY(&)
REINIT_PACK_BINARY(|)
REINIT_PACK_BINARY(^)
REINIT_PACK_BINARY(<<)
REINIT_PACK_BINARY(>>)
#undef REINIT_PACK_BINARY

// Comparisons with a scalar give -1 / 0 lanes of the same width, as the vector extensions do.
#define REINIT_PACK_COMPARE(op)                                                        \
  template <typename V, int K, typename S>                                             \
  REINIT_INLINE Pack<decltype(V {} op V{}), K> operator op(const Pack<V, K>& a, S b) { \
    Pack<decltype(V {} op V{}), K> r;                                                  \
    for (int k = 0; k < K; ++k) r.v[k] = a.v[k] op b;                                  \
    return r;                                                                          \
  }
REINIT_PACK_COMPARE(<)
REINIT_PACK_COMPARE(<=)
REINIT_PACK_COMPARE(!=)
#undef REINIT_PACK_COMPARE

template <typename V, int K>
REINIT_INLINE Pack<V, K> operator-(const Pack<V, K>& a) {
  Pack<V, K> r;
  for (int k = 0; k < K; ++k) r.v[k] = -a.v[k];
  return r;
}

template <typename V, int K>
REINIT_INLINE Pack<V, K> operator~(const Pack<V, K>& a) {
  Pack<V, K> r;
  for (int k = 0; k < K; ++k) r.v[k] = ~a.v[k];
  return r;
}

// Per lane: mask ? a : b, for masks of -1 / 0 lanes.
template <typename M, typename V, int K>
REINIT_INLINE Pack<V, K> Select(const Pack<M, K>& mask, const Pack<V, K>& a, const Pack<V, K>& b) {
  Pack<V, K> r;
  for (int k = 0; k < K; ++k) r.v[k] = mask.v[k] ? a.v[k] : b.v[k];
  return r;
}

// Reinterprets the bits (To has the size of the pack's vectors).
template <typename To, typename V, int K>
REINIT_INLINE Pack<To, K> BitCast(const Pack<V, K>& a) {
  Pack<To, K> r;
  for (int k = 0; k < K; ++k) r.v[k] = (To)a.v[k];
  return r;
}

// int32 to float, rounded to nearest.
template <typename F, typename I, int K>
REINIT_INLINE Pack<F, K> ToFloat(const Pack<I, K>& a) {
  Pack<F, K> r;
  for (int k = 0; k < K; ++k) r.v[k] = __builtin_convertvector(a.v[k], F);
  return r;
}

template <typename F, int K>
REINIT_INLINE Pack<F, K> Sqrt(const Pack<F, K>& a) {
  Pack<F, K> r;
  for (int k = 0; k < K; ++k) r.v[k] = SqrtVec(a.v[k]);
  return r;
}

template <int W, int K>
using FloatPack = Pack<typename Simd<W>::F32, K>;
template <int W, int K>
using IntPack = Pack<typename Simd<W>::I32, K>;
template <int W, int K>
using UintPack = Pack<typename Simd<W>::U32, K>;

// -2 ln u for u = (x + 0.5) 2^-32, in float.
//
// u itself has 33 significant bits, so it is never formed in float near 1, where ln u ~ u - 1
// would lose them. With y = x for x < 2^31 and y = 2^32 - 1 - x otherwise, v = (2 y + 1) 2^-33
// (rounded once to float, relative error <= 2^-24) is u or 1 - u, in (0, 1/2]; then
// ln u = e ln 2 + ln(1 + f) with
//   u = v:                 v = m 2^e, m in [sqrt(1/2), sqrt 2), f = m - 1 (exact),
//   u = 1 - v, v <= 0.293: e = 0, f = -v (exact),
//   u = 1 - v, v > 0.293:  e = -1, f = 1 - 2 v (exact by Sterbenz),
// so f in [-0.293, 0.415) carries v's only rounding. ln(1 + f) is Cephes logf's
//   f - f^2 / 2 + f^3 P(f), P of degree 8 (peak relative error 7.6e-8 on [sqrt(1/2), sqrt 2)),
// and e ln 2 is added as e C1 + e C2 with C1 = 0.693359375 exact in 9 bits.
template <int W, int K>
REINIT_INLINE FloatPack<W, K> MinusTwoLog(const UintPack<W, K>& x) {
  typedef typename Simd<W>::F32 F;
  typedef typename Simd<W>::I32 I;
  typedef typename Simd<W>::U32 U;
  const UintPack<W, K> upper = BitCast<U>(BitCast<I>(x) >> 31);  // ones where x >= 2^31
  const UintPack<W, K> n = ((x ^ upper) << 1) | 1u;              // 2 y + 1, odd, < 2^32
  // Unsigned to float with one rounding: both halves exact, one rounded sum.
  const FloatPack<W, K> v =
      (ToFloat<F>(BitCast<I>(n >> 16)) * 65536.0f + ToFloat<F>(BitCast<I>(n & 0xffffu))) * 0x1p-33f;
  // u = v: v = m 2^e with m in [1/2, 1) from the bits (v >= 2^-33 is normal), then moved into
  // [sqrt(1/2), sqrt 2).
  const UintPack<W, K> vb = BitCast<U>(v);
  const FloatPack<W, K> half_m = BitCast<F>((vb & 0x007fffffu) | 0x3f000000u);
  const IntPack<W, K> below = half_m < 0.707106781186547524f;  // -1 where m < sqrt(1/2)
  const IntPack<W, K> e_low = BitCast<I>(vb >> 23) - 126 + below;
  const FloatPack<W, K> f_low = Select(below, half_m + half_m, half_m) - 1.0f;
  // u = 1 - v.
  const IntPack<W, K> near_one = v <= 0.292893218813452476f;  // 1 - sqrt(1/2)
  const FloatPack<W, K> f_high = Select(near_one, -v, 1.0f - (v + v));
  const IntPack<W, K> e_high = ~near_one;  // 0 or -1
  const IntPack<W, K> is_upper = BitCast<I>(upper);
  const FloatPack<W, K> f = Select(is_upper, f_high, f_low);
  const FloatPack<W, K> e = ToFloat<F>(Select(is_upper, e_high, e_low));
  const FloatPack<W, K> z = f * f;
  FloatPack<W, K> y = 7.0376836292E-2f * f - 1.1514610310E-1f;
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
  const FloatPack<W, K> ln = (f + y) + e * 0.693359375f;
  return -2.0f * ln;
}

// cos and sin of theta = 2 pi u, u = (x + 0.5) 2^-32, in float.
//
// The quadrant comes from the integers: with q = x + 2^29 (mod 2^32), k = q >> 30 and
// d = (q mod 2^30) - 2^29, theta = k pi / 2 + a with a = 2 pi (2 d + 1) 2^-33 in [-pi/4, pi/4];
// 2 d + 1 is rounded once to float, then multiplied by float(2 pi) 2^-33. On a, Cephes sinf's
// and cosf's polynomials (relative error 3.8e-9 and 7.8e-8 on [-pi/4, pi/4]):
//   sin a = a + a z (S0 + z (S1 + z S2)),  cos a = 1 - z / 2 + z^2 (C0 + z (C1 + z C2)),
// z = a^2; then (cos, sin) theta = (c, s), (-s, c), (-c, -s), (s, -c) for k = 0, 1, 2, 3.
template <int W, int K>
REINIT_INLINE void CosSin(const UintPack<W, K>& x, FloatPack<W, K>* cos_theta,
                          FloatPack<W, K>* sin_theta) {
  typedef typename Simd<W>::F32 F;
  typedef typename Simd<W>::I32 I;
  typedef typename Simd<W>::U32 U;
  const UintPack<W, K> q = x + 0x20000000u;
  const UintPack<W, K> k = q >> 30;
  const IntPack<W, K> d = BitCast<I>(q & 0x3fffffffu) - 0x20000000;
  const FloatPack<W, K> a = ToFloat<F>(d + d + 1) * static_cast<float>(kTwoPi * 0x1p-33);
  const FloatPack<W, K> z = a * a;
  const FloatPack<W, K> s =
      ((-1.9515295891E-4f * z + 8.3321608736E-3f) * z - 1.6666654611E-1f) * z * a + a;
  const FloatPack<W, K> c =
      ((2.443315711809948E-5f * z - 1.388731625493765E-3f) * z + 4.166664568298827E-2f) * z * z -
      0.5f * z + 1.0f;
  const IntPack<W, K> swap = (k & 1u) != 0u;
  const UintPack<W, K> cos_sign = ((k + 1u) & 2u) << 30;  // k = 1, 2
  const UintPack<W, K> sin_sign = (k & 2u) << 30;         // k = 2, 3
  *cos_theta = BitCast<F>(BitCast<U>(Select(swap, s, c)) ^ cos_sign);
  *sin_theta = BitCast<F>(BitCast<U>(Select(swap, c, s)) ^ sin_sign);
}

// Box-Muller in float: r = sqrt(-2 ln u), (r cos theta, r sin theta).
template <int W, int K>
REINIT_INLINE void BoxMuller(const UintPack<W, K>& xu, const UintPack<W, K>& xt,
                             FloatPack<W, K>* z_cos, FloatPack<W, K>* z_sin) {
  const FloatPack<W, K> r = Sqrt(MinusTwoLog<W>(xu));
  FloatPack<W, K> c, s;
  CosSin<W>(xt, &c, &s);
  *z_cos = r * c;
  *z_sin = r * s;
}

// The 8 W normals of a batch times `scale`, in element order (see FillNormal): both pairs of
// both halves as one pack of 4.
template <int W>
REINIT_INLINE void NormalBatchF32(const BatchWords<W>& w, float scale, float* out) {
  const UintPack<W, 4> xu = {{w.w[0][0], w.w[0][1], w.w[2][0], w.w[2][1]}};
  const UintPack<W, 4> xt = {{w.w[1][0], w.w[1][1], w.w[3][0], w.w[3][1]}};
  FloatPack<W, 4> z_cos, z_sin;
  BoxMuller<W>(xu, xt, &z_cos, &z_sin);
  z_cos = z_cos * scale;
  z_sin = z_sin * scale;
  for (int h = 0; h < 2; ++h) {
    Interleave4<W>(z_cos.v[h], z_sin.v[h], z_cos.v[2 + h], z_sin.v[2 + h], out + 4 * W * h);
  }
}

// The same quantities in double, from libm: -2 ln u and (cos, sin) 2 pi u, with the quadrant
// split of CosSin done exactly (a = 2 pi (2 d + 1) 2^-33 rounded once).
inline double MinusTwoLogF64(uint32_t x) {
  return -2.0 * std::log((static_cast<double>(x) + 0.5) * 0x1p-32);
}

inline void CosSinF64(uint32_t x, double* cos_theta, double* sin_theta) {
  const uint32_t q = x + 0x20000000u;
  const uint32_t k = q >> 30;
  const int32_t d = static_cast<int32_t>(q & 0x3fffffffu) - 0x20000000;
  const double a = (2.0 * d + 1.0) * (kTwoPi * 0x1p-33);
  const double c = std::cos(a), s = std::sin(a);
  switch (k) {
    case 0:
      *cos_theta = c, *sin_theta = s;
      break;
    case 1:
      *cos_theta = -s, *sin_theta = c;
      break;
    case 2:
      *cos_theta = -c, *sin_theta = -s;
      break;
    default:
      *cos_theta = s, *sin_theta = -c;
      break;
  }
}

// Element `lane` (0..3) of the Box-Muller normals of one block, in double: lanes 0, 1 are
// r cos, r sin of the pair (words 0, 1), lanes 2, 3 of the pair (words 2, 3).
inline double NormalOfBlockF64(const uint32_t* words, unsigned lane) {
  const unsigned pair = lane & 2u;
  double c, s;
  CosSinF64(words[pair + 1], &c, &s);
  return std::sqrt(MinusTwoLogF64(words[pair])) * ((lane & 1u) ? s : c);
}

// Calls batch(block, values) for batches of 2 W blocks covering [first_index, first_index + n)
// (values[4 b + l] is element 4 (block + b) + l) and copies the elements in range to out.
// Batches that fall whole and in place in out are written there directly.
template <int W, typename T, typename Batch>
REINIT_INLINE void FillByBatches(uint64_t first_index, std::span<T> out, Batch batch) {
  const size_t n = out.size();
  size_t j = 0;
  while (j < n) {
    const uint64_t i = first_index + j;
    const uint64_t block = i / 4;
    const unsigned lane = i % 4;
    if (lane == 0 && n - j >= kBatchValues<W>) {
      batch(block, out.data() + j);
      j += kBatchValues<W>;
      continue;
    }
    alignas(64) T values[kBatchValues<W>];
    batch(block, values);
    const size_t take = std::min<size_t>(kBatchValues<W> - lane, n - j);
    std::copy_n(values + lane, take, out.data() + j);
    j += take;
  }
}

// value = low + (high - low) u in double (see FillUniform), rounded to T.
template <int W, typename T>
REINIT_INLINE void UniformImpl(StreamKey key, double low, double high, uint64_t first_index,
                               std::span<T> out) {
  const double width = high - low;
  FillByBatches<W>(
      first_index, out, [&](uint64_t block, T * values) __attribute__((always_inline)) {
        alignas(64) uint32_t words[kBatchValues<W>];
        ConsecutiveWords<W>(key, block, kDomainUniform, words);
        for (int k = 0; k < kBatchValues<W>; ++k) {
          // x as a signed int32 plus 2^31 + 0.5: exact, and a conversion SIMD has.
          const double x =
              static_cast<double>(static_cast<int32_t>(words[k] ^ 0x80000000u)) + 2147483648.5;
          values[k] = static_cast<T>(low + width * (x * 0x1p-32));
        }
      });
}

template <int W>
REINIT_INLINE void NormalF32Impl(StreamKey key, double std, uint64_t first_index,
                                 std::span<float> out) {
  const float scale = static_cast<float>(std);
  FillByBatches<W>(
      first_index, out, [&](uint64_t block, float* values) __attribute__((always_inline)) {
        NormalBatchF32<W>(PhiloxConsecutive<W>(key, block, 0, kDomainNormal), scale, values);
      });
}

// Bit l set where lane l of the mask is -1.
template <typename I>
REINIT_INLINE uint32_t MoveMask(const I& m) {
#if defined(__x86_64__) && !defined(__clang__)
  if constexpr (sizeof(I) == 64) {  // AVX-512 code only, see MulLow32
    uint16_t bits;
    asm("vpmovd2m %1, %0" : "=k"(bits) : "v"(m));
    return bits;
  }
#endif
#if defined(__AVX__)
  if constexpr (sizeof(I) == 32) return static_cast<uint32_t>(_mm256_movemask_ps((__m256)m));
#endif
  uint32_t bits = 0;
  for (size_t l = 0; l < sizeof(I) / 4; ++l) bits |= (static_cast<uint32_t>(m[l]) >> 31) << l;
  return bits;
}

// The float truncated normal: candidates are float Box-Muller normals, kept if |z| <= cut_f
// (the largest float <= cut, so the same test as |z| <= cut in exact arithmetic); the value is
// float(std) * z clamped to +-|float(std * cut)| against the product's rounding. Attempt 0 of
// every element is drawn by batches as in FillNormal; the rejected ones (4.6% at cut 2) wait in
// a list and are retried 2 W at a time, one Philox block per element.
template <int W>
class TruncatedF32 {
 public:
  TruncatedF32(StreamKey key, double std, double cut, uint64_t first_index, std::span<float> out)
      : key_(key), first_index_(first_index), out_(out), scale_(static_cast<float>(std)) {
    float c = static_cast<float>(cut);
    if (static_cast<double>(c) > cut) c = std::nextafter(c, 0.0f);
    cut_ = c;
    bound_ = std::abs(static_cast<float>(std * cut));  // a negative std flips the sign only
  }

  REINIT_INLINE void Run() {
    typedef typename Simd<W>::F32 F;
    typedef typename Simd<W>::U32 U;
    const float scale = scale_, cut = cut_, bound = bound_;
    float* const out = out_.data();
    const size_t n = out_.size();
    size_t j = 0;
    while (j < n) {
      const uint64_t i = first_index_ + j;
      const uint64_t block = i / 4;
      const unsigned lane = i % 4;
      alignas(64) float z[kBatchValues<W>];
      NormalBatchF32<W>(PhiloxConsecutive<W>(key_, block, 0, kDomainTruncatedNormal), 1.0f, z);
      const size_t take = std::min<size_t>(kBatchValues<W> - lane, n - j);
      if (take == kBatchValues<W>) {
        for (int g = 0; g < kBatchValues<W>; g += W) {
          F zg;
          std::memcpy(&zg, z + g, sizeof(zg));
          const F value = zg * scale;
          const F clamped = value > bound    ? Broadcast<F>(bound)
                            : value < -bound ? Broadcast<F>(-bound)
                                             : value;
          std::memcpy(out + j + g, &clamped, sizeof(clamped));
          const F abs = (F)((U)zg & 0x7fffffffu);
          for (uint32_t rejected = MoveMask(abs > cut); rejected != 0; rejected &= rejected - 1) {
            const int k = __builtin_ctz(rejected);
            Defer(i + g + k, j + g + k);
          }
        }
      } else {
        for (size_t k = 0; k < take; ++k) {
          const float zk = z[lane + k];
          if (std::abs(zk) <= cut) {
            out[j + k] = std::min(std::max(zk * scale, -bound), bound);
          } else {
            Defer(i + k, j + k);
          }
        }
      }
      j += take;
      while (pending_count_ >= kRetryLanes) Retry();
    }
    while (pending_count_ > 0) Retry();
  }

 private:
  static constexpr int kRetryLanes = 2 * W;
  // At most 2 W - 1 left from retries plus a whole batch of rejects.
  static constexpr int kPendingCapacity = kRetryLanes + kBatchValues<W>;

  REINIT_INLINE void Defer(uint64_t element, size_t out_index) {
    element_[pending_count_] = element;
    attempt_[pending_count_] = 1;
    out_index_[pending_count_] = out_index;
    ++pending_count_;
  }

  // The next attempt of the first 2 W pending elements at once, one counter each: block
  // {i / 4, attempt, domain}, the pair and the side of lane i % 4. Pending entry e takes Philox
  // vector e / (W / 2), lane e % (W / 2), so the counters load straight from the lists; the
  // normals come out in BatchWords order, slot s holding the entry at PhiloxSlot(s).
  REINIT_INLINE void Retry() {
    typedef typename Simd<W>::U64 U64;
    typedef typename Simd<W>::U32 U32;
    const int count = std::min(pending_count_, kRetryLanes);
    for (int e = count; e < kRetryLanes; ++e) {  // unused lanes: any valid counter
      element_[e] = 0;
      attempt_[e] = 0;
    }
    U64 c[4][4], element[4];
    for (int v = 0; v < 4; ++v) {
      std::memcpy(&element[v], element_ + v * (W / 2), sizeof(U64));
      std::memcpy(&c[2][v], attempt_ + v * (W / 2), sizeof(U64));
      c[0][v] = element[v] >> 2;
      c[1][v] = element[v] >> 34;
      c[3][v] = Broadcast<U64>(kDomainTruncatedNormal);
    }
    const BatchWords<W> w = PhiloxBatch<W>(c, key_);
    // The elements' low words in the same order as the words.
    Pack<U32, 2> low;
    for (int h = 0; h < 2; ++h) {
      low.v[h] = REINIT_SHUFFLE((U32)element[2 * h], (U32)element[2 * h + 1], Simd<W>::kLowWords);
    }
    const auto pair = (low & 2u) != 0u;
    const auto side = (low & 1u) != 0u;
    const Pack<U32, 2> w0 = {{w.w[0][0], w.w[0][1]}}, w1 = {{w.w[1][0], w.w[1][1]}};
    const Pack<U32, 2> w2 = {{w.w[2][0], w.w[2][1]}}, w3 = {{w.w[3][0], w.w[3][1]}};
    FloatPack<W, 2> z_cos, z_sin;
    BoxMuller<W>(Select(pair, w2, w0), Select(pair, w3, w1), &z_cos, &z_sin);
    const FloatPack<W, 2> z_pack = Select(side, z_sin, z_cos);
    alignas(64) float z_slot[kRetryLanes];
    std::memcpy(z_slot, z_pack.v, sizeof(z_slot));
    float z[kRetryLanes];
    for (int s = 0; s < kRetryLanes; ++s) {
      int v = 0, lane = 0;
      PhiloxSlot<W>(s, &v, &lane);
      z[v * (W / 2) + lane] = z_slot[s];
    }
    // Branch-free, as acceptance is random: every retried element writes its candidate, which
    // a later attempt overwrites if this one is rejected. After 2^32 rejected attempts (cuts
    // near 1e-9) the element is done with 0, which is within the cut anyway.
    int kept = 0;
    for (int e = 0; e < count; ++e) {
      const bool inside = std::abs(z[e]) <= cut_;
      const bool exhausted = attempt_[e] == 0xffffffffu;
      const float value = std::min(std::max(z[e] * scale_, -bound_), bound_);
      out_[out_index_[e]] = inside ? value : 0.0f;
      element_[kept] = element_[e];
      attempt_[kept] = attempt_[e] + 1;
      out_index_[kept] = out_index_[e];
      kept += !(inside || exhausted);
    }
    for (int e = count; e < pending_count_; ++e, ++kept) {
      element_[kept] = element_[e];
      attempt_[kept] = attempt_[e];
      out_index_[kept] = out_index_[e];
    }
    pending_count_ = kept;
  }

  StreamKey key_;
  uint64_t first_index_;
  std::span<float> out_;
  float scale_, cut_, bound_;
  // The pending elements: index, next attempt, where the value goes.
  alignas(64) uint64_t element_[kPendingCapacity];
  alignas(64) uint64_t attempt_[kPendingCapacity];
  size_t out_index_[kPendingCapacity];
  int pending_count_ = 0;
};

// The float fills for W = 8 (whatever the build targets: AVX2 with x86-64-v3) and, on x86-64
// CPUs that have it, W = 16 with AVX-512.
void UniformW8(StreamKey key, double low, double high, uint64_t first, std::span<float> out) {
  UniformImpl<8>(key, low, high, first, out);
}
void UniformW8(StreamKey key, double low, double high, uint64_t first, std::span<double> out) {
  UniformImpl<8>(key, low, high, first, out);
}
void NormalW8(StreamKey key, double std, uint64_t first, std::span<float> out) {
  NormalF32Impl<8>(key, std, first, out);
}
void TruncatedW8(StreamKey key, double std, double cut, uint64_t first, std::span<float> out) {
  TruncatedF32<8>(key, std, cut, first, out).Run();
}

#if defined(__x86_64__)
#define REINIT_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
REINIT_AVX512 void UniformW16(StreamKey key, double low, double high, uint64_t first,
                              std::span<float> out) {
  UniformImpl<16>(key, low, high, first, out);
}
REINIT_AVX512 void UniformW16(StreamKey key, double low, double high, uint64_t first,
                              std::span<double> out) {
  UniformImpl<16>(key, low, high, first, out);
}
REINIT_AVX512 void NormalW16(StreamKey key, double std, uint64_t first, std::span<float> out) {
  NormalF32Impl<16>(key, std, first, out);
}
REINIT_AVX512 void TruncatedW16(StreamKey key, double std, double cut, uint64_t first,
                                std::span<float> out) {
  TruncatedF32<16>(key, std, cut, first, out).Run();
}
#undef REINIT_AVX512

bool CpuHasAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}
#else
bool CpuHasAvx512() { return false; }
#endif

std::atomic<int> float_kernel_lanes{CpuHasAvx512() ? 16 : 8};

bool UseW16() { return float_kernel_lanes.load(std::memory_order_relaxed) == 16; }

}  // namespace

namespace rng_internal {

int FloatKernelLanes() { return float_kernel_lanes.load(); }

bool SetFloatKernelLanes(int lanes) {
  if (lanes != 8 && !(lanes == 16 && CpuHasAvx512())) return false;
  float_kernel_lanes.store(lanes);
  return true;
}

void MinusTwoLogFloat(std::span<const uint32_t> x, std::span<float> out) {
  for (size_t k = 0; k < x.size(); k += 8) {
    U32x8 xv = {};
    const size_t m = std::min<size_t>(8, x.size() - k);
    std::memcpy(&xv, x.data() + k, 4 * m);
    const FloatPack<8, 1> r = MinusTwoLog<8>(UintPack<8, 1>{{xv}});
    std::memcpy(out.data() + k, r.v, 4 * m);
  }
}

void CosSinTurnsFloat(std::span<const uint32_t> x, std::span<float> cos_out,
                      std::span<float> sin_out) {
  for (size_t k = 0; k < x.size(); k += 8) {
    U32x8 xv = {};
    const size_t m = std::min<size_t>(8, x.size() - k);
    std::memcpy(&xv, x.data() + k, 4 * m);
    FloatPack<8, 1> c, s;
    CosSin<8>(UintPack<8, 1>{{xv}}, &c, &s);
    std::memcpy(cos_out.data() + k, c.v, 4 * m);
    std::memcpy(sin_out.data() + k, s.v, 4 * m);
  }
}

}  // namespace rng_internal

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
  for (int r = 0; r < kPhiloxRounds; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * counter[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * counter[2];
    counter = {static_cast<uint32_t>(p1 >> 32) ^ counter[1] ^ k0, static_cast<uint32_t>(p1),
               static_cast<uint32_t>(p0 >> 32) ^ counter[3] ^ k1, static_cast<uint32_t>(p0)};
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return counter;
}

// value_i = low + (high - low) u_i in double, u_i = (x_i + 0.5) 2^-32 (exact), then rounded
// to T once.
template <typename T>
void FillUniform(StreamKey key, double low, double high, uint64_t first_index, std::span<T> out) {
  if (UseW16()) {
#if defined(__x86_64__)
    UniformW16(key, low, high, first_index, out);
    return;
#endif
  }
  UniformW8(key, low, high, first_index, out);
}

template <typename T>
void FillNormal(StreamKey key, double std, uint64_t first_index, std::span<T> out) {
  if constexpr (std::is_same_v<T, float>) {
#if defined(__x86_64__)
    if (UseW16()) return NormalW16(key, std, first_index, out);
#endif
    NormalW8(key, std, first_index, out);
  } else {
    // Bound by libm, one Box-Muller pair at a time; only the Philox words come in vectors.
    FillByBatches<8>(first_index, out, [&](uint64_t block, double* values) {
      alignas(32) uint32_t words[kBatchValues<8>];
      ConsecutiveWords<8>(key, block, kDomainNormal, words);
      for (int b = 0; b < kBatchBlocks<8>; ++b) {
        const uint32_t* x = words + 4 * b;
        const double r0 = std::sqrt(MinusTwoLogF64(x[0]));
        const double r1 = std::sqrt(MinusTwoLogF64(x[2]));
        double c0, s0, c1, s1;
        CosSinF64(x[1], &c0, &s0);
        CosSinF64(x[3], &c1, &s1);
        values[4 * b] = std * (r0 * c0);
        values[4 * b + 1] = std * (r0 * s0);
        values[4 * b + 2] = std * (r1 * c1);
        values[4 * b + 3] = std * (r1 * s1);
      }
    });
  }
}

// A cut that is not > 0 (or NaN) accepts nothing; the limit of the distribution, 0, is written.
template <typename T>
void FillTruncatedNormal(StreamKey key, double std, double cut, uint64_t first_index,
                         std::span<T> out) {
  if (!(cut > 0.0)) {
    std::fill(out.begin(), out.end(), T(0));
  } else if constexpr (std::is_same_v<T, float>) {
#if defined(__x86_64__)
    if (UseW16()) return TruncatedW16(key, std, cut, first_index, out);
#endif
    TruncatedW8(key, std, cut, first_index, out);
  } else {
    FillByBatches<8>(first_index, out, [&](uint64_t block, double* values) {
      alignas(32) uint32_t words[kBatchValues<8>];
      ConsecutiveWords<8>(key, block, kDomainTruncatedNormal, words);
      for (int k = 0; k < kBatchValues<8>; ++k) {
        const uint64_t i = 4 * block + k;
        double z = NormalOfBlockF64(words + 4 * (k / 4), k % 4);
        uint32_t attempt = 0;
        while (!(std::abs(z) <= cut)) {
          if (++attempt == 0) {
            z = 0.0;  // 2^32 attempts failed: only for cuts near 1e-9
            break;
          }
          const std::array<uint32_t, 4> x =
              Philox4x32({static_cast<uint32_t>(i / 4), static_cast<uint32_t>(i / 4 >> 32), attempt,
                          kDomainTruncatedNormal},
                         key);
          z = NormalOfBlockF64(x.data(), k % 4);
        }
        values[k] = std * z;
      }
    });
  }
}

template void FillUniform<float>(StreamKey, double, double, uint64_t, std::span<float>);
template void FillUniform<double>(StreamKey, double, double, uint64_t, std::span<double>);
template void FillNormal<float>(StreamKey, double, uint64_t, std::span<float>);
template void FillNormal<double>(StreamKey, double, uint64_t, std::span<double>);
template void FillTruncatedNormal<float>(StreamKey, double, double, uint64_t, std::span<float>);
template void FillTruncatedNormal<double>(StreamKey, double, double, uint64_t, std::span<double>);

}  // namespace reinit

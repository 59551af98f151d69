// Counter-based random numbers for weight initialization.
//
// Every value is a pure function of (seed, tensor name, element index): Philox4x32-10
// (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) keyed by a hash of
// the seed and the tensor's name, with the element's block index as the counter. So a tensor's
// values do not depend on which other tensors are re-initialized, on the order of work, or on
// how the work is split across threads or chunks: filling [0, n) at once or as [0, k) then
// [k, n) with `first_index = k` gives the same values.
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

// Element i of a stream is lane i % 4 of the block with counter {i / 4 (low, high word), 0,
// domain}; each Fill* below uses its own domain so their streams are independent.
//
// U(low, high): u = (x + 0.5) * 2^-32 in (0, 1), value = low + (high - low) * u.
template <typename T>
void FillUniform(StreamKey key, double low, double high, uint64_t first_index, std::span<T> out);

// N(0, std^2) by Box-Muller on the block's two pairs of uniforms (cos for lanes 0 and 2, sin
// for 1 and 3).
template <typename T>
void FillNormal(StreamKey key, double std, uint64_t first_index, std::span<T> out);

// N(0, std^2) conditioned on |x| <= cut * std, by rejection per element: attempt a of element
// i uses the block with counter {i low, i high, a, domain} and takes the first of its four
// normals inside the cut (acceptance 95.4% per normal at cut 2).
template <typename T>
void FillTruncatedNormal(StreamKey key, double std, double cut, uint64_t first_index,
                         std::span<T> out);

}  // namespace reinit

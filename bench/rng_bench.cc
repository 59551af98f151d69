// Throughput of the random fills and of the float16 / bfloat16 encoders on a large buffer,
// single-threaded and on N threads, the way apply fills big tensors: fixed pieces of 2^16
// elements, each filled with first_index = its start, run by ParallelFor. Prints one line per
// case and thread count,
//   normal_f32 threads=2 values_per_s=1.23e9
// from the median wall time of --repeats runs, and exits 1 if a threaded result differs from
// the single-threaded one in any byte.
//
//   rng_bench [--threads N] [--values N] [--repeats N] [--lanes 8|16]
// (defaults 2, 2^26, 5, and the float kernels' own choice of vector width).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "init/rng.h"
#include "io/tensor_codec.h"
#include "parallel.h"

namespace reinit {
namespace {

constexpr size_t kPiece = size_t{1} << 16;

struct Options {
  int threads = 2;
  size_t values = size_t{1} << 26;
  int repeats = 5;
  int lanes = 0;  // 0: rng's default
};

bool ParseOptions(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    char* end = nullptr;
    const unsigned long long n = std::strtoull(value, &end, 10);
    if (*end != '\0' || n == 0) return false;
    if (arg == "--threads") {
      options->threads = static_cast<int>(n);
    } else if (arg == "--values") {
      options->values = static_cast<size_t>(n);
    } else if (arg == "--repeats") {
      options->repeats = static_cast<int>(n);
    } else if (arg == "--lanes") {
      options->lanes = static_cast<int>(n);
    } else {
      return false;
    }
  }
  return true;
}

// Runs fill_piece(begin, end) for every piece of [0, values) on `threads` threads, `repeats`
// times; returns the median wall time in seconds.
double MedianSeconds(int threads, size_t values, int repeats,
                     const std::function<void(size_t, size_t)>& fill_piece) {
  SetThreadCount(threads);
  const size_t pieces = (values + kPiece - 1) / kPiece;
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    ParallelFor(pieces, [&](size_t p) {
      const size_t begin = p * kPiece;
      fill_piece(begin, std::min(values, begin + kPiece));
    });
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

// Times one case single-threaded, keeps those bytes, times it on options.threads threads, then
// clears the output, fills it once more on options.threads threads and compares.
// `out` / `out_bytes` is what the case writes.
bool RunCase(const char* name, const Options& options, void* out, size_t out_bytes,
             const std::function<void(size_t, size_t)>& fill_piece) {
  const double single = MedianSeconds(1, options.values, options.repeats, fill_piece);
  std::printf("%s threads=1 values_per_s=%.3g\n", name, options.values / single);
  std::fflush(stdout);
  if (options.threads == 1) return true;
  const std::vector<char> reference(static_cast<const char*>(out),
                                    static_cast<const char*>(out) + out_bytes);
  const double threaded =
      MedianSeconds(options.threads, options.values, options.repeats, fill_piece);
  std::printf("%s threads=%d values_per_s=%.3g\n", name, options.threads,
              options.values / threaded);
  std::fflush(stdout);
  std::memset(out, 0xff, out_bytes);
  MedianSeconds(options.threads, options.values, 1, fill_piece);
  if (std::memcmp(reference.data(), out, out_bytes) != 0) {
    std::fprintf(stderr, "rng_bench: error: %s: %d threads wrote other bytes than 1 thread\n", name,
                 options.threads);
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  Options options;
  if (!ParseOptions(argc, argv, &options)) {
    std::fprintf(stderr,
                 "usage: rng_bench [--threads N] [--values N] [--repeats N] [--lanes 8|16]\n");
    return 2;
  }
  if (options.lanes != 0 && !rng_internal::SetFloatKernelLanes(options.lanes)) {
    std::fprintf(stderr, "rng_bench: error: %d-lane float kernels are not available here\n",
                 options.lanes);
    return 2;
  }
  const size_t n = options.values;
  std::vector<float> values(n);
  std::vector<uint16_t> encoded(n);
  const StreamKey key = KeyFor(2024, "bench.weight");
  bool ok = true;
  ok &= RunCase(
      "normal_f32", options, values.data(), n * sizeof(float), [&](size_t begin, size_t end) {
        FillNormal<float>(key, 0.02, begin, std::span<float>(values.data() + begin, end - begin));
      });
  ok &= RunCase("uniform_f32", options, values.data(), n * sizeof(float),
                [&](size_t begin, size_t end) {
                  FillUniform<float>(key, -0.05, 0.05, begin,
                                     std::span<float>(values.data() + begin, end - begin));
                });
  ok &= RunCase("truncated_normal_f32", options, values.data(), n * sizeof(float),
                [&](size_t begin, size_t end) {
                  FillTruncatedNormal<float>(key, 0.02, 2.0, begin,
                                             std::span<float>(values.data() + begin, end - begin));
                });
  // The encoders read the truncated normals just drawn.
  ok &= RunCase("encode_f16", options, encoded.data(), n * sizeof(uint16_t),
                [&](size_t begin, size_t end) {
                  EncodeFloat16(std::span<const float>(values.data() + begin, end - begin),
                                encoded.data() + begin);
                });
  ok &= RunCase("encode_bf16", options, encoded.data(), n * sizeof(uint16_t),
                [&](size_t begin, size_t end) {
                  EncodeBFloat16(std::span<const float>(values.data() + begin, end - begin),
                                 encoded.data() + begin);
                });
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace reinit

int main(int argc, char** argv) { return reinit::Main(argc, argv); }

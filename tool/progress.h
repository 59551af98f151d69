// The progress bar: one line on stderr, redrawn in place, for runs long enough to need one.
// Tool-side only; the library just reports bytes done through RunOptions::progress.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace reinit_tool {

class ProgressBar {
 public:
  // Draws to `out` only if `enabled` (stderr is a terminal and not --quiet), and only once the
  // run has taken `delay`: short runs print nothing.
  ProgressBar(std::FILE* out, bool enabled, std::chrono::milliseconds delay);
  ~ProgressBar();  // clears the line it drew

  void Update(uint64_t done, uint64_t total);

 private:
  std::FILE* out_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
  std::chrono::milliseconds delay_;
  bool drawn_ = false;
};

}  // namespace reinit_tool

#include "progress.h"

#include <string>

namespace reinit_tool {

namespace {

std::string Size(uint64_t bytes) {
  char text[32];
  const double gib = static_cast<double>(bytes) / (1 << 30);
  if (gib >= 1) {
    std::snprintf(text, sizeof text, "%.2f GiB", gib);
  } else {
    std::snprintf(text, sizeof text, "%.0f MiB", static_cast<double>(bytes) / (1 << 20));
  }
  return text;
}

}  // namespace

ProgressBar::ProgressBar(std::FILE* out, bool enabled, std::chrono::milliseconds delay)
    : out_(out), enabled_(enabled), start_(std::chrono::steady_clock::now()), delay_(delay) {}

ProgressBar::~ProgressBar() {
  if (drawn_) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
}

void ProgressBar::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - start_ < delay_) return;
  // At most ten redraws a second, and the last one.
  if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  constexpr int kWidth = 30;
  const double fraction = static_cast<double>(done) / static_cast<double>(total);
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  std::string bar(static_cast<size_t>(filled), '=');
  bar.resize(kWidth, ' ');
  std::fprintf(out_, "\rreinit: [%s] %3.0f%% %s of %s, %s/s\033[K", bar.c_str(), fraction * 100,
               Size(done).c_str(), Size(total).c_str(), Size(static_cast<uint64_t>(rate)).c_str());
  std::fflush(out_);
}

}  // namespace reinit_tool

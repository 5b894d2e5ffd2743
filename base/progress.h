// progress.h: a one-line progress bar with rate and ETA on stderr, redrawn
// at most ten times a second; plain lines every 10% when stderr is not a
// terminal (CI logs).
//
//   progress_bar bar("features", texts.size());
//   for (...) bar.update(done);
//   bar.finish();
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace triage {

class progress_bar {
 public:
  progress_bar(std::string label, size_t total)
      : label_(std::move(label)), total_(total), start_(clock::now()), tty_(isatty(2) != 0) {}

  void update(size_t done) {
    const auto now = clock::now();
    const double secs = std::chrono::duration<double>(now - start_).count();
    if (tty_) {
      if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
    } else {
      const size_t decile = total_ ? done * 10 / total_ : 10;
      if (decile == last_decile_ && done < total_) return;
      last_decile_ = decile;
    }
    last_ = now;
    const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    const int width = 30, filled = static_cast<int>(frac * width);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "%s%s [%s] %zu/%zu %.0f/s ETA %.0fs%s", tty_ ? "\r" : "", label_.c_str(),
                 bar.c_str(), done, total_, rate, eta, tty_ ? "   " : "\n");
    std::fflush(stderr);
  }

  void finish() {
    update(total_);
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  using clock = std::chrono::steady_clock;
  std::string label_;
  size_t total_;
  clock::time_point start_, last_{};
  size_t last_decile_ = 11;
  bool tty_;
};

}  // namespace triage

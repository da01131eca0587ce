// bitnet::Timer — a steady-clock stopwatch for metrics and benchmarks.
#pragma once

#include <chrono>

namespace bitnet {

class Timer {
  public:
    Timer() : start_(std::chrono::steady_clock::now()) {}
    void reset() { start_ = std::chrono::steady_clock::now(); }
    double seconds() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }
    double milliseconds() const { return seconds() * 1e3; }

  private:
    std::chrono::steady_clock::time_point start_;
};

}  // namespace bitnet

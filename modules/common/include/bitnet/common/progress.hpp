// A one-line progress bar on stderr for work longer than about a second (loading, writing,
// downloading). It draws only when stderr is a terminal and it is enabled, so logs and CI
// output stay clean.
#pragma once

#include <cstdint>
#include <string>

#include "bitnet/common/timer.hpp"

namespace bitnet {

class ProgressBar {
  public:
    // `already`: work done before this bar started (a resumed download), left out of the speed.
    ProgressBar(std::string label, std::uint64_t total, bool enabled = true,
                std::uint64_t already = 0);
    ~ProgressBar();
    // Redraws at most ~10 times a second; `done` is in the same unit as total (bytes).
    void update(std::uint64_t done);
    void finish();

  private:
    std::string label_;
    std::uint64_t total_;
    std::uint64_t already_;
    bool enabled_;
    bool finished_ = false;
    Timer timer_;
    double last_draw_ = -1.0;
};

// "1.19 GB", "657.1 MB", "512 B" (decimal units, like disk sizes).
std::string format_bytes(std::uint64_t bytes);

}  // namespace bitnet

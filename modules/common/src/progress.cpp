#include "bitnet/common/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace bitnet {

std::string format_bytes(std::uint64_t bytes) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1000.0 && unit < 4) {
        value /= 1000.0;
        ++unit;
    }
    char buffer[32];
    if (unit == 0) {
        std::snprintf(buffer, sizeof buffer, "%llu B", static_cast<unsigned long long>(bytes));
    } else {
        std::snprintf(buffer, sizeof buffer, "%.2f %s", value, units[unit]);
    }
    return buffer;
}

ProgressBar::ProgressBar(std::string label, std::uint64_t total, bool enabled,
                         std::uint64_t already)
    : label_(std::move(label)),
      total_(total),
      already_(std::min(already, total)),
      enabled_(enabled && ::isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() {
    finish();
}

void ProgressBar::update(std::uint64_t done) {
    if (!enabled_ || finished_) return;
    const double now = timer_.seconds();
    if (done < total_ && now - last_draw_ < 0.1) return;
    last_draw_ = now;
    const double fraction =
        total_ == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total_);
    const int width = 30;
    const int filled = static_cast<int>(fraction * width);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    const std::uint64_t fresh = done > already_ ? done - already_ : 0;
    const double rate = now > 0 ? static_cast<double>(fresh) / now : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : 0.0;
    std::fprintf(stderr, "\r%s [%s] %5.1f%% %s/s ETA %.0fs ", label_.c_str(), bar.c_str(),
                 fraction * 100.0, format_bytes(static_cast<std::uint64_t>(rate)).c_str(), eta);
    std::fflush(stderr);
}

void ProgressBar::finish() {
    if (!enabled_ || finished_) return;
    finished_ = true;
    std::fprintf(stderr, "\r%s done in %.1fs%40s\n", label_.c_str(), timer_.seconds(), "");
}

}  // namespace bitnet

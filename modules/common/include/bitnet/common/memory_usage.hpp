// Process memory figures for metrics (peak and current resident set size).
#pragma once

#include <cstdint>

namespace bitnet {

// Peak resident set size of this process in bytes (VmHWM), 0 if unknown.
std::uint64_t peak_rss_bytes();
// Current resident set size in bytes (VmRSS), 0 if unknown.
std::uint64_t current_rss_bytes();
// Total physical memory of the machine in bytes, 0 if unknown.
std::uint64_t total_physical_memory_bytes();

}  // namespace bitnet

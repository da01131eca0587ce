#include "bitnet/common/memory_usage.hpp"

#include <unistd.h>

#include <fstream>
#include <string>

namespace bitnet {
namespace {

// Reads a "Name:   1234 kB" line from /proc/self/status.
std::uint64_t read_status_kb(const std::string& field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(field + ":", 0) == 0) {
            return std::stoull(line.substr(field.size() + 1)) * 1024;
        }
    }
    return 0;
}

}  // namespace

std::uint64_t peak_rss_bytes() {
    return read_status_kb("VmHWM");
}
std::uint64_t current_rss_bytes() {
    return read_status_kb("VmRSS");
}

std::uint64_t total_physical_memory_bytes() {
    long pages = ::sysconf(_SC_PHYS_PAGES);
    long page_size = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0) return 0;
    return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

}  // namespace bitnet

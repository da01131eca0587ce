#include "stop_strings.hpp"

#include <algorithm>

namespace bitnet::inference {

std::string StopStringFilter::push(const std::string& text, bool& stopped) {
    pending_ += text;
    stopped = false;
    std::size_t first_stop = std::string::npos;
    for (const std::string& s : stops_) {
        if (s.empty()) continue;
        const std::size_t at = pending_.find(s);
        if (at != std::string::npos) first_stop = std::min(first_stop, at);
    }
    if (first_stop != std::string::npos) {
        stopped = true;
        std::string out = pending_.substr(0, first_stop);
        pending_.clear();
        return out;
    }
    // Keep the longest suffix that is a proper prefix of some stop string.
    std::size_t hold = 0;
    for (const std::string& s : stops_) {
        for (std::size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
            if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
                hold = len;
                break;
            }
        }
    }
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
}

std::string StopStringFilter::flush() {
    std::string out;
    out.swap(pending_);
    return out;
}

}  // namespace bitnet::inference

// Holds back generated text that might be the start of a stop string, and finds stop strings
// that straddle token boundaries.
#pragma once

#include <string>
#include <vector>

namespace bitnet::inference {

class StopStringFilter {
  public:
    explicit StopStringFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}

    // Adds text; returns what can be emitted now. Sets `stopped` when a stop string completed
    // (the stop string and anything after it are dropped).
    std::string push(const std::string& text, bool& stopped);
    // The held-back remainder at the end of generation.
    std::string flush();

  private:
    std::vector<std::string> stops_;
    std::string pending_;
};

}  // namespace bitnet::inference

// Splits text around special/added tokens written literally in it ("<|eot_id|>"), longest
// match first, so the rest can be encoded as ordinary text.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "bitnet/tokenizers/tokenizer_data.hpp"

namespace bitnet::tokenizers {

struct Fragment {
    std::string_view text;  // ordinary text (when id < 0)
    std::int32_t id;        // a special token, or -1
};

class SpecialSplitter {
  public:
    explicit SpecialSplitter(const TokenizerData& data);
    std::vector<Fragment> split(std::string_view text) const;

  private:
    // Candidates grouped by first byte, longest first.
    std::vector<std::pair<std::string_view, std::int32_t>> by_first_byte_[256];
};

}  // namespace bitnet::tokenizers

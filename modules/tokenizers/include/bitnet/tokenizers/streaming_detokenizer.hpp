// StreamingDetokenizer — turns generated ids into text one id at a time. It only ever returns
// complete UTF-8: bytes of a character split across tokens are held back until the character
// is complete. The concatenation of everything push() and flush() return equals
// Tokenizer::decode of all the ids (same U+FFFD replacement for bytes that never become valid).
#pragma once

#include <cstdint>
#include <string>

#include "bitnet/tokenizers/tokenizer.hpp"

namespace bitnet::tokenizers {

class StreamingDetokenizer {
  public:
    explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special = false)
        : tokenizer_(tokenizer), skip_special_(skip_special) {}

    // Text that became complete with this id (possibly empty).
    std::string push(std::int32_t id);
    // Whatever is still held back (an unfinished character becomes U+FFFD). Resets the stream.
    std::string flush();

  private:
    const Tokenizer& tokenizer_;
    bool skip_special_;
    std::string pending_;
    bool at_start_ = true;
};

}  // namespace bitnet::tokenizers

#include "bitnet/tokenizers/streaming_detokenizer.hpp"

#include "unicode.hpp"

namespace bitnet::tokenizers {

std::string StreamingDetokenizer::push(std::int32_t id) {
    const std::string piece = tokenizer_.token_to_piece(id);  // validates the id
    if (skip_special_ && tokenizer_.is_control(id)) return {};
    pending_ += piece;
    if (at_start_ && !pending_.empty()) {
        // Mirrors decode(): SentencePiece drops the one space its encoder prepended.
        if (tokenizer_.strips_leading_space() && pending_[0] == ' ') pending_.erase(0, 1);
        at_start_ = false;
    }
    const std::size_t hold = unicode::incomplete_suffix_length(pending_);
    const std::string ready =
        unicode::sanitize_utf8(std::string_view(pending_).substr(0, pending_.size() - hold));
    pending_.erase(0, pending_.size() - hold);
    return ready;
}

std::string StreamingDetokenizer::flush() {
    std::string rest = unicode::sanitize_utf8(pending_);
    pending_.clear();
    at_start_ = true;
    return rest;
}

}  // namespace bitnet::tokenizers

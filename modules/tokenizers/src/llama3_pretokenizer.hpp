// The LLaMA 3 pre-tokenizer: splits text into pieces exactly as the regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// would (leftmost alternative first, greedy with backtracking), hand-coded over code points.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace bitnet::tokenizers {

struct Piece {
    std::uint32_t begin;  // byte offsets into the text
    std::uint32_t end;
};

// `text` must be valid UTF-8. Appends the pieces, in order, covering the whole text.
void split_llama3(std::string_view text, std::vector<Piece>& pieces);

}  // namespace bitnet::tokenizers

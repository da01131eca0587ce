// The BPE merge loop shared by both backends: repeatedly merge the adjacent pair with the
// best (lowest) priority, leftmost first, until no pair can merge.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bitnet/tokenizers/tokenizer_data.hpp"

namespace bitnet::tokenizers {

struct Symbol {
    std::int32_t id;      // token id, or -1 for text with no token (SentencePiece byte fallback)
    std::uint32_t begin;  // byte range in the piece being merged
    std::uint32_t end;
};

// Transparent string hashing so lookups by string_view do not allocate.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIndex = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

class BpeMerger {
  public:
    // Builds the pair table from `merges` ("a b"); without merges, from `scores` (a pair merges
    // when its concatenation is a token; higher score first). Throws bitnet::Error naming the
    // merge when it references a token that is not in the vocabulary.
    BpeMerger(const TokenizerData& data, const TokenIndex& index, const std::string& source);

    // Merges `symbols` in place.
    void merge(std::vector<Symbol>& symbols) const;

  private:
    struct PairInfo {
        float priority;  // lower merges first
        std::int32_t result;
    };
    const PairInfo* find(std::int32_t left, std::int32_t right) const;
    void merge_small(std::vector<Symbol>& symbols) const;
    void merge_large(std::vector<Symbol>& symbols) const;

    // Open addressing, keyed by (left << 32 | right): the hottest lookup of the encoder.
    std::vector<std::uint64_t> keys_;
    std::vector<PairInfo> values_;
    std::uint64_t mask_ = 0;
};

}  // namespace bitnet::tokenizers

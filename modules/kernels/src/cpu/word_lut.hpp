// The layout shared by the AVX-512 lookup-table kernels (TL2, and TL1 where AVX-512BW exists):
// rows in groups of 32, and per group and "unit" of K columns one 16-bit word per row that holds
// the row's kLookups table indices of kIndexBits bits each. vpermw looks up 32 rows at once and
// reads only each word's low 5 bits, so the word shifted right by 0, kIndexBits, 2*kIndexBits...
// indexes the unit's tables with no masking (a 4-bit index's table repeats its 16 entries in
// lanes 16-31, so the bit above it does not matter), and the lookups are already the int16
// partial sums. Sums of lookups are the exact integer dot.
#pragma once

#include "huge_page_bytes.hpp"

#include <cstdint>

namespace bitnet::kernels::detail {

constexpr std::int64_t kWordLutRows = 32;         // rows looked up together: one word each
constexpr std::int64_t kWordLutDecodeGroups = 8;  // groups per pass of the one-token kernel

struct WordLutWeights {
    // Per group of 32 rows and unit: 32 little-endian words (64 bytes); groups follow each
    // other, each `units` * 64 bytes. (Groups interleaved unit by unit, so a pass of 8 groups
    // reads one stream, decoded no faster.)
    HugePageBytes bytes;  // huge pages: decode streams them once per token
    std::int64_t rows = 0, cols = 0, units = 0;

    std::uint8_t* group_words(std::int64_t g) { return bytes.data() + g * units * 64; }
    const std::uint8_t* group_words(std::int64_t g) const { return bytes.data() + g * units * 64; }
};

}  // namespace bitnet::kernels::detail

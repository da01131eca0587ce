// TL2 lookup-table kernels for I2_S weights (internal; GGUF_AND_FORMATS.md §5). Three ternary
// weights (K columns 3i, 3i+1, 3i+2; K padded with zero weights to a multiple of 9) form one of
// 27 indices 9*c0 + 3*c1 + c2 (5 bits). Three such indices of one row — a "trio", 9 columns —
// share a 16-bit word, so decode streams 1.78 bits per weight instead of 2 (11% fewer bytes).
// Per token and triple a 27-entry int16 table holds every sum (c0-1)*a0 + (c1-1)*a1 + (c2-1)*a2;
// vpermw looks up 32 rows at once (AVX-512BW; word_lut.hpp), the word itself, shifted right by 5
// and by 10 indexing the trio's three tables. Sums of lookups are the exact integer dot, so
// results equal the reference. (bitnet.cpp folds
// the 27 combinations to 14 plus a sign bit to fit pshufb's 16 entries; vpermw's 32-entry reach
// makes the fold unnecessary.)
#pragma once

#include "word_lut.hpp"

#include <cstdint>
#include <vector>

namespace bitnet::kernels::detail {

constexpr std::int64_t kTl2Rows = kWordLutRows;
constexpr std::int64_t kTl2DecodeGroups = kWordLutDecodeGroups;

// word_lut.hpp's layout with a trio (9 columns; K padded with zero weights) per unit.
using Tl2Weights = WordLutWeights;
Tl2Weights repack_tl2(const std::uint8_t* i2s, std::int64_t rows, std::int64_t cols);

std::int64_t tl2_table_bytes(std::int64_t cols);
// One token's tables: per triple 32 int16 (the 27 sums, then zeros).
void build_tl2_tables(const std::int8_t* q, std::int64_t cols, std::int8_t* tables);

// dots[t * stride + r] = sum_k (code - 1) * q_t[k] for the rows of groups
// [first_group, first_group + count) and `tokens` tokens.
void tl2_dot_groups(const Tl2Weights& w, std::int64_t first_group, std::int64_t count,
                    const std::int8_t* tables, std::int64_t tokens, std::int32_t* dots,
                    std::int64_t stride);

}  // namespace bitnet::kernels::detail

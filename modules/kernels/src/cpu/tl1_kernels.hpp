// TL1 lookup-table kernels for I2_S weights (internal; GGUF_AND_FORMATS.md §5, the T-MAC /
// bitnet.cpp idea). Two ternary weights form a 4-bit index — in the I2_S layout each byte's high
// nibble already is the pair (element j, j+32) of its block and the low nibble the pair
// (j+64, j+96) — so the repacking only interleaves rows: 32 rows' bytes for one position lie
// together, and one pshufb looks up 32 rows at once. Per token and pair of activations a 16-entry
// table holds every (c0-1)*a0 + (c1-1)*a1 as int16 (split into a low-byte and a high-byte table).
// Sums of lookups are the exact integer dot sum (c-1)*q, so results equal the reference.
#pragma once

#include "huge_page_bytes.hpp"
#include "word_lut.hpp"

#include <cstdint>
#include <vector>

namespace bitnet::kernels::detail {

constexpr std::int64_t kTl1Rows = 32;  // rows looked up together

// I2_S rows (cols/4 bytes each) regrouped: for group g of 32 rows and byte position p, the 32
// rows' bytes are contiguous (rows past the matrix are code 1, i.e. zero).
struct Tl1Weights {
    HugePageBytes bytes;  // huge pages: decode streams them once per token
    std::int64_t rows = 0, cols = 0;
};
Tl1Weights repack_tl1(const std::uint8_t* i2s, std::int64_t rows, std::int64_t cols);

// Lookup tables of one token's int8 activations (cols/4 byte positions x 64 bytes).
void build_tl1_tables(const std::int8_t* q, std::int64_t cols, std::int8_t* tables);
std::int64_t tl1_table_bytes(std::int64_t cols);

// dots[t * stride + r] = sum_k (code - 1) * q_t[k] for rows [first_row, first_row + 32) of the
// group-aligned range and `tokens` tokens whose tables are `tables` (one after another). AVX2.
void tl1_dot_group(const Tl1Weights& w, std::int64_t group, const std::int8_t* tables,
                   std::int64_t tokens, std::int32_t* dots, std::int64_t stride);
// The same for groups [first_group, first_group + count); one token takes them in pairs.
void tl1_dot_groups(const Tl1Weights& w, std::int64_t first_group, std::int64_t count,
                    const std::int8_t* tables, std::int64_t tokens, std::int32_t* dots,
                    std::int64_t stride);

// The same on AVX-512BW (tl1_words_kernels.cpp): word_lut.hpp's layout, a unit = two I2_S bytes
// of a row (8 columns, four pair indices), per token and unit four 16-entry int16 tables
// (32 bytes each).
WordLutWeights repack_tl1_words(const std::uint8_t* i2s, std::int64_t rows, std::int64_t cols);
std::int64_t tl1_words_table_bytes(std::int64_t cols);
void build_tl1_word_tables(const std::int8_t* q, std::int64_t cols, std::int8_t* tables);
void tl1_words_dot_groups(const WordLutWeights& w, std::int64_t first_group, std::int64_t count,
                          const std::int8_t* tables, std::int64_t tokens, std::int32_t* dots,
                          std::int64_t stride);

}  // namespace bitnet::kernels::detail

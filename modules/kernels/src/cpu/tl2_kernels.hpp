// TL2 lookup-table kernels for I2_S weights (internal; GGUF_AND_FORMATS.md §5). Three ternary
// weights (K columns 3i, 3i+1, 3i+2; K padded with zero weights to a multiple of 3) form one of
// 27 indices 9*c0 + 3*c1 + c2, stored in 5 bits per row: 1.67 bits per weight instead of 2, so
// decode streams 17% fewer weight bytes. Per token and triple a 27-entry int16 table (split into
// low and high bytes) holds every sum (c0-1)*a0 + (c1-1)*a1 + (c2-1)*a2; vpermb looks up 64 rows
// at once (AVX-512 VBMI). Sums of lookups are the exact integer dot, so results equal the
// reference. (bitnet.cpp folds the 27 combinations to 14 plus a sign bit to fit pshufb's 16
// entries; vpermb's 64-entry reach makes the fold unnecessary.)
#pragma once

#include <cstdint>
#include <vector>

namespace bitnet::kernels::detail {

constexpr std::int64_t kTl2Rows = 64;  // rows looked up together

struct Tl2Weights {
    // Per group of 64 rows and triple: 32 bytes of low nibbles (row j, row j + 32 in the high
    // half of byte j), then 8 bytes holding bit 4 of each row's index (bit r = row r).
    std::vector<std::uint8_t> bytes;
    std::int64_t rows = 0, cols = 0, triples = 0;
};
Tl2Weights repack_tl2(const std::uint8_t* i2s, std::int64_t rows, std::int64_t cols);

std::int64_t tl2_table_bytes(std::int64_t cols);
// One token's tables: per triple 32 low bytes then 32 high bytes of the 27 int16 sums.
void build_tl2_tables(const std::int8_t* q, std::int64_t cols, std::int8_t* tables);

// dots[t * stride + r] = sum_k (code - 1) * q_t[k] for the rows of `group` and `tokens` tokens.
void tl2_dot_group(const Tl2Weights& w, std::int64_t group, const std::int8_t* tables,
                   std::int64_t tokens, std::int32_t* dots, std::int64_t stride);
// The same for groups [first_group, first_group + count); one token takes them in pairs.
void tl2_dot_groups(const Tl2Weights& w, std::int64_t first_group, std::int64_t count,
                    const std::int8_t* tables, std::int64_t tokens, std::int32_t* dots,
                    std::int64_t stride);

}  // namespace bitnet::kernels::detail

// TL1 on AVX-512BW (tl1_kernels.hpp): word_lut.hpp's layout with two I2_S bytes (8 columns,
// four 4-bit pair indices) per unit, looked up with vpermw — the AVX2 kernel's pshufb looks up
// bytes, so each int16 table is split into a low and a high byte table and the lookups are
// interleaved back; here the lookups are the int16 sums.
#include "avx512_intrinsics.hpp"  // (first: see there)
#include "tl1_kernels.hpp"
#include "word_lut_impl.hpp"

namespace bitnet::kernels::detail {

namespace {
constexpr std::int64_t kUnitCols = 8;     // two I2_S bytes of a row
constexpr std::int64_t kTableBytes = 32;  // per pair index: 16 int16 entries
// Units per int16 accumulator: 4 lookups of |sum| <= 2 * 128 each, 31 units = 31,744 < 32,767.
constexpr std::int64_t kFlushUnits = 31;

struct Tl1Spec {
    static constexpr int kLookups = 4, kIndexBits = 4, kPrefillTokens = 3;  // 16 + 12 + 1 registers
    static constexpr std::int64_t kTableBytes = detail::kTableBytes;
    static constexpr std::int64_t kFlushUnits = detail::kFlushUnits;
    // The 16 entries in lanes 0-15 and again in 16-31: vpermw reads 5 bits, the fifth being
    // the next index's lowest bit.
    __attribute__((target("avx512f"), always_inline)) static __m512i table(const std::int8_t* t) {
        return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)));
    }
};
}  // namespace

WordLutWeights repack_tl1_words(const std::uint8_t* i2s, std::int64_t rows, std::int64_t cols) {
    WordLutWeights w;
    w.rows = rows;
    w.cols = cols;
    w.units = cols / kUnitCols;
    const std::int64_t groups = (rows + kWordLutRows - 1) / kWordLutRows;
    // (padding rows: code 0 everywhere; their lookups are computed and never stored)
    w.bytes = HugePageBytes(static_cast<std::size_t>(groups * w.units * 64), 0,
                            "the TL1 copy of the weights");
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::uint8_t* src = i2s + r * (cols / 4);
        std::uint8_t* dst = w.group_words(r / kWordLutRows) + (r % kWordLutRows) * 2;
        for (std::int64_t u = 0; u < w.units; ++u) {
            dst[u * 64] = src[2 * u];
            dst[u * 64 + 1] = src[2 * u + 1];
        }
    }
    return w;
}

std::int64_t tl1_words_table_bytes(std::int64_t cols) {
    return cols / kUnitCols * 4 * kTableBytes;
}

__attribute__((target("avx2"))) void build_tl1_word_tables(const std::int8_t* q, std::int64_t cols,
                                                           std::int8_t* tables) {
    // Entry e of a pair (first, second) = (e / 4 - 1) * first + (e % 4 - 1) * second (an I2_S
    // nibble holds the first element's code in its high two bits).
    alignas(32) std::int16_t d_first[16], d_second[16];
    for (int e = 0; e < 16; ++e) {
        d_first[e] = static_cast<std::int16_t>(e / 4 - 1);
        d_second[e] = static_cast<std::int16_t>(e % 4 - 1);
    }
    const __m256i vf = _mm256_load_si256(reinterpret_cast<const __m256i*>(d_first));
    const __m256i vs = _mm256_load_si256(reinterpret_cast<const __m256i*>(d_second));
    for (std::int64_t u = 0; u < cols / kUnitCols; ++u) {
        // Bytes 2u and 2u + 1 of the row: elements j, j+32, j+64, j+96 of their 128-block.
        const std::int64_t byte = 2 * u, block = byte / 32, j = byte % 32;
        const std::int8_t* x = q + block * 128 + j;
        // Word bits 0-3: low nibble of byte 2u (elements j+64, j+96), 4-7: its high nibble
        // (j, j+32), 8-11 and 12-15: the same of byte 2u + 1 (j+1 ...).
        const std::int8_t pairs[4][2] = {
            {x[64], x[96]}, {x[0], x[32]}, {x[65], x[97]}, {x[1], x[33]}};
        for (int k = 0; k < 4; ++k) {
            const __m256i t =
                _mm256_add_epi16(_mm256_mullo_epi16(vf, _mm256_set1_epi16(pairs[k][0])),
                                 _mm256_mullo_epi16(vs, _mm256_set1_epi16(pairs[k][1])));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(tables + (4 * u + k) * kTableBytes), t);
        }
    }
}

void tl1_words_dot_groups(const WordLutWeights& w, std::int64_t first_group, std::int64_t count,
                          const std::int8_t* tables, std::int64_t tokens, std::int32_t* dots,
                          std::int64_t stride) {
    word_lut::dot_groups<Tl1Spec>(w, first_group, count, tables, tokens, dots, stride);
}

}  // namespace bitnet::kernels::detail

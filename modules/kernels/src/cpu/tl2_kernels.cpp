#include "tl2_kernels.hpp"
#include "avx512_intrinsics.hpp"  // (first: see there)
#include "word_lut_impl.hpp"

#include <algorithm>
#include <cstring>

namespace bitnet::kernels::detail {

namespace {
constexpr std::int64_t kTrioCols = 9;     // columns per 16-bit word: three triples
constexpr std::int64_t kWordsBytes = 64;  // per trio and group: 32 rows' words
constexpr std::int64_t kTable = 64;       // bytes per triple: 32 int16 entries (27 used)
// Trios per int16 accumulator before it is widened: 21 trios = 63 lookups of |sum| <= 3 * 128,
// 24,192 < 32,767.
constexpr std::int64_t kFlushTrios = 21;

std::int64_t trios_of(std::int64_t cols) {
    return (cols + kTrioCols - 1) / kTrioCols;
}
}  // namespace

Tl2Weights repack_tl2(const std::uint8_t* i2s, std::int64_t rows, std::int64_t cols) {
    Tl2Weights w;
    w.rows = rows;
    w.cols = cols;
    w.units = trios_of(cols);
    const std::int64_t groups = (rows + kTl2Rows - 1) / kTl2Rows;
    w.bytes = HugePageBytes(static_cast<std::size_t>(groups * w.units * kWordsBytes), 0,
                            "the TL2 copy of the weights");
    const std::int64_t padded = w.units * kTrioCols;
    // One row's codes (I2_S: byte j of a 128-block holds elements j, j+32, j+64, j+96 from the
    // high bits down); padding columns are code 1, the value 0, and padding rows all words 0
    // (index 0 = codes 0,0,0: their lookups are computed and never stored).
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(padded));
    for (std::int64_t r = 0; r < rows; ++r) {
        std::fill(codes.begin(), codes.end(), std::uint8_t{1});
        const std::uint8_t* row = i2s + r * (cols / 4);
        for (std::int64_t b = 0; b < cols / 128; ++b)
            for (int j = 0; j < 32; ++j) {
                const std::uint8_t byte = row[b * 32 + j];
                std::uint8_t* c = codes.data() + b * 128 + j;
                c[0] = byte >> 6;
                c[32] = (byte >> 4) & 3;
                c[64] = (byte >> 2) & 3;
                c[96] = byte & 3;
            }
        std::uint8_t* out =
            w.bytes.data() + (r / kTl2Rows) * w.units * kWordsBytes + (r % kTl2Rows) * 2;
        for (std::int64_t t = 0; t < w.units; ++t) {
            const std::uint8_t* c = codes.data() + t * kTrioCols;
            std::uint16_t word = 0;
            for (int k = 0; k < 3; ++k)
                word |= static_cast<std::uint16_t>((9 * c[3 * k] + 3 * c[3 * k + 1] + c[3 * k + 2])
                                                   << (5 * k));
            std::memcpy(out + t * kWordsBytes, &word, 2);
        }
    }
    return w;
}

std::int64_t tl2_table_bytes(std::int64_t cols) {
    return trios_of(cols) * 3 * kTable;
}

__attribute__((target("avx512f,avx512bw"))) void build_tl2_tables(const std::int8_t* q,
                                                                  std::int64_t cols,
                                                                  std::int8_t* tables) {
    // Digit weights (c - 1) of the three columns for entries e = 0..26 (lanes past 26: zero).
    alignas(64) std::int16_t d0[32] = {}, d1[32] = {}, d2[32] = {};
    for (int e = 0; e < 27; ++e) {
        d0[e] = static_cast<std::int16_t>(e / 9 - 1);
        d1[e] = static_cast<std::int16_t>(e / 3 % 3 - 1);
        d2[e] = static_cast<std::int16_t>(e % 3 - 1);
    }
    const __m512i v0 = _mm512_load_si512(d0), v1 = _mm512_load_si512(d1),
                  v2 = _mm512_load_si512(d2);
    const std::int64_t triples = trios_of(cols) * 3;
    for (std::int64_t i = 0; i < triples; ++i) {
        auto act = [&](std::int64_t k) -> short { return k < cols ? q[k] : 0; };
        const __m512i sum = _mm512_add_epi16(
            _mm512_add_epi16(_mm512_mullo_epi16(v0, _mm512_set1_epi16(act(3 * i))),
                             _mm512_mullo_epi16(v1, _mm512_set1_epi16(act(3 * i + 1)))),
            _mm512_mullo_epi16(v2, _mm512_set1_epi16(act(3 * i + 2))));
        _mm512_storeu_si512(tables + i * kTable, sum);
    }
}

namespace {

struct Tl2Spec {
    static constexpr int kLookups = 3, kIndexBits = 5, kPrefillTokens = 4;  // 12 + 16 + 1 registers
    static constexpr std::int64_t kTableBytes = kTable;
    static constexpr std::int64_t kFlushUnits = kFlushTrios;
    __attribute__((target("avx512f"), always_inline)) static __m512i table(const std::int8_t* t) {
        return _mm512_loadu_si512(t);
    }
};

}  // namespace

void tl2_dot_groups(const Tl2Weights& w, std::int64_t first_group, std::int64_t count,
                    const std::int8_t* tables, std::int64_t tokens, std::int32_t* dots,
                    std::int64_t stride) {
    word_lut::dot_groups<Tl2Spec>(w, first_group, count, tables, tokens, dots, stride);
}

}  // namespace bitnet::kernels::detail

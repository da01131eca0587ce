#include "tl2_kernels.hpp"
#include "prefetch.hpp"

#include "avx512_intrinsics.hpp"

#include <algorithm>
#include <cstring>

namespace bitnet::kernels::detail {

namespace {
constexpr std::int64_t kTrioCols = 9;     // columns per 16-bit word: three triples
constexpr std::int64_t kWordsBytes = 64;  // per trio and group: 32 rows' words
constexpr std::int64_t kTableBytes = 64;  // per triple: 32 int16 entries (27 used)
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
    w.trios = trios_of(cols);
    w.groups = (rows + kTl2Rows - 1) / kTl2Rows;
    w.bytes = HugePageBytes(static_cast<std::size_t>(w.groups * w.trios * kWordsBytes), 0,
                            "the TL2 copy of the weights");
    const std::int64_t padded = w.trios * kTrioCols;
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
            w.bytes.data() + (r / kTl2Rows) * w.trios * kWordsBytes + (r % kTl2Rows) * 2;
        for (std::int64_t t = 0; t < w.trios; ++t) {
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

const std::uint8_t* Tl2Weights::group_words(std::int64_t g) const {
    return bytes.data() + g * trios * kWordsBytes;
}

std::int64_t tl2_table_bytes(std::int64_t cols) {
    return trios_of(cols) * 3 * kTableBytes;
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
        _mm512_storeu_si512(tables + i * kTableBytes, sum);
    }
}

namespace {
// How far ahead decode asks for each group's lines. A pass streams 8 groups at once, so 256
// bytes ahead in each keeps 2 kB in flight; 4 kB (the I2_S kernels' distance) in each of 8
// streams is the size of L1 and evicted lines before their use (kernels_bench, a 70 MB matrix,
// 2 threads: 256 and 512 bytes 1.07-1.27x the I2_S kernel's rate, 1-2 kB 0.8-1.0x).
constexpr int kPrefetchAhead = 256;

// One trio's lookups for 32 rows: `words` indexes the three tables t0, t1, t2 (vpermw reads
// each word's low 5 bits), the int16 sums added to `acc`.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i add_trio(
    __m512i acc, __m512i words, __m512i t0, __m512i t1, __m512i t2) {
    acc = _mm512_add_epi16(acc, _mm512_permutexvar_epi16(words, t0));
    acc = _mm512_add_epi16(acc, _mm512_permutexvar_epi16(_mm512_srli_epi16(words, 5), t1));
    return _mm512_add_epi16(acc, _mm512_permutexvar_epi16(_mm512_srli_epi16(words, 10), t2));
}

// The int16 sums of 32 rows added into their 32-bit sums.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void widen_into(
    __m512i acc, std::int32_t* sums) {
    const __m512i lo = _mm512_loadu_si512(sums), hi = _mm512_loadu_si512(sums + 16);
    _mm512_storeu_si512(sums,
                        _mm512_add_epi32(lo, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(acc))));
    _mm512_storeu_si512(
        sums + 16, _mm512_add_epi32(hi, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(acc, 1))));
}

// Decode (one token), G groups at once: a trio's three tables (192 bytes; a 2560-wide input's
// tables are 55 kB, past L1) are loaded once for G groups' words (64 bytes each), so with G = 8
// the tables' lines are 3/8 of the weights' and leave L1's miss slots to the weight stream.
// The 32-bit sums stay in memory (touched once per kFlushTrios trios).
template <int G>
__attribute__((target("avx512f,avx512bw"))) void tl2_decode(const Tl2Weights& w,
                                                            std::int64_t first_group,
                                                            const std::int8_t* tables,
                                                            std::int32_t (*sums)[kTl2Rows]) {
    const std::uint8_t* base = w.group_words(first_group);
    const std::int64_t group_bytes = w.trios * kWordsBytes;
    for (int g = 0; g < G; ++g) std::fill(sums[g], sums[g] + kTl2Rows, 0);
    for (std::int64_t t0 = 0; t0 < w.trios; t0 += kFlushTrios) {
        __m512i acc[G];
        for (int g = 0; g < G; ++g) acc[g] = _mm512_setzero_si512();
        const std::int64_t t1 = std::min(w.trios, t0 + kFlushTrios);
        for (std::int64_t t = t0; t < t1; ++t) {
            const std::int8_t* tab = tables + t * 3 * kTableBytes;
            const __m512i a = _mm512_loadu_si512(tab), b = _mm512_loadu_si512(tab + kTableBytes),
                          c = _mm512_loadu_si512(tab + 2 * kTableBytes);
            for (int g = 0; g < G; ++g) {
                const std::uint8_t* p = base + g * group_bytes + t * kWordsBytes;
                // Decode streams the weights once: ask for lines ahead (see kPrefetchBytes).
                _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchAhead, _MM_HINT_T0);
                acc[g] = add_trio(acc[g], _mm512_loadu_si512(p), a, b, c);
            }
        }
        for (int g = 0; g < G; ++g) widen_into(acc[g], sums[g]);
    }
}

// NT tokens over one group: each trio's words are loaded and shifted once and looked up in NT
// tokens' tables (prefill shares the index work).
template <int NT>
__attribute__((target("avx512f,avx512bw"))) void tl2_tokens(const Tl2Weights& w, std::int64_t group,
                                                            const std::int8_t* tables,
                                                            std::int32_t (*sums)[kTl2Rows]) {
    const std::uint8_t* base = w.group_words(group);
    const std::int64_t table_bytes = tl2_table_bytes(w.cols);
    for (int k = 0; k < NT; ++k) std::fill(sums[k], sums[k] + kTl2Rows, 0);
    for (std::int64_t t0 = 0; t0 < w.trios; t0 += kFlushTrios) {
        __m512i acc[NT];
        for (int k = 0; k < NT; ++k) acc[k] = _mm512_setzero_si512();
        const std::int64_t t1 = std::min(w.trios, t0 + kFlushTrios);
        for (std::int64_t t = t0; t < t1; ++t) {
            const __m512i i0 = _mm512_loadu_si512(base + t * kWordsBytes);
            const __m512i i1 = _mm512_srli_epi16(i0, 5), i2 = _mm512_srli_epi16(i0, 10);
            for (int k = 0; k < NT; ++k) {
                const std::int8_t* tab = tables + k * table_bytes + t * 3 * kTableBytes;
                acc[k] =
                    _mm512_add_epi16(acc[k], _mm512_permutexvar_epi16(i0, _mm512_loadu_si512(tab)));
                acc[k] = _mm512_add_epi16(
                    acc[k], _mm512_permutexvar_epi16(i1, _mm512_loadu_si512(tab + kTableBytes)));
                acc[k] = _mm512_add_epi16(
                    acc[k],
                    _mm512_permutexvar_epi16(i2, _mm512_loadu_si512(tab + 2 * kTableBytes)));
            }
        }
        for (int k = 0; k < NT; ++k) widen_into(acc[k], sums[k]);
    }
}

// The rows of `first_group` .. + G - 1 that exist, from sums[g][lane], for token `t`.
template <int G>
void store_rows(const Tl2Weights& w, std::int64_t first_group, const std::int32_t (*sums)[kTl2Rows],
                std::int32_t* dots) {
    const std::int64_t first_row = first_group * kTl2Rows;
    const std::int64_t end = std::min(w.rows, first_row + G * kTl2Rows);
    for (std::int64_t r = first_row; r < end; ++r)
        dots[r] = sums[(r - first_row) / kTl2Rows][(r - first_row) % kTl2Rows];
}

// Up to kTl2DecodeGroups groups in one pass (fewer at a matrix's end).
void decode_pass(const Tl2Weights& w, std::int64_t first_group, std::int64_t n,
                 const std::int8_t* tables, std::int32_t (*sums)[kTl2Rows]) {
    static_assert(kTl2DecodeGroups == 8);
    switch (n) {
        case 1:
            return tl2_decode<1>(w, first_group, tables, sums);
        case 2:
            return tl2_decode<2>(w, first_group, tables, sums);
        case 3:
            return tl2_decode<3>(w, first_group, tables, sums);
        case 4:
            return tl2_decode<4>(w, first_group, tables, sums);
        case 5:
            return tl2_decode<5>(w, first_group, tables, sums);
        case 6:
            return tl2_decode<6>(w, first_group, tables, sums);
        case 7:
            return tl2_decode<7>(w, first_group, tables, sums);
        default:
            return tl2_decode<8>(w, first_group, tables, sums);
    }
}

void tl2_group_tokens(const Tl2Weights& w, std::int64_t group, const std::int8_t* tables,
                      std::int64_t tokens, std::int32_t* dots, std::int64_t stride) {
    constexpr int kTokens = 8;
    const std::int64_t table_bytes = tl2_table_bytes(w.cols);
    for (std::int64_t t0 = 0; t0 < tokens; t0 += kTokens) {
        const std::int64_t nt = std::min<std::int64_t>(kTokens, tokens - t0);
        alignas(64) std::int32_t sums[kTokens][kTl2Rows];
        const std::int8_t* tab = tables + t0 * table_bytes;
        switch (nt) {
            case 1:
                tl2_tokens<1>(w, group, tab, sums);
                break;
            case 2:
                tl2_tokens<2>(w, group, tab, sums);
                break;
            case 3:
                tl2_tokens<3>(w, group, tab, sums);
                break;
            case 4:
                tl2_tokens<4>(w, group, tab, sums);
                break;
            case 5:
                tl2_tokens<5>(w, group, tab, sums);
                break;
            case 6:
                tl2_tokens<6>(w, group, tab, sums);
                break;
            case 7:
                tl2_tokens<7>(w, group, tab, sums);
                break;
            default:
                tl2_tokens<kTokens>(w, group, tab, sums);
                break;
        }
        for (std::int64_t t = 0; t < nt; ++t)
            store_rows<1>(w, group, &sums[t], dots + (t0 + t) * stride);
    }
}

}  // namespace

void tl2_dot_groups(const Tl2Weights& w, std::int64_t first_group, std::int64_t count,
                    const std::int8_t* tables, std::int64_t tokens, std::int32_t* dots,
                    std::int64_t stride) {
    const std::int64_t end = first_group + count;
    std::int64_t g = first_group;
    if (tokens == 1) {
        alignas(64) std::int32_t sums[kTl2DecodeGroups][kTl2Rows];
        for (; g < end; g += kTl2DecodeGroups) {
            const std::int64_t n = std::min(kTl2DecodeGroups, end - g);
            decode_pass(w, g, n, tables, sums);
            store_rows<kTl2DecodeGroups>(w, g, sums, dots);
        }
        return;
    }
    for (; g < end; ++g) tl2_group_tokens(w, g, tables, tokens, dots, stride);
}

}  // namespace bitnet::kernels::detail

#include "tl2_kernels.hpp"
#include "prefetch.hpp"

#include "avx512_intrinsics.hpp"

#include <algorithm>
#include <cstring>

namespace bitnet::kernels::detail {

namespace {
constexpr std::int64_t kGroupBytes = 40;  // per triple and 64 rows: 32 nibble bytes + 8 bit bytes
constexpr std::int64_t kTableBytes = 64;  // per triple: 32 low bytes + 32 high bytes
constexpr std::int64_t kFlushEvery = 64;  // triples (|sum| <= 384 each) per int16 accumulator
}  // namespace

Tl2Weights repack_tl2(const std::uint8_t* i2s, std::int64_t rows, std::int64_t cols) {
    Tl2Weights w;
    w.rows = rows;
    w.cols = cols;
    w.triples = (cols + 2) / 3;
    const std::int64_t groups = (rows + kTl2Rows - 1) / kTl2Rows;
    w.bytes.assign(static_cast<std::size_t>(groups * w.triples * kGroupBytes), 0);
    const std::int64_t padded = w.triples * 3;
    // One group's codes (I2_S: byte j of a 128-block holds elements j, j+32, j+64, j+96 from
    // the high bits down); padding rows and columns are code 1, the value 0.
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(kTl2Rows * padded));
    for (std::int64_t g = 0; g < groups; ++g) {
        std::fill(codes.begin(), codes.end(), std::uint8_t{1});
        for (std::int64_t lane = 0; lane < kTl2Rows && g * kTl2Rows + lane < rows; ++lane) {
            const std::uint8_t* row = i2s + (g * kTl2Rows + lane) * (cols / 4);
            std::uint8_t* c0 = codes.data() + lane * padded;
            for (std::int64_t b = 0; b < cols / 128; ++b)
                for (int j = 0; j < 32; ++j) {
                    const std::uint8_t byte = row[b * 32 + j];
                    std::uint8_t* c = c0 + b * 128 + j;
                    c[0] = byte >> 6;
                    c[32] = (byte >> 4) & 3;
                    c[64] = (byte >> 2) & 3;
                    c[96] = byte & 3;
                }
        }
        std::uint8_t* group = w.bytes.data() + g * w.triples * kGroupBytes;
        for (std::int64_t i = 0; i < w.triples; ++i) {
            // One triple of all 64 rows built in registers, then stored once.
            std::uint8_t nibbles[32];
            std::uint64_t bit4 = 0;
            for (std::int64_t lane = 0; lane < 32; ++lane) {
                const std::uint8_t* lo = codes.data() + lane * padded + 3 * i;
                const std::uint8_t* hi = lo + 32 * padded;
                const int a = 9 * lo[0] + 3 * lo[1] + lo[2];
                const int b = 9 * hi[0] + 3 * hi[1] + hi[2];
                nibbles[lane] = static_cast<std::uint8_t>((a & 15) | (b & 15) << 4);
                bit4 |= static_cast<std::uint64_t>(a >> 4) << lane;
                bit4 |= static_cast<std::uint64_t>(b >> 4) << (lane + 32);
            }
            std::uint8_t* t = group + i * kGroupBytes;
            std::memcpy(t, nibbles, 32);
            std::memcpy(t + 32, &bit4, 8);
        }
    }
    return w;
}

std::int64_t tl2_table_bytes(std::int64_t cols) {
    return (cols + 2) / 3 * kTableBytes;
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
    const std::int64_t triples = (cols + 2) / 3;
    for (std::int64_t i = 0; i < triples; ++i) {
        auto act = [&](std::int64_t k) -> short { return k < cols ? q[k] : 0; };
        const __m512i sum = _mm512_add_epi16(
            _mm512_add_epi16(_mm512_mullo_epi16(v0, _mm512_set1_epi16(act(3 * i))),
                             _mm512_mullo_epi16(v1, _mm512_set1_epi16(act(3 * i + 1)))),
            _mm512_mullo_epi16(v2, _mm512_set1_epi16(act(3 * i + 2))));
        std::int8_t* out = tables + i * kTableBytes;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi16_epi8(sum));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32),
                            _mm512_cvtepi16_epi8(_mm512_srai_epi16(sum, 8)));
    }
}

namespace {

// The 64 rows' indices (0..26) of one triple from its group bytes: 32 nibble bytes (rows
// 0..31 low, 32..63 high) and 8 bytes of fifth bits.
__attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline)) inline __m512i triple_indices(
    const std::uint8_t* g) {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g));
    const __m256i lo = _mm256_and_si256(packed, nibble);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble);
    const __m512i index = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    __mmask64 bit4;
    __builtin_memcpy(&bit4, g + 32, 8);
    return _mm512_mask_add_epi8(index, bit4, index, _mm512_set1_epi8(16));
}

// The triple's table (t8: 32 low bytes, 32 high bytes of the 27 int16 partial sums) looked up
// at `index`, added to the int16 accumulators (acc_a: rows 16L..16L+7 of 128-bit lane L,
// acc_b: rows 16L+8..16L+15).
__attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline)) inline void add_lookups(
    __m512i index, const std::int8_t* t8, __m512i& acc_a, __m512i& acc_b) {
    const __m512i t_lo =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t8)));
    const __m512i t_hi =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t8 + 32)));
    const __m512i r1 = _mm512_permutexvar_epi8(index, t_lo);
    const __m512i r2 = _mm512_permutexvar_epi8(index, t_hi);
    acc_a = _mm512_add_epi16(acc_a, _mm512_unpacklo_epi8(r1, r2));
    acc_b = _mm512_add_epi16(acc_b, _mm512_unpackhi_epi8(r1, r2));
}

// The accumulators' rows added into the group's 32-bit sums.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void widen_into(
    __m512i acc_a, __m512i acc_b, std::int32_t (&sums)[kTl2Rows]) {
    alignas(64) std::int16_t la[32], lb[32];
    _mm512_store_si512(la, acc_a);
    _mm512_store_si512(lb, acc_b);
    for (int lane = 0; lane < 4; ++lane)
        for (int j = 0; j < 8; ++j) {
            sums[16 * lane + j] += la[8 * lane + j];
            sums[16 * lane + 8 + j] += lb[8 * lane + j];
        }
}

// NT tokens at once: each triple's 64 indices are formed once and looked up in NT tokens'
// tables (prefill shares the index work; decode is NT = 1).
template <int NT>
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void tl2_tokens(
    const Tl2Weights& w, const std::uint8_t* base, const std::int8_t* tables,
    std::int32_t (*sums)[kTl2Rows]) {
    const std::int64_t table_bytes = tl2_table_bytes(w.cols);
    for (std::int64_t i0 = 0; i0 < w.triples; i0 += kFlushEvery) {
        __m512i acc_a[NT], acc_b[NT];
        for (int t = 0; t < NT; ++t) acc_a[t] = acc_b[t] = _mm512_setzero_si512();
        const std::int64_t i1 = std::min(w.triples, i0 + kFlushEvery);
        for (std::int64_t i = i0; i < i1; ++i) {
            const std::uint8_t* g = base + i * kGroupBytes;
            // Decode streams the weights once: ask for lines ahead (see kPrefetchBytes).
            if (NT == 1)
                _mm_prefetch(reinterpret_cast<const char*>(g) + kPrefetchBytes, _MM_HINT_T0);
            const __m512i index = triple_indices(g);
            for (int t = 0; t < NT; ++t)
                add_lookups(index, tables + t * table_bytes + i * kTableBytes, acc_a[t], acc_b[t]);
        }
        for (int t = 0; t < NT; ++t) widen_into(acc_a[t], acc_b[t], sums[t]);
    }
}

// Decode (one token) over two groups at once, as tl1_decode_pair: a triple's table is 64 bytes
// per 3 weight columns — for a 2560-wide input 54 kB, past L1 — and with one group its loads
// set the pace (kernels_bench, Zen 4, in cache: 30.6 GB/s against I2_S's 48.7). With two groups
// the table lines loaded for the first serve the second from L1.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void tl2_decode_pair(
    const Tl2Weights& w, const std::uint8_t* base0, const std::uint8_t* base1,
    const std::int8_t* tables, std::int32_t (*sums)[kTl2Rows]) {
    for (std::int64_t i0 = 0; i0 < w.triples; i0 += kFlushEvery) {
        __m512i acc_a[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        __m512i acc_b[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        const std::int64_t i1 = std::min(w.triples, i0 + kFlushEvery);
        for (std::int64_t i = i0; i < i1; ++i) {
            const std::uint8_t* g[2] = {base0 + i * kGroupBytes, base1 + i * kGroupBytes};
            for (const std::uint8_t* group : g)
                _mm_prefetch(reinterpret_cast<const char*>(group) + kPrefetchBytes, _MM_HINT_T0);
            for (int k = 0; k < 2; ++k)
                add_lookups(triple_indices(g[k]), tables + i * kTableBytes, acc_a[k], acc_b[k]);
        }
        for (int k = 0; k < 2; ++k) widen_into(acc_a[k], acc_b[k], sums[k]);
    }
}

}  // namespace

void tl2_dot_groups(const Tl2Weights& w, std::int64_t first_group, std::int64_t count,
                    const std::int8_t* tables, std::int64_t tokens, std::int32_t* dots,
                    std::int64_t stride) {
    std::int64_t g = first_group;
    for (; tokens == 1 && g + 2 <= first_group + count; g += 2) {
        std::int32_t sums[2][kTl2Rows] = {};
        const std::uint8_t* base = w.bytes.data() + g * w.triples * kGroupBytes;
        tl2_decode_pair(w, base, base + w.triples * kGroupBytes, tables, sums);
        for (std::int64_t r = g * kTl2Rows; r < std::min(w.rows, (g + 2) * kTl2Rows); ++r)
            dots[r] = sums[r / kTl2Rows - g][r % kTl2Rows];
    }
    for (; g < first_group + count; ++g) tl2_dot_group(w, g, tables, tokens, dots, stride);
}

void tl2_dot_group(const Tl2Weights& w, std::int64_t group, const std::int8_t* tables,
                   std::int64_t tokens, std::int32_t* dots, std::int64_t stride) {
    constexpr int kTokens = 8;
    const std::uint8_t* base = w.bytes.data() + group * w.triples * kGroupBytes;
    const std::int64_t first_row = group * kTl2Rows;
    const std::int64_t rows = std::min<std::int64_t>(kTl2Rows, w.rows - first_row);
    const std::int64_t table_bytes = tl2_table_bytes(w.cols);
    for (std::int64_t t0 = 0; t0 < tokens; t0 += kTokens) {
        const std::int64_t nt = std::min<std::int64_t>(kTokens, tokens - t0);
        std::int32_t sums[kTokens][kTl2Rows] = {};
        const std::int8_t* tab = tables + t0 * table_bytes;
        switch (nt) {
            case 1:
                tl2_tokens<1>(w, base, tab, sums);
                break;
            case 2:
                tl2_tokens<2>(w, base, tab, sums);
                break;
            case 3:
                tl2_tokens<3>(w, base, tab, sums);
                break;
            case 4:
                tl2_tokens<4>(w, base, tab, sums);
                break;
            case 5:
                tl2_tokens<5>(w, base, tab, sums);
                break;
            case 6:
                tl2_tokens<6>(w, base, tab, sums);
                break;
            case 7:
                tl2_tokens<7>(w, base, tab, sums);
                break;
            default:
                tl2_tokens<kTokens>(w, base, tab, sums);
                break;
        }
        for (std::int64_t t = 0; t < nt; ++t)
            for (std::int64_t r = 0; r < rows; ++r)
                dots[(t0 + t) * stride + first_row + r] = sums[t][r];
    }
}

}  // namespace bitnet::kernels::detail

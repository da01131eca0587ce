#include "tl1_kernels.hpp"
#include "prefetch.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

namespace bitnet::kernels::detail {

namespace {
constexpr std::int64_t kBlock = 128;      // I2_S block
constexpr std::int64_t kTableBytes = 64;  // per byte position: 2 pairs x (low, high) x 16
constexpr std::int64_t kFlushEvery = 32;  // byte positions (64 lookups of |v| <= 256) per int16
}  // namespace

Tl1Weights repack_tl1(const std::uint8_t* i2s, std::int64_t rows, std::int64_t cols) {
    Tl1Weights w;
    w.rows = rows;
    w.cols = cols;
    const std::int64_t positions = cols / 4, groups = (rows + kTl1Rows - 1) / kTl1Rows;
    w.bytes = HugePageBytes(static_cast<std::size_t>(groups * positions * kTl1Rows), 0x55,
                            "the TL1 copy of the weights");  // codes 1
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::uint8_t* src = i2s + r * positions;
        std::uint8_t* dst = w.bytes.data() + (r / kTl1Rows) * positions * kTl1Rows + r % kTl1Rows;
        for (std::int64_t p = 0; p < positions; ++p) dst[p * kTl1Rows] = src[p];
    }
    return w;
}

std::int64_t tl1_table_bytes(std::int64_t cols) {
    return cols / 4 * kTableBytes;
}

void build_tl1_tables(const std::int8_t* q, std::int64_t cols, std::int8_t* tables) {
    for (std::int64_t p = 0; p < cols / 4; ++p) {
        const std::int64_t block = p / 32, j = p % 32;
        const std::int8_t* x = q + block * kBlock + j;
        // High nibble: codes of elements j (bits 7-6) and j+32; low nibble: j+64 and j+96.
        const int pairs[2][2] = {{x[0], x[32]}, {x[64], x[96]}};
        std::int8_t* out = tables + p * kTableBytes;
        for (int half = 0; half < 2; ++half)
            for (int idx = 0; idx < 16; ++idx) {
                const int v = (idx / 4 - 1) * pairs[half][0] + (idx % 4 - 1) * pairs[half][1];
                const auto u = static_cast<std::uint16_t>(static_cast<std::int16_t>(v));
                out[half * 32 + idx] = static_cast<std::int8_t>(u & 0xff);
                out[half * 32 + 16 + idx] = static_cast<std::int8_t>(u >> 8);
            }
    }
}

namespace {

// Adds the 32 int16 lanes of a (rows 0-7 | 16-23) and b (rows 8-15 | 24-31), as unpack ordered
// them, into 32 int32 row sums.
__attribute__((target("avx2"))) void widen_into(__m256i a, __m256i b, std::int32_t* sums) {
    alignas(32) std::int16_t la[16], lb[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(la), a);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lb), b);
    for (int i = 0; i < 8; ++i) {
        sums[i] += la[i];
        sums[16 + i] += la[8 + i];
        sums[8 + i] += lb[i];
        sums[24 + i] += lb[8 + i];
    }
}

// A 16-byte table in both 128-bit lanes (pshufb looks up within each lane).
__attribute__((target("avx2"))) inline __m256i broadcast_table(const std::int8_t* t) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
}

// One position's lookups for 32 rows: their index bytes `v` (high nibble: the pair of elements
// j, j+32; low: j+64, j+96) in the position's four table vectors (low and high bytes of the
// int16 sums for each nibble), added as int16 into a (rows 0-7 | 16-23) and b (8-15 | 24-31).
__attribute__((target("avx2"), always_inline)) inline void add_lookups(__m256i v, __m256i t1,
                                                                       __m256i t2, __m256i t3,
                                                                       __m256i t4, __m256i& a,
                                                                       __m256i& b) {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
    const __m256i lo = _mm256_and_si256(v, nibble);
    const __m256i r1 = _mm256_shuffle_epi8(t1, hi), r2 = _mm256_shuffle_epi8(t2, hi);
    const __m256i r3 = _mm256_shuffle_epi8(t3, lo), r4 = _mm256_shuffle_epi8(t4, lo);
    a = _mm256_add_epi16(a, _mm256_unpacklo_epi8(r1, r2));
    b = _mm256_add_epi16(b, _mm256_unpackhi_epi8(r1, r2));
    a = _mm256_add_epi16(a, _mm256_unpacklo_epi8(r3, r4));
    b = _mm256_add_epi16(b, _mm256_unpackhi_epi8(r3, r4));
}

// NT tokens at once: each position's indices are formed once and looked up in NT tokens'
// tables (prefill shares the index work; decode is NT = 1).
template <int NT>
__attribute__((target("avx2"))) void tl1_tokens(const Tl1Weights& w, const std::uint8_t* idx,
                                                const std::int8_t* tables,
                                                std::int32_t (*sums)[kTl1Rows]) {
    const std::int64_t positions = w.cols / 4, table_bytes = tl1_table_bytes(w.cols);
    for (std::int64_t p0 = 0; p0 < positions; p0 += kFlushEvery) {
        __m256i acc_a[NT], acc_b[NT];
        for (int t = 0; t < NT; ++t) acc_a[t] = acc_b[t] = _mm256_setzero_si256();
        const std::int64_t p1 = std::min(positions, p0 + kFlushEvery);
        for (std::int64_t p = p0; p < p1; ++p) {
            // Decode streams the weights once: ask for lines ahead (see kPrefetchBytes; on the
            // Xeon host TL2's decode gained 13% from it).
            if (NT == 1 && p % 2 == 0)
                _mm_prefetch(reinterpret_cast<const char*>(idx + p * kTl1Rows) + kPrefetchBytes,
                             _MM_HINT_T0);
            const __m256i v =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + p * kTl1Rows));
            for (int t = 0; t < NT; ++t) {
                const std::int8_t* t8 = tables + t * table_bytes + p * kTableBytes;
                add_lookups(v, broadcast_table(t8), broadcast_table(t8 + 16),
                            broadcast_table(t8 + 32), broadcast_table(t8 + 48), acc_a[t], acc_b[t]);
            }
        }
        for (int t = 0; t < NT; ++t) widen_into(acc_a[t], acc_b[t], sums[t]);
    }
}

// Decode (one token) over two groups at once: each position's four table vectors are loaded
// once for both groups' indices. The tables are 64 bytes per 4 weight columns — twice the
// weights' bytes, and for a 2560-wide input 40 kB, past L1 — so with one group their loads,
// not the lookups, set the pace (kernels_bench, Zen 3, in cache: 19.8 GB/s against I2_S's 28.8).
__attribute__((target("avx2"))) void tl1_decode_pair(const Tl1Weights& w, const std::uint8_t* idx0,
                                                     const std::uint8_t* idx1,
                                                     const std::int8_t* tables,
                                                     std::int32_t (*sums)[kTl1Rows]) {
    const std::int64_t positions = w.cols / 4;
    for (std::int64_t p0 = 0; p0 < positions; p0 += kFlushEvery) {
        __m256i acc_a[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        __m256i acc_b[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        const std::int64_t p1 = std::min(positions, p0 + kFlushEvery);
        for (std::int64_t p = p0; p < p1; ++p) {
            const std::uint8_t* idx[2] = {idx0 + p * kTl1Rows, idx1 + p * kTl1Rows};
            if (p % 2 == 0)
                for (const std::uint8_t* i : idx)
                    _mm_prefetch(reinterpret_cast<const char*>(i) + kPrefetchBytes, _MM_HINT_T0);
            const std::int8_t* t8 = tables + p * kTableBytes;
            const __m256i t1 = broadcast_table(t8), t2 = broadcast_table(t8 + 16);
            const __m256i t3 = broadcast_table(t8 + 32), t4 = broadcast_table(t8 + 48);
            for (int g = 0; g < 2; ++g)
                add_lookups(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx[g])), t1, t2,
                            t3, t4, acc_a[g], acc_b[g]);
        }
        for (int g = 0; g < 2; ++g) widen_into(acc_a[g], acc_b[g], sums[g]);
    }
}

}  // namespace

void tl1_dot_groups(const Tl1Weights& w, std::int64_t first_group, std::int64_t count,
                    const std::int8_t* tables, std::int64_t tokens, std::int32_t* dots,
                    std::int64_t stride) {
    const std::int64_t positions = w.cols / 4;
    std::int64_t g = first_group;
    for (; tokens == 1 && g + 2 <= first_group + count; g += 2) {
        std::int32_t sums[2][kTl1Rows] = {};
        const std::uint8_t* idx = w.bytes.data() + g * positions * kTl1Rows;
        tl1_decode_pair(w, idx, idx + positions * kTl1Rows, tables, sums);
        for (std::int64_t r = g * kTl1Rows; r < std::min(w.rows, (g + 2) * kTl1Rows); ++r)
            dots[r] = sums[r / kTl1Rows - g][r % kTl1Rows];
    }
    for (; g < first_group + count; ++g) tl1_dot_group(w, g, tables, tokens, dots, stride);
}

void tl1_dot_group(const Tl1Weights& w, std::int64_t group, const std::int8_t* tables,
                   std::int64_t tokens, std::int32_t* dots, std::int64_t stride) {
    constexpr int kTokens = 4;
    const std::int64_t positions = w.cols / 4;
    const std::uint8_t* idx = w.bytes.data() + group * positions * kTl1Rows;
    const std::int64_t first_row = group * kTl1Rows;
    const std::int64_t rows = std::min<std::int64_t>(kTl1Rows, w.rows - first_row);
    const std::int64_t table_bytes = tl1_table_bytes(w.cols);
    for (std::int64_t t0 = 0; t0 < tokens; t0 += kTokens) {
        const std::int64_t nt = std::min<std::int64_t>(kTokens, tokens - t0);
        std::int32_t sums[kTokens][kTl1Rows] = {};
        const std::int8_t* tab = tables + t0 * table_bytes;
        switch (nt) {
            case 1:
                tl1_tokens<1>(w, idx, tab, sums);
                break;
            case 2:
                tl1_tokens<2>(w, idx, tab, sums);
                break;
            case 3:
                tl1_tokens<3>(w, idx, tab, sums);
                break;
            default:
                tl1_tokens<kTokens>(w, idx, tab, sums);
                break;
        }
        for (std::int64_t t = 0; t < nt; ++t)
            for (std::int64_t r = 0; r < rows; ++r)
                dots[(t0 + t) * stride + first_row + r] = sums[t][r];
    }
}

}  // namespace bitnet::kernels::detail

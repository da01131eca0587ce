#include "tl1_kernels.hpp"

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
    w.bytes.assign(static_cast<std::size_t>(groups * positions * kTl1Rows), 0x55);  // codes 1
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

}  // namespace

__attribute__((target("avx2"))) void tl1_dot_group(const Tl1Weights& w, std::int64_t group,
                                                   const std::int8_t* tables, std::int64_t tokens,
                                                   std::int32_t* dots, std::int64_t stride) {
    const std::int64_t positions = w.cols / 4;
    const std::uint8_t* idx = w.bytes.data() + group * positions * kTl1Rows;
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const std::int64_t first_row = group * kTl1Rows;
    const std::int64_t rows = std::min<std::int64_t>(kTl1Rows, w.rows - first_row);
    for (std::int64_t t = 0; t < tokens; ++t) {
        const std::int8_t* tab = tables + t * tl1_table_bytes(w.cols);
        std::int32_t sums[kTl1Rows] = {};
        for (std::int64_t p0 = 0; p0 < positions; p0 += kFlushEvery) {
            __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
            const std::int64_t p1 = std::min(positions, p0 + kFlushEvery);
            for (std::int64_t p = p0; p < p1; ++p) {
                const __m256i v =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + p * kTl1Rows));
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
                const __m256i lo = _mm256_and_si256(v, nibble);
                const std::int8_t* t8 = tab + p * kTableBytes;
                const __m256i h_lo = _mm256_broadcastsi128_si256(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(t8)));
                const __m256i h_hi = _mm256_broadcastsi128_si256(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(t8 + 16)));
                const __m256i l_lo = _mm256_broadcastsi128_si256(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(t8 + 32)));
                const __m256i l_hi = _mm256_broadcastsi128_si256(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(t8 + 48)));
                const __m256i r1 = _mm256_shuffle_epi8(h_lo, hi),
                              r2 = _mm256_shuffle_epi8(h_hi, hi);
                const __m256i r3 = _mm256_shuffle_epi8(l_lo, lo),
                              r4 = _mm256_shuffle_epi8(l_hi, lo);
                acc_a = _mm256_add_epi16(acc_a, _mm256_unpacklo_epi8(r1, r2));
                acc_b = _mm256_add_epi16(acc_b, _mm256_unpackhi_epi8(r1, r2));
                acc_a = _mm256_add_epi16(acc_a, _mm256_unpacklo_epi8(r3, r4));
                acc_b = _mm256_add_epi16(acc_b, _mm256_unpackhi_epi8(r3, r4));
            }
            widen_into(acc_a, acc_b, sums);
        }
        for (std::int64_t r = 0; r < rows; ++r) dots[t * stride + first_row + r] = sums[r];
    }
}

}  // namespace bitnet::kernels::detail

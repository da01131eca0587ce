#include "tq_kernels.hpp"
#include "prefetch.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "bitnet/quantization/formats.hpp"

namespace bitnet::kernels::detail {
namespace {

using quant::TypeId;

constexpr std::int64_t kBlock = 256;
constexpr std::int64_t kTq2Bytes = 66;
constexpr std::int64_t kTq1Bytes = 54;

__attribute__((target("avx2"))) std::int32_t hsum_epi32(__m256i v) {
    const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i s2 = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 1)));
}

// TQ2_0: element chunk*128 + n*32 + m is bits 2n of byte chunk*32 + m (n = 0 in the low bits),
// so (bytes >> 2n) & 3 is 32 consecutive codes. maddubs (u8 codes x s8 activations) adds pairs
// into int16; four of them stay below 4 * 2 * 2 * 128 = 2048, far from int16 overflow.
// (The 8 int32 lanes of the block's dot, before their horizontal sum.)
__attribute__((target("avx2"), always_inline)) inline __m256i tq2_block_lanes(
    const std::uint8_t* block, const std::int8_t* q) {
    const __m256i mask = _mm256_set1_epi8(3);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (int chunk = 0; chunk < 2; ++chunk) {
        const __m256i bytes =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + chunk * 32));
        __m256i s = _mm256_setzero_si256();
        for (int n = 0; n < 4; ++n) {
            const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * n), mask);
            const __m256i x =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + chunk * 128 + n * 32));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(codes, x));
        }
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, ones));
    }
    return acc;
}

__attribute__((target("avx2"))) std::int32_t tq2_block_avx2(const std::uint8_t* block,
                                                            const std::int8_t* q) {
    return hsum_epi32(tq2_block_lanes(block, q));
}

// Base-3 digit n (0 = most significant) of every byte, as GGML packs TQ1_0: the byte times 3^n
// modulo 256, then (that * 3) >> 8. 16-bit lanes hold two bytes: the products are formed for
// the low and the high byte separately so neither carries into the other.
__attribute__((target("avx2"))) __m256i trit_digits(__m256i bytes, int pow3) {
    const __m256i low = _mm256_set1_epi16(0x00ff), high = _mm256_set1_epi16(-256);
    const __m256i p = _mm256_set1_epi16(static_cast<short>(pow3));
    const __m256i three = _mm256_set1_epi16(3);
    // (byte * 3^n) mod 256, kept in the byte's own position.
    const __m256i lo = _mm256_and_si256(_mm256_mullo_epi16(bytes, p), low);
    const __m256i hi = _mm256_and_si256(_mm256_mullo_epi16(_mm256_and_si256(bytes, high), p), high);
    // (x * 3) >> 8 = mulhi(x << 8, 3) for x in the high byte of a 16-bit lane.
    const __m256i lo_digit = _mm256_mulhi_epu16(_mm256_slli_epi16(lo, 8), three);
    const __m256i hi_digit = _mm256_mulhi_epu16(hi, three);
    return _mm256_or_si256(lo_digit, _mm256_slli_epi16(hi_digit, 8));
}

// TQ1_0: 32 bytes of 5 digits (elements 32n + m), 16 bytes of 5 digits (160 + 16n + m), 4 bytes
// of 4 digits (240 + 4n + j, done in scalar code), then the f16 scale.
__attribute__((target("avx2"))) std::int32_t tq1_block_avx2(const std::uint8_t* block,
                                                            const std::int8_t* q) {
    static constexpr int kPow3[5] = {1, 3, 9, 27, 81};
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i first = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block));
    const __m256i second =
        _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 32)));
    __m256i s = _mm256_setzero_si256();  // int16: at most 10 maddubs of |508| per lane
    for (int n = 0; n < 5; ++n) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * n));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(trit_digits(first, kPow3[n]), x));
        const __m256i x2 = _mm256_zextsi128_si256(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 160 + 16 * n)));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(trit_digits(second, kPow3[n]), x2));
    }
    std::int32_t dot = hsum_epi32(_mm256_madd_epi16(s, ones));
    for (int n = 0; n < 4; ++n)
        for (int j = 0; j < 4; ++j) {
            const auto shifted = static_cast<std::uint8_t>(block[48 + j] * kPow3[n]);
            const int digit = (static_cast<int>(shifted) * 3) >> 8;
            dot += digit * q[240 + 4 * n + j];
        }
    return dot;
}

// tq_row_output's float step for block b: acc + d_b * (D_b - S_b), the scale by F16C (exact).
__attribute__((target("avx2,f16c"), always_inline)) inline float tq2_add_block(
    float acc, const std::uint8_t* block, std::int32_t dot, std::int32_t block_sum) {
    std::uint16_t h;
    std::memcpy(&h, block + 64, 2);
    return acc + _cvtsh_ss(h) * static_cast<float>(dot - block_sum);
}

}  // namespace

// Two rows of blocks at once: two weight streams per thread (as the I2_S and head decode
// kernels), the lines asked for ahead, the two blocks' horizontal sums shared (two hadds), and
// each row's outputs added up block by block in tq_row_output's order, so the bits are the
// same.
__attribute__((target("avx2,f16c"))) void tq2_rows_pair_avx2(
    const std::uint8_t* row_a, const std::uint8_t* row_b, const std::int8_t* q,
    const std::int32_t* block_sums, std::int64_t blocks, float act_scale, float* ya, float* yb) {
    float acc_a = 0.0f, acc_b = 0.0f;
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::uint8_t* block_a = row_a + b * kTq2Bytes;
        const std::uint8_t* block_b = row_b + b * kTq2Bytes;
        _mm_prefetch(reinterpret_cast<const char*>(block_a) + kPrefetchBytes, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(block_b) + kPrefetchBytes, _MM_HINT_T0);
        const __m256i la = tq2_block_lanes(block_a, q + b * kBlock);
        const __m256i lb = tq2_block_lanes(block_b, q + b * kBlock);
        // [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, a6+a7, b4+b5, b6+b7] -> the two sums.
        const __m256i h = _mm256_hadd_epi32(la, lb);
        const __m256i h2 = _mm256_hadd_epi32(h, h);
        const __m128i sums =
            _mm_add_epi32(_mm256_castsi256_si128(h2), _mm256_extracti128_si256(h2, 1));
        acc_a = tq2_add_block(acc_a, block_a, _mm_cvtsi128_si32(sums), block_sums[b]);
        acc_b = tq2_add_block(acc_b, block_b, _mm_extract_epi32(sums, 1), block_sums[b]);
    }
    *ya = acc_a / act_scale;
    *yb = acc_b / act_scale;
}

namespace {

// NT tokens' dots of one TQ2_0 row: each block's 8 code vectors unpacked once for all of them.
template <int NT>
__attribute__((target("avx2"))) void tq2_tokens_avx2(const std::uint8_t* row,
                                                     const std::int8_t* const* q,
                                                     std::int64_t blocks,
                                                     std::int32_t* const* dots) {
    const __m256i mask = _mm256_set1_epi8(3);
    const __m256i ones = _mm256_set1_epi16(1);
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::uint8_t* block = row + b * kTq2Bytes;
        __m256i acc[NT];
        for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_si256();
        for (int chunk = 0; chunk < 2; ++chunk) {
            const __m256i bytes =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + chunk * 32));
            __m256i s[NT];
            for (int t = 0; t < NT; ++t) s[t] = _mm256_setzero_si256();
            for (int n = 0; n < 4; ++n) {
                const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * n), mask);
                for (int t = 0; t < NT; ++t)
                    s[t] = _mm256_add_epi16(
                        s[t], _mm256_maddubs_epi16(
                                  codes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                             q[t] + b * kBlock + chunk * 128 + n * 32))));
            }
            for (int t = 0; t < NT; ++t)
                acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(s[t], ones));
        }
        for (int t = 0; t < NT; ++t) dots[t][b] = hsum_epi32(acc[t]);
    }
}

// NT tokens' dots of one TQ1_0 row: each block's base-3 digits extracted once for all of them
// (tq1_block_avx2's steps).
template <int NT>
__attribute__((target("avx2"))) void tq1_tokens_avx2(const std::uint8_t* row,
                                                     const std::int8_t* const* q,
                                                     std::int64_t blocks,
                                                     std::int32_t* const* dots) {
    static constexpr int kPow3[5] = {1, 3, 9, 27, 81};
    const __m256i ones = _mm256_set1_epi16(1);
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::uint8_t* block = row + b * kTq1Bytes;
        const __m256i first = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block));
        const __m256i second =
            _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 32)));
        __m256i s[NT];
        for (int t = 0; t < NT; ++t) s[t] = _mm256_setzero_si256();
        for (int n = 0; n < 5; ++n) {
            const __m256i d1 = trit_digits(first, kPow3[n]), d2 = trit_digits(second, kPow3[n]);
            for (int t = 0; t < NT; ++t) {
                const std::int8_t* x = q[t] + b * kBlock;
                s[t] = _mm256_add_epi16(
                    s[t],
                    _mm256_maddubs_epi16(
                        d1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32 * n))));
                s[t] = _mm256_add_epi16(
                    s[t], _mm256_maddubs_epi16(
                              d2, _mm256_zextsi128_si256(_mm_loadu_si128(
                                      reinterpret_cast<const __m128i*>(x + 160 + 16 * n)))));
            }
        }
        int tail[16];
        for (int n = 0; n < 4; ++n)
            for (int j = 0; j < 4; ++j) {
                const auto shifted = static_cast<std::uint8_t>(block[48 + j] * kPow3[n]);
                tail[4 * n + j] = (static_cast<int>(shifted) * 3) >> 8;
            }
        for (int t = 0; t < NT; ++t) {
            std::int32_t dot = hsum_epi32(_mm256_madd_epi16(s[t], ones));
            for (int i = 0; i < 16; ++i) dot += tail[i] * q[t][b * kBlock + 240 + i];
            dots[t][b] = dot;
        }
    }
}

}  // namespace

namespace {

// kernel(nt, t0) for the tokens in groups of four from t0, nt (a std::integral_constant: the
// kernels' template argument) the group's size.
template <class Kernel>
void in_token_groups(int tokens, Kernel kernel) {
    for (int t0 = 0; t0 < tokens; t0 += 4) {
        switch (std::min(4, tokens - t0)) {
            case 1:
                kernel(std::integral_constant<int, 1>{}, t0);
                break;
            case 2:
                kernel(std::integral_constant<int, 2>{}, t0);
                break;
            case 3:
                kernel(std::integral_constant<int, 3>{}, t0);
                break;
            default:
                kernel(std::integral_constant<int, 4>{}, t0);
                break;
        }
    }
}

}  // namespace

void tq1_block_dots_tokens_avx2(const std::uint8_t* row, const std::int8_t* const* q, int tokens,
                                std::int64_t blocks, std::int32_t* const* dots) {
    in_token_groups(tokens, [&](auto nt, int t0) {
        tq1_tokens_avx2<decltype(nt)::value>(row, q + t0, blocks, dots + t0);
    });
}

void tq2_block_dots_tokens_avx2(const std::uint8_t* row, const std::int8_t* const* q, int tokens,
                                std::int64_t blocks, std::int32_t* const* dots) {
    in_token_groups(tokens, [&](auto nt, int t0) {
        tq2_tokens_avx2<decltype(nt)::value>(row, q + t0, blocks, dots + t0);
    });
}

void tq_block_dots_scalar(TypeId type, const std::uint8_t* row, const std::int8_t* q,
                          std::int64_t blocks, std::int32_t* dots) {
    const bool tq2 = type == TypeId::TQ2_0;
    std::uint8_t codes[kBlock];
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::uint8_t* block = row + b * (tq2 ? kTq2Bytes : kTq1Bytes);
        if (tq2)
            quant::tq2_0_block_codes(block, codes);
        else
            quant::tq1_0_block_codes(block, codes);
        std::int32_t d = 0;
        for (int i = 0; i < kBlock; ++i) d += codes[i] * q[b * kBlock + i];
        dots[b] = d;
    }
}

void tq_block_dots_avx2(TypeId type, const std::uint8_t* row, const std::int8_t* q,
                        std::int64_t blocks, std::int32_t* dots) {
    if (type == TypeId::TQ2_0) {
        for (std::int64_t b = 0; b < blocks; ++b)
            dots[b] = tq2_block_avx2(row + b * kTq2Bytes, q + b * kBlock);
    } else {
        for (std::int64_t b = 0; b < blocks; ++b)
            dots[b] = tq1_block_avx2(row + b * kTq1Bytes, q + b * kBlock);
    }
}

float tq_output(const float* scales, const std::int32_t* dots, const std::int32_t* block_sums,
                std::int64_t blocks, float act_scale) {
    float acc = 0.0f;
    for (std::int64_t b = 0; b < blocks; ++b)
        acc += scales[b] * static_cast<float>(dots[b] - block_sums[b]);
    return acc / act_scale;
}

float tq_row_output(TypeId type, const std::uint8_t* row, const std::int32_t* dots,
                    const std::int32_t* block_sums, std::int64_t blocks,
                    const quant::ActivationScale& act) {
    const bool tq2 = type == TypeId::TQ2_0;
    float acc = 0.0f;
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::uint8_t* block = row + b * (tq2 ? kTq2Bytes : kTq1Bytes);
        const float scale = tq2 ? quant::tq2_0_block_scale(block) : quant::tq1_0_block_scale(block);
        // (tq_output's step: the same operations, so both give the same bits)
        acc += scale * static_cast<float>(dots[b] - block_sums[b]);
    }
    return acc / act.scale;
}

__attribute__((target("f16c"))) void tq_row_scales(TypeId type, const std::uint8_t* row,
                                                   std::int64_t blocks, float* scales) {
    const bool tq2 = type == TypeId::TQ2_0;
    const std::int64_t bytes = tq2 ? kTq2Bytes : kTq1Bytes, at = tq2 ? 64 : 52;
    for (std::int64_t b = 0; b < blocks; ++b) {
        std::uint16_t h;
        std::memcpy(&h, row + b * bytes + at, 2);
        scales[b] = _cvtsh_ss(h);
    }
}

}  // namespace bitnet::kernels::detail

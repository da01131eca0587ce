// exp of a float, computed in double and rounded once to float: the softmax's exponential, eight
// lanes at a time (AVX2) and one at a time, with the same double operations in the same order so
// both give the same bits. In double the result is within ~1e-14 relative of e^x, so rounding it
// gives the correctly rounded float but for inputs within that distance of a halfway point (the
// CUDA attention computes exp in double and rounds the same way).
//
// e^x = 2^k * e^r with k = round(x / ln 2) and r = x - k ln 2 (|r| <= ln 2 / 2, ln 2 in two parts
// so k * ln2_hi is exact), e^r by its Taylor series to r^11 (truncation < 7e-15 there).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include <immintrin.h>

namespace bitnet::kernels::detail {

// Below -110 the result rounds to +0 (the smallest subnormal float is e^-103.3); above 89 to
// infinity. Clamping keeps 2^k a normal double.
inline constexpr double kExpMin = -110.0, kExpMax = 89.0;
inline constexpr double kInvLn2 = 1.4426950408889634;
inline constexpr double kLn2Hi = 0.693147180369123816490;  // 32 significant bits
inline constexpr double kLn2Lo = 1.90821492927058770002e-10;
// 1/11!, 1/10!, ..., 1/2!, 1, 1 (Horner's order).
inline constexpr double kExpTaylor[12] = {
    1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0,
    1.0 / 120.0,      1.0 / 24.0,      1.0 / 6.0,      1.0 / 2.0,     1.0,          1.0};

// GCC contracts a * b + c into a fused multiply-add across statements where the target has one
// (this function inlined into an FMA-enabled caller): that would change the bits.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
inline float exp_via_double(float x) {
    if (std::isnan(x)) return x;
    const double xd = std::fmin(std::fmax(static_cast<double>(x), kExpMin), kExpMax);
    const double k = std::nearbyint(xd * kInvLn2);  // ties to even, as _mm256_round_pd below
    const double hi = xd - k * kLn2Hi;
    const double r = hi - k * kLn2Lo;
    double p = kExpTaylor[0];
    for (int i = 1; i < 12; ++i) {
        const double pr = p * r;  // separate statements: no fused multiply-add
        p = pr + kExpTaylor[i];
    }
    const std::uint64_t bits = static_cast<std::uint64_t>(static_cast<std::int64_t>(k) + 1023)
                               << 52;
    double scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return static_cast<float>(p * scale);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

__attribute__((target("avx2"))) inline __m128 exp4_via_double(__m128 x) {
    const __m256d xd = _mm256_min_pd(_mm256_max_pd(_mm256_cvtps_pd(x), _mm256_set1_pd(kExpMin)),
                                     _mm256_set1_pd(kExpMax));
    const __m256d k = _mm256_round_pd(_mm256_mul_pd(xd, _mm256_set1_pd(kInvLn2)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256d hi = _mm256_sub_pd(xd, _mm256_mul_pd(k, _mm256_set1_pd(kLn2Hi)));
    const __m256d r = _mm256_sub_pd(hi, _mm256_mul_pd(k, _mm256_set1_pd(kLn2Lo)));
    __m256d p = _mm256_set1_pd(kExpTaylor[0]);
    for (int i = 1; i < 12; ++i)
        p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(kExpTaylor[i]));
    const __m256i e = _mm256_slli_epi64(
        _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(k)), _mm256_set1_epi64x(1023)),
        52);
    const __m128 y = _mm256_cvtpd_ps(_mm256_mul_pd(p, _mm256_castsi256_pd(e)));
    // NaN in, NaN out (the clamp would have turned it into a number).
    return _mm_blendv_ps(y, x, _mm_cmpunord_ps(x, x));
}

__attribute__((target("avx2"))) inline __m256 exp8_via_double(__m256 x) {
    return _mm256_set_m128(exp4_via_double(_mm256_extractf128_ps(x, 1)),
                           exp4_via_double(_mm256_castps256_ps128(x)));
}

// x[i] = exp(x[i] - shift) for i < n (the subtraction in float), eight at a time where the CPU
// has AVX2: the bits of exp_via_double(x[i] - shift) either way.
void exp_shifted(float* x, std::int64_t n, float shift);

}  // namespace bitnet::kernels::detail

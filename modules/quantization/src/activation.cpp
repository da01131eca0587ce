#include "bitnet/quantization/activation.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "bitnet/common/cpu_features.hpp"

namespace bitnet::quant {
namespace {

// bitnet.cpp computes the absmax in double and floors it at 1e-5 (an all-zero row must not
// divide by zero); the scale is then rounded to float once.
float scale_for(double amax) {
    return static_cast<float>(127.0 / std::max(amax, 1e-5));
}

// clamp(nearest_int(x * a), -128, 127) of 8 values, nearest_int's steps on the float's bits.
__attribute__((target("avx2"))) inline __m256i codes8(const float* x, __m256 a) {
    const __m256i bits = _mm256_castps_si256(
        _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x), a), _mm256_set1_ps(12582912.f)));
    const __m256i v = _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                       _mm256_set1_epi32(0x00400000));
    return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(-128)), _mm256_set1_epi32(127));
}

// AVX2, the same bits as the scalar rules for every input: |x| is exact in float, and
// max(|x|, m) keeps m when |x| is NaN as std::max(m, NaN) does; the rounding is the same
// float multiply and 1.5 * 2^23 addition, then the same integer steps on the bits.
__attribute__((target("avx2"))) ActivationScale quantize_avx2(const float* x, std::int64_t n,
                                                              std::int8_t* q) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps();
    std::int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask), m);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    double amax = 0.0;
    for (const float v : lanes) amax = std::max(amax, static_cast<double>(v));
    for (std::int64_t i = k; i < n; ++i)
        amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
    const float a = scale_for(amax);

    const __m256 scale = _mm256_set1_ps(a);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i sums = _mm256_setzero_si256();
    k = 0;
    for (; k + 32 <= n; k += 32) {
        const __m256i v0 = codes8(x + k, scale), v1 = codes8(x + k + 8, scale),
                      v2 = codes8(x + k + 16, scale), v3 = codes8(x + k + 24, scale);
        sums = _mm256_add_epi32(
            sums, _mm256_add_epi32(_mm256_add_epi32(v0, v1), _mm256_add_epi32(v2, v3)));
        // Values are within int8 already: the saturating packs keep them; the permute undoes
        // the packs' per-lane interleaving.
        const __m256i packed =
            _mm256_packs_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v2, v3));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k),
                            _mm256_permutevar8x32_epi32(packed, order));
    }
    alignas(32) std::int32_t partial[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(partial), sums);
    std::int32_t sum = 0;
    for (const std::int32_t v : partial) sum += v;
    for (; k < n; ++k) {
        const int v = std::clamp(nearest_int(x[k] * a), -128, 127);
        q[k] = static_cast<std::int8_t>(v);
        sum += v;
    }
    return {a, sum};
}

}  // namespace

ActivationScale quantize_activations_i8_scalar(const float* x, std::int64_t n, std::int8_t* q) {
    double amax = 0.0;
    for (std::int64_t k = 0; k < n; ++k)
        amax = std::max(amax, std::fabs(static_cast<double>(x[k])));
    const float a = scale_for(amax);
    std::int32_t sum = 0;
    for (std::int64_t k = 0; k < n; ++k) {
        const int v = std::clamp(nearest_int(x[k] * a), -128, 127);
        q[k] = static_cast<std::int8_t>(v);
        sum += v;
    }
    return {a, sum};
}

ActivationScale quantize_activations_i8(const float* x, std::int64_t n, std::int8_t* q) {
    static const bool avx2 = cpu_features().avx2;
    return avx2 ? quantize_avx2(x, n, q) : quantize_activations_i8_scalar(x, n, q);
}

}  // namespace bitnet::quant

// The F16 GEMV's row dots of f16_kernels.hpp.
#include "f16_kernels.hpp"

#include <immintrin.h>

#include "bitnet/quantization/fp16.hpp"

namespace bitnet::kernels::detail {
namespace {

// The F16 GEMV's four accumulators (independent chains hide the FMA latency).
struct F16Sums {
    __m256 a[4];
};

__attribute__((target("avx2,f16c,fma"), always_inline)) inline void add_f16_piece(
    const std::uint16_t* w, __m256 x, __m256& acc) {
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))), x,
                          acc);
}

// The columns from `i` (the 32-wide loop's end) on and the sum of the four accumulators: one
// row's rules, shared by the one-row and the two-row kernel so both give the same bits.
__attribute__((target("avx2,f16c,fma"), always_inline)) inline float finish_f16_dot(
    const std::uint16_t* w, const float* x, std::int64_t n, std::int64_t i, F16Sums s) {
    for (; i + 8 <= n; i += 8) add_f16_piece(w + i, _mm256_loadu_ps(x + i), s.a[0]);
    const __m256 acc = _mm256_add_ps(_mm256_add_ps(s.a[0], s.a[1]), _mm256_add_ps(s.a[2], s.a[3]));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_hadd_ps(h, h);
    h = _mm_hadd_ps(h, h);
    float total = _mm_cvtss_f32(h);
    for (; i < n; ++i) total += quant::fp16_to_fp32(w[i]) * x[i];
    return total;
}

}  // namespace

__attribute__((target("avx2,f16c,fma"))) float dot_f16_f16c(const std::uint16_t* w, const float* x,
                                                            std::int64_t n, int prefetch) {
    F16Sums s{{_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}};
    std::int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(w + i) + prefetch, _MM_HINT_T0);
        for (int k = 0; k < 4; ++k)
            add_f16_piece(w + i + 8 * k, _mm256_loadu_ps(x + i + 8 * k), s.a[k]);
    }
    return finish_f16_dot(w, x, n, i, s);
}

// (each vector of x serves both rows)
__attribute__((target("avx2,f16c,fma"))) void dot_f16_f16c_pair(const std::uint16_t* wa,
                                                                const std::uint16_t* wb,
                                                                const float* x, std::int64_t n,
                                                                int prefetch, float* ya,
                                                                float* yb) {
    F16Sums sa{
        {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}};
    F16Sums sb = sa;
    std::int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(wa + i) + prefetch, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(wb + i) + prefetch, _MM_HINT_T0);
        for (int k = 0; k < 4; ++k) {
            const __m256 xv = _mm256_loadu_ps(x + i + 8 * k);
            add_f16_piece(wa + i + 8 * k, xv, sa.a[k]);
            add_f16_piece(wb + i + 8 * k, xv, sb.a[k]);
        }
    }
    *ya = finish_f16_dot(wa, x, n, i, sa);
    *yb = finish_f16_dot(wb, x, n, i, sb);
}

}  // namespace bitnet::kernels::detail

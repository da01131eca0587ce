#include "q8_0_kernels.hpp"
#include "prefetch.hpp"

#include "avx512_intrinsics.hpp"

#include <cstring>

namespace bitnet::kernels::detail {
namespace {

// Two consecutive Q8_0 blocks' 64 quants in one vector: lanes 0-31 from the first block (b + 2),
// lanes 32-63 from the second (b + 36 = (b + 4) + 32), by two masked loads.
__attribute__((target("avx512f,avx512bw"))) __m512i q8_0_block_pair(const std::uint8_t* b) {
    const __m512i first = _mm512_maskz_loadu_epi8(0x00000000ffffffffull, b + 2);
    return _mm512_mask_loadu_epi8(first, 0xffffffff00000000ull, b + 4);
}

// The product of a weight block's and an activation block's F16 scales: hardware (F16C)
// conversions, exact as the scalar ones, without their branches.
__attribute__((target("f16c"))) float q8_0_scale(const std::uint8_t* wb, const std::uint8_t* xb) {
    std::uint16_t hw, hx;
    std::memcpy(&hw, wb, 2);
    std::memcpy(&hx, xb, 2);
    return _cvtsh_ss(hw) * _cvtsh_ss(hx);
}

// One block's 8 int32 lane sums as floats.
__attribute__((target("avx2"))) __m256 q8_0_block_lanes(const std::uint8_t* wb,
                                                        const std::uint8_t* xb) {
    const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 2));
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 2));
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

}  // namespace

// Q8_0 row . Q8_0 activations (ggml's vec_dot_q8_0_q8_0 arithmetic): per 32-block, the sign of
// the weight moves onto the activation so maddubs (u8 x s8) applies; each block's 8 int32 lane
// sums are scaled by both block scales and accumulated in 8 float lanes (two
// accumulators: one chain would wait on the FMA latency every block), summed once at the end (a
// different summation order from the scalar reference: equal within float rounding). The weight
// lines are asked for ahead: the head streams 350 MB per token. The one-row and two-row kernels
// share their steps, so a row gets the same bits from both.
namespace {

struct Q8Avx2Sums {
    __m256 a0, a1;
};

// Blocks b and b + 1 of a row.
__attribute__((target("avx2,f16c,fma"), always_inline)) inline void q8_0_avx2_step(
    const std::uint8_t* wb, const std::uint8_t* xb, Q8Avx2Sums& s) {
    s.a0 = _mm256_fmadd_ps(_mm256_set1_ps(q8_0_scale(wb, xb)), q8_0_block_lanes(wb, xb), s.a0);
    s.a1 = _mm256_fmadd_ps(_mm256_set1_ps(q8_0_scale(wb + 34, xb + 34)),
                           q8_0_block_lanes(wb + 34, xb + 34), s.a1);
}

// The odd last block (from `b`) and the sum of the lanes.
__attribute__((target("avx2,f16c,fma"), always_inline)) inline float q8_0_avx2_finish(
    const std::uint8_t* w, const std::uint8_t* x, std::int64_t blocks, std::int64_t b,
    Q8Avx2Sums s) {
    if (b < blocks)
        s.a0 = _mm256_fmadd_ps(_mm256_set1_ps(q8_0_scale(w + b * 34, x + b * 34)),
                               q8_0_block_lanes(w + b * 34, x + b * 34), s.a0);
    const __m256 acc = _mm256_add_ps(s.a0, s.a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_hadd_ps(h, h);
    h = _mm_hadd_ps(h, h);
    return _mm_cvtss_f32(h);
}

// VNNI, two blocks per 512-bit vector: |w| (u8) times x with w's sign moved onto it (s8) by
// vpdpbusd gives each block's sums in 8 int32 lanes, scaled by a vector holding block A's scale
// in lanes 0-7 and block B's in 8-15.
__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,f16c,fma"), always_inline)) inline void
q8_0_vnni_step(const std::uint8_t* wb, const std::uint8_t* xb, __m512& acc) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i qw = q8_0_block_pair(wb), qx = q8_0_block_pair(xb);
    const __m512i signed_x = _mm512_mask_sub_epi8(qx, _mm512_movepi8_mask(qw), zero, qx);
    const __m512i dots = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(qw), signed_x);
    const __m512 scales = _mm512_mask_mov_ps(_mm512_set1_ps(q8_0_scale(wb, xb)), 0xff00,
                                             _mm512_set1_ps(q8_0_scale(wb + 34, xb + 34)));
    acc = _mm512_fmadd_ps(scales, _mm512_cvtepi32_ps(dots), acc);
}

__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,f16c,fma"), always_inline)) inline float
q8_0_vnni_finish(const std::uint8_t* w, const std::uint8_t* x, std::int64_t blocks, std::int64_t b,
                 __m512 acc, int prefetch) {
    float total = _mm512_reduce_add_ps(acc);
    if (b < blocks) total += dot_q8_0_avx2(w + b * 34, x + b * 34, 32, prefetch);
    return total;
}

}  // namespace

__attribute__((target("avx2,f16c,fma"))) float dot_q8_0_avx2(const std::uint8_t* w,
                                                             const std::uint8_t* x,
                                                             std::int64_t cols, int prefetch) {
    Q8Avx2Sums s{_mm256_setzero_ps(), _mm256_setzero_ps()};
    const std::int64_t blocks = cols / 32;
    std::int64_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        _mm_prefetch(reinterpret_cast<const char*>(w + b * 34) + prefetch, _MM_HINT_T0);
        q8_0_avx2_step(w + b * 34, x + b * 34, s);
    }
    return q8_0_avx2_finish(w, x, blocks, b, s);
}

__attribute__((target("avx2,f16c,fma"))) void dot_q8_0_avx2_pair(const std::uint8_t* wa,
                                                                 const std::uint8_t* wb,
                                                                 const std::uint8_t* x,
                                                                 std::int64_t cols, int prefetch,
                                                                 float* ya, float* yb) {
    Q8Avx2Sums sa{_mm256_setzero_ps(), _mm256_setzero_ps()}, sb = sa;
    const std::int64_t blocks = cols / 32;
    std::int64_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        _mm_prefetch(reinterpret_cast<const char*>(wa + b * 34) + prefetch, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(wb + b * 34) + prefetch, _MM_HINT_T0);
        q8_0_avx2_step(wa + b * 34, x + b * 34, sa);
        q8_0_avx2_step(wb + b * 34, x + b * 34, sb);
    }
    *ya = q8_0_avx2_finish(wa, x, blocks, b, sa);
    *yb = q8_0_avx2_finish(wb, x, blocks, b, sb);
}

__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,f16c,fma"))) float dot_q8_0_vnni(
    const std::uint8_t* w, const std::uint8_t* x, std::int64_t cols, int prefetch) {
    __m512 acc = _mm512_setzero_ps();
    const std::int64_t blocks = cols / 32;
    std::int64_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        _mm_prefetch(reinterpret_cast<const char*>(w + b * 34) + prefetch, _MM_HINT_T0);
        q8_0_vnni_step(w + b * 34, x + b * 34, acc);
    }
    return q8_0_vnni_finish(w, x, blocks, b, acc, prefetch);
}

__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,f16c,fma"))) void dot_q8_0_vnni_pair(
    const std::uint8_t* wa, const std::uint8_t* wb, const std::uint8_t* x, std::int64_t cols,
    int prefetch, float* ya, float* yb) {
    __m512 acc_a = _mm512_setzero_ps(), acc_b = _mm512_setzero_ps();
    const std::int64_t blocks = cols / 32;
    std::int64_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        _mm_prefetch(reinterpret_cast<const char*>(wa + b * 34) + prefetch, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(wb + b * 34) + prefetch, _MM_HINT_T0);
        q8_0_vnni_step(wa + b * 34, x + b * 34, acc_a);
        q8_0_vnni_step(wb + b * 34, x + b * 34, acc_b);
    }
    *ya = q8_0_vnni_finish(wa, x, blocks, b, acc_a, prefetch);
    *yb = q8_0_vnni_finish(wb, x, blocks, b, acc_b, prefetch);
}

}  // namespace bitnet::kernels::detail

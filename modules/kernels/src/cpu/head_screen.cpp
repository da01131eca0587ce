// The screening head of head_screen.hpp: making the int8 rows, the integer dots, the bounds.
#include "head_screen.hpp"
#include "avx512_intrinsics.hpp"  // (see there)

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/kernels/top_k.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::kernels::detail {
namespace {

constexpr std::int64_t kStrideAlign = 64;
constexpr float kInf = std::numeric_limits<float>::infinity();

// v rounded to a float below (above) it, without branches: the margin is larger than the
// conversion's own rounding (2^-24 relative, 2^-150 below the normals).
float float_below(double v) {
    return static_cast<float>(v - std::fabs(v) * 0x1p-22 - 0x1p-140);
}
float float_above(double v) {
    return static_cast<float>(v + std::fabs(v) * 0x1p-22 + 0x1p-140);
}

// One row of the F16 matrix to int8 codes: its scale, largest reconstruction error and whether
// every weight is finite. The codes are round-to-nearest-even of w / scale (the GPU's rule).
struct RowCodes {
    float scale = 0, largest = 0;
    double error = 0;
    bool finite = true;
};

__attribute__((target("avx2,f16c,fma"))) RowCodes quantize_row_f16c(const std::uint16_t* w,
                                                                    std::int64_t cols,
                                                                    std::int8_t* codes) {
    RowCodes out;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m128i exponent = _mm_set1_epi16(0x7c00);
    __m256 most = _mm256_setzero_ps();
    __m128i special = _mm_setzero_si128();
    std::int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j));
        special = _mm_or_si128(special, _mm_cmpeq_epi16(_mm_and_si128(h, exponent), exponent));
        most = _mm256_max_ps(most, _mm256_andnot_ps(sign, _mm256_cvtph_ps(h)));
    }
    float m[8];
    _mm256_storeu_ps(m, most);
    float largest = 0;
    for (float v : m) largest = std::max(largest, v);
    bool finite = _mm_movemask_epi8(special) == 0;
    for (std::int64_t t = j; t < cols; ++t) {
        const float v = quant::fp16_to_fp32(w[t]);
        finite = finite && std::isfinite(v);
        largest = std::max(largest, std::fabs(v));
    }
    out.finite = finite;
    out.largest = largest;
    if (!finite || largest == 0.0f) {
        std::memset(codes, 0, static_cast<std::size_t>(cols));
        return out;
    }
    const float d = largest / 127.0f;
    out.scale = d;
    const __m256 dv = _mm256_set1_ps(d), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    __m256 worst = _mm256_setzero_ps();
    for (j = 0; j + 8 <= cols; j += 8) {
        const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j)));
        const __m256 q = _mm256_min_ps(
            hi, _mm256_max_ps(lo, _mm256_round_ps(_mm256_div_ps(v, dv),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        // v - q * d rounded once (the error's own rounding is allowed for below)
        worst = _mm256_max_ps(worst, _mm256_andnot_ps(sign, _mm256_fnmadd_ps(q, dv, v)));
        const __m256i q32 = _mm256_cvtps_epi32(q);
        const __m128i q16 =
            _mm_packs_epi32(_mm256_castsi256_si128(q32), _mm256_extracti128_si256(q32, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + j), _mm_packs_epi16(q16, q16));
    }
    float e[8];
    _mm256_storeu_ps(e, worst);
    double error = 0;
    for (float v : e) error = std::max(error, static_cast<double>(v));
    for (; j < cols; ++j) {
        const float v = quant::fp16_to_fp32(w[j]);
        const float q = std::min(127.0f, std::max(-127.0f, std::rint(v / d)));
        codes[j] = static_cast<std::int8_t>(q);
        error = std::max(error, std::fabs(static_cast<double>(v) - static_cast<double>(q) * d));
    }
    out.error = error;
    return out;
}

// dots of R rows (R = 1, 2: two streams share each load of x).
template <int R>
void dots_scalar(const std::int8_t* const* rows, std::int64_t stride, const std::int16_t* x,
                 std::int64_t* dots) {
    for (int r = 0; r < R; ++r) {
        std::int64_t sum = 0;
        for (std::int64_t j = 0; j < stride; ++j) sum += std::int64_t{rows[r][j]} * x[j];
        dots[r] = sum;
    }
}

__attribute__((target("avx2"))) inline std::int64_t sum_lanes_avx2(__m256i a, __m256i b) {
    const __m256i wide =
        _mm256_add_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(a)),
                                          _mm256_cvtepi32_epi64(_mm256_extracti128_si256(a, 1))),
                         _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(b)),
                                          _mm256_cvtepi32_epi64(_mm256_extracti128_si256(b, 1))));
    alignas(32) std::int64_t l[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(l), wide);
    return l[0] + l[1] + l[2] + l[3];
}

// Each lane of an accumulator takes 2 products per 32 columns: stride / 16 in all.
template <int R>
__attribute__((target("avx2"))) void dots_avx2(const std::int8_t* const* rows, std::int64_t stride,
                                               const std::int16_t* x, int prefetch,
                                               std::int64_t* dots) {
    __m256i lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_si256();
    for (std::int64_t j = 0; j < stride; j += 64) {
        for (int r = 0; r < R; ++r)
            _mm_prefetch(reinterpret_cast<const char*>(rows[r] + j) + prefetch, _MM_HINT_T0);
        for (std::int64_t k = j; k < j + 64; k += 32) {
            const __m256i xl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k));
            const __m256i xh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k + 16));
            for (int r = 0; r < R; ++r) {
                const __m256i wl = _mm256_cvtepi8_epi16(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r] + k)));
                const __m256i wh = _mm256_cvtepi8_epi16(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r] + k + 16)));
                lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(wl, xl));
                hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(wh, xh));
            }
        }
    }
    for (int r = 0; r < R; ++r) dots[r] = sum_lanes_avx2(lo[r], hi[r]);
}

// Each lane of an accumulator takes 2 products per 64 columns.
template <int R>
__attribute__((target("avx512f,avx512bw"))) void dots_avx512(const std::int8_t* const* rows,
                                                             std::int64_t stride,
                                                             const std::int16_t* x, int prefetch,
                                                             std::int64_t* dots) {
    __m512i lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_si512();
    for (std::int64_t j = 0; j < stride; j += 64) {
        const __m512i xl = _mm512_loadu_si512(x + j);
        const __m512i xh = _mm512_loadu_si512(x + j + 32);
        for (int r = 0; r < R; ++r) {
            _mm_prefetch(reinterpret_cast<const char*>(rows[r] + j) + prefetch, _MM_HINT_T0);
            const __m512i wl = _mm512_cvtepi8_epi16(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r] + j)));
            const __m512i wh = _mm512_cvtepi8_epi16(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r] + j + 32)));
            lo[r] = _mm512_add_epi32(lo[r], _mm512_madd_epi16(wl, xl));
            hi[r] = _mm512_add_epi32(hi[r], _mm512_madd_epi16(wh, xh));
        }
    }
    for (int r = 0; r < R; ++r) {
        const __m512i wide = _mm512_add_epi64(
            _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(lo[r])),
                             _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(lo[r], 1))),
            _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(hi[r])),
                             _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(hi[r], 1))));
        dots[r] = _mm512_reduce_add_epi64(wide);
    }
}

template <int R>
void dots_of(ScreenKernel kernel, const std::int8_t* const* rows, std::int64_t stride,
             const std::int16_t* x, int prefetch, std::int64_t* dots) {
    switch (kernel) {
        case ScreenKernel::Avx512:
            dots_avx512<R>(rows, stride, x, prefetch, dots);
            return;
        case ScreenKernel::Avx2:
            dots_avx2<R>(rows, stride, x, prefetch, dots);
            return;
        case ScreenKernel::Scalar:
            dots_scalar<R>(rows, stride, x, dots);
            return;
    }
}

}  // namespace

bool screen_kernel_supported(ScreenKernel kernel) {
    const CpuFeatures& f = cpu_features();
    switch (kernel) {
        case ScreenKernel::Avx512:
            return f.avx512f && f.avx512bw;
        case ScreenKernel::Avx2:
            return f.avx2;
        case ScreenKernel::Scalar:
            return true;
    }
    return false;
}

ScreenKernel best_screen_kernel() {
    if (screen_kernel_supported(ScreenKernel::Avx512)) return ScreenKernel::Avx512;
    if (screen_kernel_supported(ScreenKernel::Avx2)) return ScreenKernel::Avx2;
    return ScreenKernel::Scalar;
}

std::int32_t screen_input_limit(std::int64_t stride) {
    const std::int64_t per_lane = std::max<std::int64_t>(1, stride / 16);
    return static_cast<std::int32_t>(
        std::min<std::int64_t>(32767, std::numeric_limits<std::int32_t>::max() / (127 * per_lane)));
}

void screen_dots(ScreenKernel kernel, const std::int8_t* rows, std::int64_t stride,
                 std::int64_t count, const std::int16_t* x, int prefetch, std::int64_t* dots) {
    // Rows i, i + part, i + 2 part, ... together: streams far apart keep more lines in flight
    // than neighbours (one stream to the prefetchers), as the F16 head's row pairs.
    constexpr int kStreams = 2;
    const std::int64_t part = count / kStreams;
    for (std::int64_t i = 0; i < part; ++i) {
        const std::int8_t* group[kStreams];
        std::int64_t out[kStreams];
        for (int k = 0; k < kStreams; ++k) group[k] = rows + (i + k * part) * stride;
        dots_of<kStreams>(kernel, group, stride, x, prefetch, out);
        for (int k = 0; k < kStreams; ++k) dots[i + k * part] = out[k];
    }
    for (std::int64_t i = kStreams * part; i < count; ++i) {
        const std::int8_t* one[1] = {rows + i * stride};
        dots_of<1>(kernel, one, stride, x, prefetch, dots + i);
    }
}

ScreenedHead::ScreenedHead(const std::uint16_t* w, std::int64_t rows, std::int64_t cols,
                           int threads)
    : rows_(rows), cols_(cols), stride_((cols + kStrideAlign - 1) / kStrideAlign * kStrideAlign) {
    if (!cpu_features().f16c || !cpu_features().avx2 || !cpu_features().fma)
        fail(ErrorCode::Unsupported, "the screening head needs AVX2, F16C and FMA");
    // In huge pages: the rows are streamed once per token like the weights.
    codes_ = HugePageBytes(static_cast<std::size_t>(rows) * static_cast<std::size_t>(stride_), -1,
                           "the screening head's int8 rows");
    scale_.resize(static_cast<std::size_t>(rows));
    slack_.resize(static_cast<std::size_t>(rows));
    abs_code_sum_.resize(static_cast<std::size_t>(rows));
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
    for (std::int64_t r = 0; r < rows; ++r) {
        std::int8_t* row = codes() + r * stride_;
        const RowCodes c = quantize_row_f16c(w + r * cols, cols, row);
        std::memset(row + cols, 0, static_cast<std::size_t>(stride_ - cols));
        std::int32_t abs_sum = 0;
        for (std::int64_t j = 0; j < cols; ++j) abs_sum += std::abs(std::int32_t{row[j]});
        const auto i = static_cast<std::size_t>(r);
        scale_[i] = c.scale;
        abs_code_sum_[i] = abs_sum;
        // (the error was rounded to float once: relative 2^-24, or 2^-150 below the normals)
        slack_[i] = !c.finite ? kInf
                              : float_above(c.error * (1 + 0x1p-22) + 0x1p-140 +
                                            3.0 * static_cast<double>(cols) * 0x1p-24 * c.largest);
    }
}

std::uint64_t ScreenedHead::bytes() const {
    return static_cast<std::uint64_t>(rows_) * static_cast<std::uint64_t>(stride_) +
           static_cast<std::uint64_t>(rows_) * (2 * sizeof(float) + sizeof(std::int32_t));
}

float ScreenedHead::compute_bounds(const float* x, ScreenKernel kernel, int threads,
                                   int prefetch) const {
    float largest = 0;
    double l1 = 0;
    for (std::int64_t j = 0; j < cols_; ++j) {
        if (!std::isfinite(x[j])) return std::numeric_limits<float>::quiet_NaN();
        largest = std::max(largest, std::fabs(x[j]));
        l1 += std::fabs(x[j]);
    }
    // (a zero input: every finite row's result is exactly 0 — the full product is as cheap)
    if (l1 == 0) return std::numeric_limits<float>::quiet_NaN();
    const std::int32_t limit = screen_input_limit(stride_);
    const float step = largest / static_cast<float>(limit);
    input_.assign(static_cast<std::size_t>(stride_), 0);
    double x_error = 0;  // exact: step * k has at most 40 significant bits
    for (std::int64_t j = 0; j < cols_; ++j) {
        const float k = step > 0
                            ? std::min(static_cast<float>(limit),
                                       std::max(-static_cast<float>(limit), std::rint(x[j] / step)))
                            : 0.0f;
        input_[static_cast<std::size_t>(j)] = static_cast<std::int16_t>(k);
        x_error = std::max(x_error, std::fabs(static_cast<double>(x[j]) -
                                              static_cast<double>(step) * static_cast<double>(k)));
    }
    bounds_.resize(static_cast<std::size_t>(rows_));
    // Tasks of ~256 kB of rows, as the ternary decode products (a task's first lines are read
    // before its prefetches run ahead).
    constexpr std::int64_t kTaskRows = 512;
    const std::int64_t per_task =
        std::clamp<std::int64_t>((256 * 1024 / stride_) / 2 * 2, 2, kTaskRows);
    const std::int64_t tasks = (rows_ + per_task - 1) / per_task;
    const double cols_floor = static_cast<double>(cols_) * 0x1p-149;  // sums below the normals
    float best = -kInf;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(max : best)
    for (std::int64_t t = 0; t < tasks; ++t) {
        const std::int64_t r0 = t * per_task, count = std::min(per_task, rows_ - r0);
        std::int64_t dots[kTaskRows];
        screen_dots(kernel, codes() + r0 * stride_, stride_, count, input_.data(), prefetch, dots);
        // (rows with non-finite weights: scale 0 and slack +inf, so [-inf, +inf])
        for (std::int64_t i = 0; i < count; ++i) {
            const auto r = static_cast<std::size_t>(r0 + i);
            const double scale = scale_[r];
            const double center = scale * step * static_cast<double>(dots[i]);
            const double radius = scale * x_error * abs_code_sum_[r] +
                                  static_cast<double>(slack_[r]) * l1 + cols_floor;
            // (the doubles' own roundings: far below 2^-32 of the values)
            const double width = radius + (std::fabs(center) + radius) * 0x1p-32;
            const float lower = float_below(center - width);
            bounds_[r] = {lower, float_above(center + width)};
            best = std::max(best, lower);
        }
    }
    return best;
}

void ScreenedHead::penalize_bounds(std::span<const std::int32_t> ids, float penalty) const {
    for (const std::int32_t id : ids) {
        if (id < 0 || id >= rows_) continue;
        RowBounds& b = bounds_[static_cast<std::size_t>(id)];
        b = {apply_repeat_penalty(b.lower, penalty), apply_repeat_penalty(b.upper, penalty)};
    }
}

float ScreenedHead::kth_largest_lower(std::size_t k) const {
    if (k == 0 || k >= static_cast<std::size_t>(rows_)) return -kInf;
    // A heap of the k largest so far (front: the smallest of them); blocks of rows entirely at
    // or below it are skipped with one vectorizable test.
    std::vector<float>& heap = lowest_of_best_;
    heap.clear();
    const auto greater = std::greater<float>();
    const std::size_t n = bounds_.size();
    std::size_t i = 0;
    for (; i < k; ++i) heap.push_back(bounds_[i].lower);
    std::make_heap(heap.begin(), heap.end(), greater);
    auto offer = [&](float v) {
        if (v <= heap.front()) return;
        std::pop_heap(heap.begin(), heap.end(), greater);
        heap.back() = v;
        std::push_heap(heap.begin(), heap.end(), greater);
    };
    constexpr std::size_t kBlock = 16;
    for (; i + kBlock <= n; i += kBlock) {
        const float least = heap.front();
        bool any = false;
        for (std::size_t j = 0; j < kBlock; ++j) any |= bounds_[i + j].lower > least;
        if (any)
            for (std::size_t j = 0; j < kBlock; ++j) offer(bounds_[i + j].lower);
    }
    for (; i < n; ++i) offer(bounds_[i].lower);
    return heap.front();
}

void ScreenedHead::rows_reaching(float threshold, std::vector<std::int32_t>& out) const {
    out.clear();
    for (std::int64_t r = 0; r < rows_; ++r)
        if (bounds_[static_cast<std::size_t>(r)].upper >= threshold)
            out.push_back(static_cast<std::int32_t>(r));
}

}  // namespace bitnet::kernels::detail

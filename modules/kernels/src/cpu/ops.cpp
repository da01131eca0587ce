#include "bitnet/kernels/ops.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <immintrin.h>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/quantization/fp16.hpp"
#include "exp_via_double.hpp"

namespace bitnet::kernels {

namespace {

// A norm's row in kNormPieces pieces (ops.hpp: how norms sum their squares).
constexpr int kNormPieces = 8;
struct NormPieces {
    std::int64_t n, per;  // row length, elements per piece (the last may have fewer)
    std::int64_t begin(int p) const { return std::min(n, p * per); }
    std::int64_t size(int p) const { return std::min(n, (p + 1) * per) - begin(p); }
};

NormPieces norm_pieces(std::int64_t n) {
    return {n, (n + kNormPieces - 1) / kNormPieces};
}

double piece_sum_of_squares(const float* x, std::int64_t n) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
        sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    return sum;
}

double sum_of_squares(const float* x, std::int64_t n) {
    const NormPieces pieces = norm_pieces(n);
    double total = 0.0;
    for (int p = 0; p < kNormPieces; ++p)
        total += piece_sum_of_squares(x + pieces.begin(p), pieces.size(p));
    return total;
}

// 1 / sqrt(mean + eps) with the mean rounded to float.
float rms_scale(double sum_of_squares, std::int64_t n, float eps) {
    const float mean = static_cast<float>(sum_of_squares / static_cast<double>(n));
    return 1.0f / std::sqrt(mean + eps);
}

// out = x * scale * weight (weight may be nullptr); out may be x.
void scale_by_weight(const float* x, float scale, const float* weight, std::int64_t n, float* out) {
    for (std::int64_t i = 0; i < n; ++i) {
        const float normalized = x[i] * scale;
        out[i] = weight != nullptr ? normalized * weight[i] : normalized;
    }
}

// gate = relu(gate)^2 * up over a range; returns the range's running sum of squares.
double relu_squared_mul_sum_of_squares(float* gate, const float* up, std::int64_t n) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        const float a = relu_squared_times(gate[i], up[i]);
        gate[i] = a;
        sum += static_cast<double>(a) * static_cast<double>(a);
    }
    return sum;
}

}  // namespace

void rmsnorm(const float* x, const float* weight, std::int64_t n, float eps, float* out) {
    scale_by_weight(x, rms_scale(sum_of_squares(x, n), n, eps), weight, n, out);
}

void rope_angles(std::int64_t position, std::int64_t rope_dim, float freq_base, float* cos,
                 float* sin) {
    const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(rope_dim));
    float theta = static_cast<float>(position);
    for (std::int64_t i = 0; i < rope_dim / 2; ++i) {
        cos[i] = std::cos(theta);
        sin[i] = std::sin(theta);
        theta *= theta_scale;
    }
}

void rope_neox_with(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rope_dim,
                    const float* cos, const float* sin) {
    const std::int64_t half = rope_dim / 2;
    for (std::int64_t h = 0; h < n_heads; ++h) {
        float* v = x + h * head_dim;
        for (std::int64_t i = 0; i < half; ++i) {
            const float c = cos[i], s = sin[i];
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * c - x1 * s;
            v[i + half] = x0 * s + x1 * c;
        }
    }
}

void rope_neox(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rope_dim,
               std::int64_t position, float freq_base) {
    std::vector<float> cos(static_cast<std::size_t>(rope_dim / 2)), sin(cos.size());
    rope_angles(position, rope_dim, freq_base, cos.data(), sin.data());
    rope_neox_with(x, n_heads, head_dim, rope_dim, cos.data(), sin.data());
}

namespace detail {

namespace {
__attribute__((target("avx2"))) void exp_shifted_avx2(float* x, std::int64_t n, float shift) {
    const __m256 s = _mm256_set1_ps(shift);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, exp8_via_double(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
    for (; i < n; ++i) x[i] = exp_via_double(x[i] - shift);
}
}  // namespace

void exp_shifted(float* x, std::int64_t n, float shift) {
    static const bool avx2 = cpu_features().avx2;
    if (avx2) {
        exp_shifted_avx2(x, n, shift);
        return;
    }
    for (std::int64_t i = 0; i < n; ++i) x[i] = exp_via_double(x[i] - shift);
}

}  // namespace detail

void softmax(float* x, std::int64_t n, float scale) {
    float max = -INFINITY;
    for (std::int64_t i = 0; i < n; ++i) {
        x[i] *= scale;
        max = std::max(max, x[i]);
    }
    detail::exp_shifted(x, n, max);
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
    const float inv = static_cast<float>(1.0 / sum);
    for (std::int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void relu_squared_mul(float* x, const float* up, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) x[i] = relu_squared_times(x[i], up[i]);
}

void relu_squared_mul_rmsnorm(float* gate, const float* up, const float* weight, std::int64_t n,
                              float eps, bool spread_over_threads) {
    const NormPieces pieces = norm_pieces(n);
    double partial[kNormPieces];
    // The pieces' sums are added in their order whatever thread computed them: the same bits on
    // any number of threads.
#pragma omp parallel if (spread_over_threads)
    {
#pragma omp for schedule(static)
        for (int p = 0; p < kNormPieces; ++p)
            partial[p] = relu_squared_mul_sum_of_squares(gate + pieces.begin(p),
                                                         up + pieces.begin(p), pieces.size(p));
        double total = 0.0;
        for (const double v : partial) total += v;
        const float scale = rms_scale(total, n, eps);
#pragma omp for schedule(static)
        for (int p = 0; p < kNormPieces; ++p)
            scale_by_weight(gate + pieces.begin(p), scale,
                            weight != nullptr ? weight + pieces.begin(p) : nullptr, pieces.size(p),
                            gate + pieces.begin(p));
    }
}

void silu_mul(float* x, const float* up, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i])) * up[i];
}

namespace {

float reduce_lanes(const float* l) {
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

bool has_f16c() {
    static const bool ok = cpu_features().avx2 && cpu_features().f16c;
    return ok;
}

__attribute__((target("avx2,f16c"))) float dot_f16_f32_avx2(const std::uint16_t* a, const float* b,
                                                            std::int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_add_ps(
            acc,
            _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i))),
                          _mm256_loadu_ps(b + i)));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    for (std::int64_t j = 0; i < n; ++i, ++j) lanes[j] += quant::fp16_to_fp32(a[i]) * b[i];
    return reduce_lanes(lanes);
}

__attribute__((target("avx2"))) float dot_f32_avx2(const float* a, const float* b, std::int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    for (std::int64_t j = 0; i < n; ++i, ++j) lanes[j] += a[i] * b[i];
    return reduce_lanes(lanes);
}

__attribute__((target("avx2,f16c"))) void add_scaled_f16_avx2(float* out, const std::uint16_t* v,
                                                              float w, std::int64_t n) {
    const __m256 ww = _mm256_set1_ps(w);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            out + i,
            _mm256_add_ps(_mm256_loadu_ps(out + i),
                          _mm256_mul_ps(ww, _mm256_cvtph_ps(_mm_loadu_si128(
                                                reinterpret_cast<const __m128i*>(v + i))))));
    for (; i < n; ++i) out[i] += w * quant::fp16_to_fp32(v[i]);
}

// Attention over many cached positions: the hardware prefetchers do not run far enough ahead of
// a head's rows (a few cache lines each), so the row kAhead positions on is asked for early.
constexpr std::int64_t kAhead = 8;
__attribute__((target("avx2"))) inline void prefetch_row(const void* row, std::int64_t bytes) {
    for (std::int64_t b = 0; b < bytes; b += 64)
        _mm_prefetch(static_cast<const char*>(row) + b, _MM_HINT_T0);
}

// Four rows at a time, each with its own accumulator and the single-row kernel's operations in
// its order: four independent add chains instead of one (the single row waits on the add's
// latency), the same bits.
__attribute__((target("avx2,f16c"))) void dot_f16_f32_rows_avx2(const std::uint16_t* rows,
                                                                std::int64_t stride,
                                                                std::int64_t count, const float* b,
                                                                std::int64_t n, float* out) {
    std::int64_t p = 0;
    for (; p + 4 <= count; p += 4) {
        for (std::int64_t r = 0; r < 4 && p + kAhead + r < count; ++r)
            prefetch_row(rows + (p + kAhead + r) * stride, n * 2);
        const std::uint16_t* a[4] = {rows + p * stride, rows + (p + 1) * stride,
                                     rows + (p + 2) * stride, rows + (p + 3) * stride};
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps()};
        std::int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 bv = _mm256_loadu_ps(b + i);
            for (int r = 0; r < 4; ++r)
                acc[r] = _mm256_add_ps(
                    acc[r], _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(
                                              reinterpret_cast<const __m128i*>(a[r] + i))),
                                          bv));
        }
        for (int r = 0; r < 4; ++r) {
            alignas(32) float lanes[8];
            _mm256_store_ps(lanes, acc[r]);
            for (std::int64_t k = i, j = 0; k < n; ++k, ++j)
                lanes[j] += quant::fp16_to_fp32(a[r][k]) * b[k];
            out[p + r] = reduce_lanes(lanes);
        }
    }
    for (; p < count; ++p) out[p] = dot_f16_f32_avx2(rows + p * stride, b, n);
}

__attribute__((target("avx2,f16c"))) inline __m256 half8(const std::uint16_t* v) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
}

// out += w[p] * row p for p = 0 .. count - 1, each element's additions in that order (the
// single-row kernel's bits), with 64 of out's values held in registers across all the rows
// instead of loaded and stored for each.
__attribute__((target("avx2,f16c"))) void add_scaled_f16_rows_avx2(
    float* out, const std::uint16_t* rows, std::int64_t stride, const float* w, std::int64_t count,
    std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 acc[8];
        for (int j = 0; j < 8; ++j) acc[j] = _mm256_loadu_ps(out + i + 8 * j);
        for (std::int64_t p = 0; p < count; ++p) {
            if (p + kAhead < count) prefetch_row(rows + (p + kAhead) * stride + i, 128);
            const __m256 ww = _mm256_set1_ps(w[p]);
            const std::uint16_t* v = rows + p * stride + i;
            for (int j = 0; j < 8; ++j)
                acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(ww, half8(v + 8 * j)));
        }
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(out + i + 8 * j, acc[j]);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_loadu_ps(out + i);
        for (std::int64_t p = 0; p < count; ++p)
            acc = _mm256_add_ps(acc,
                                _mm256_mul_ps(_mm256_set1_ps(w[p]), half8(rows + p * stride + i)));
        _mm256_storeu_ps(out + i, acc);
    }
    for (; i < n; ++i)
        for (std::int64_t p = 0; p < count; ++p)
            out[i] += w[p] * quant::fp16_to_fp32(rows[p * stride + i]);
}

}  // namespace

void dot_f16_f32_rows(const std::uint16_t* rows, std::int64_t stride, std::int64_t count,
                      const float* b, std::int64_t n, float* out) {
    if (has_f16c()) {
        dot_f16_f32_rows_avx2(rows, stride, count, b, n, out);
        return;
    }
    for (std::int64_t p = 0; p < count; ++p) out[p] = dot_f16_f32(rows + p * stride, b, n);
}

void add_scaled_f16_rows(float* out, const std::uint16_t* rows, std::int64_t stride, const float* w,
                         std::int64_t count, std::int64_t n) {
    if (has_f16c()) {
        add_scaled_f16_rows_avx2(out, rows, stride, w, count, n);
        return;
    }
    for (std::int64_t p = 0; p < count; ++p) add_scaled_f16(out, rows + p * stride, w[p], n);
}

namespace {

// attention_values_*: output dimensions in slices of kValueSlice (each output's sum is its own:
// slicing changes no order), each slice's chunk sums in a buffer on the stack.
constexpr std::int64_t kValueSlice = 256;

template <typename Row, typename AddRows>
void chunked_values(float* out, const Row* rows, std::int64_t stride, const float* w,
                    std::int64_t count, std::int64_t n, AddRows add_rows) {
    float chunk[kValueSlice];
    for (std::int64_t i0 = 0; i0 < n; i0 += kValueSlice) {
        const std::int64_t width = std::min(kValueSlice, n - i0);
        std::fill(out + i0, out + i0 + width, 0.0f);
        for (std::int64_t p0 = 0; p0 < count; p0 += kAttentionValueChunk) {
            const std::int64_t rows_here = std::min<std::int64_t>(kAttentionValueChunk, count - p0);
            std::fill(chunk, chunk + width, 0.0f);
            add_rows(chunk, rows + p0 * stride + i0, stride, w + p0, rows_here, width);
            for (std::int64_t i = 0; i < width; ++i) out[i0 + i] += chunk[i];
        }
    }
}

}  // namespace

void attention_values_f16(float* out, const std::uint16_t* rows, std::int64_t stride,
                          const float* w, std::int64_t count, std::int64_t n) {
    chunked_values(out, rows, stride, w, count, n, add_scaled_f16_rows);
}

void attention_values_f32(float* out, const float* rows, std::int64_t stride, const float* w,
                          std::int64_t count, std::int64_t n) {
    chunked_values(out, rows, stride, w, count, n,
                   [](float* to, const float* from, std::int64_t s, const float* ws, std::int64_t c,
                      std::int64_t width) {
                       for (std::int64_t p = 0; p < c; ++p)
                           add_scaled_f32(to, from + p * s, ws[p], width);
                   });
}

float dot_f16_f32(const std::uint16_t* a, const float* b, std::int64_t n) {
    if (has_f16c()) return dot_f16_f32_avx2(a, b, n);
    float lanes[8] = {};
    for (std::int64_t i = 0; i < n; ++i) lanes[i % 8] += quant::fp16_to_fp32(a[i]) * b[i];
    return reduce_lanes(lanes);
}

float dot_f32(const float* a, const float* b, std::int64_t n) {
    if (has_f16c()) return dot_f32_avx2(a, b, n);
    float lanes[8] = {};
    for (std::int64_t i = 0; i < n; ++i) lanes[i % 8] += a[i] * b[i];
    return reduce_lanes(lanes);
}

void add_scaled_f16(float* out, const std::uint16_t* v, float w, std::int64_t n) {
    if (has_f16c()) {
        add_scaled_f16_avx2(out, v, w, n);
        return;
    }
    for (std::int64_t i = 0; i < n; ++i) out[i] += w * quant::fp16_to_fp32(v[i]);
}

void add_scaled_f32(float* out, const float* v, float w, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] += w * v[i];
}

namespace {

// F16C rounds to nearest even and overflows to infinity like quant::fp32_to_fp16; only NaN
// payloads could come out differently, so 8 values holding a NaN take the scalar path.
__attribute__((target("avx2,f16c"))) void round_to_f16_f16c(float* x, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
            for (std::int64_t j = i; j < i + 8; ++j)
                x[j] = quant::fp16_to_fp32(quant::fp32_to_fp16(x[j]));
            continue;
        }
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)));
    }
    for (; i < n; ++i) x[i] = quant::fp16_to_fp32(quant::fp32_to_fp16(x[i]));
}

// The same conversion, kept as halves.
__attribute__((target("avx2,f16c"))) void to_f16_f16c(const float* x, std::uint16_t* out,
                                                      std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
            for (std::int64_t j = i; j < i + 8; ++j) out[j] = quant::fp32_to_fp16(x[j]);
            continue;
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                         _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; ++i) out[i] = quant::fp32_to_fp16(x[i]);
}

}  // namespace

void to_f16(const float* x, std::uint16_t* out, std::int64_t n) {
    if (has_f16c()) {
        to_f16_f16c(x, out, n);
        return;
    }
    for (std::int64_t i = 0; i < n; ++i) out[i] = quant::fp32_to_fp16(x[i]);
}

void round_to_f16(float* x, std::int64_t n) {
    if (has_f16c()) {
        round_to_f16_f16c(x, n);
        return;
    }
    for (std::int64_t i = 0; i < n; ++i) x[i] = quant::fp16_to_fp32(quant::fp32_to_fp16(x[i]));
}

// Two passes the compiler vectorizes (the plain loop, a compare and a dependent load per value,
// took ~150 us of a 128k vocabulary: as long as a tenth of a GPU decode step): the largest value
// over independent lanes, then the first index holding it. `v > m ? v : m` never takes a NaN,
// and max is exact in any order, so the result is the plain loop's.
std::int64_t argmax_first(const float* values, std::int64_t count) {
    constexpr std::size_t kLanes = 16;
    const float* p = values;
    const auto n = static_cast<std::size_t>(count);
    const std::size_t whole = n / kLanes * kLanes;
    float lane_max[kLanes];
    for (float& m : lane_max) m = -std::numeric_limits<float>::infinity();
    for (std::size_t i = 0; i < whole; i += kLanes)
        for (std::size_t j = 0; j < kLanes; ++j)
            lane_max[j] = p[i + j] > lane_max[j] ? p[i + j] : lane_max[j];
    float best = lane_max[0];
    for (float m : lane_max) best = m > best ? m : best;
    for (std::size_t i = whole; i < n; ++i) best = p[i] > best ? p[i] : best;
    // (when every value is -inf or NaN, best stays -inf: the first -inf is the answer)
    for (std::size_t i = 0; i < whole; i += kLanes) {
        bool hit = false;
        for (std::size_t j = 0; j < kLanes; ++j) hit |= p[i + j] == best;
        if (hit)
            for (std::size_t j = 0;; ++j)
                if (p[i + j] == best) return static_cast<std::int64_t>(i + j);
    }
    for (std::size_t i = whole; i < n; ++i)
        if (p[i] == best) return static_cast<std::int64_t>(i);
    return -1;
}

}  // namespace bitnet::kernels

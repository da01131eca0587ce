#include "bitnet/kernels/ops.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <immintrin.h>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/quantization/fp16.hpp"

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
        const float r = gate[i] > 0.0f ? gate[i] : 0.0f;
        const float a = r * r * up[i];
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

void softmax(float* x, std::int64_t n, float scale) {
    float max = -INFINITY;
    for (std::int64_t i = 0; i < n; ++i) {
        x[i] *= scale;
        max = std::max(max, x[i]);
    }
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += static_cast<double>(x[i]);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (std::int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void relu_squared_mul(float* x, const float* up, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        const float r = x[i] > 0.0f ? x[i] : 0.0f;
        x[i] = r * r * up[i];
    }
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

}  // namespace

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

void round_to_f16(float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) x[i] = quant::fp16_to_fp32(quant::fp32_to_fp16(x[i]));
}

}  // namespace bitnet::kernels

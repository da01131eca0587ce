#include "bitnet/kernels/ops.hpp"

#include <algorithm>
#include <cmath>

#include <immintrin.h>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::kernels {

void rmsnorm(const float* x, const float* weight, std::int64_t n, float eps, float* out) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
        sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (std::int64_t i = 0; i < n; ++i) {
        const float normalized = x[i] * scale;
        out[i] = weight != nullptr ? normalized * weight[i] : normalized;
    }
}

void rope_neox(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rope_dim,
               std::int64_t position, float freq_base) {
    const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(rope_dim));
    const std::int64_t half = rope_dim / 2;
    for (std::int64_t h = 0; h < n_heads; ++h) {
        float* v = x + h * head_dim;
        float theta = static_cast<float>(position);
        for (std::int64_t i = 0; i < half; ++i) {
            const float c = std::cos(theta), s = std::sin(theta);
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * c - x1 * s;
            v[i + half] = x0 * s + x1 * c;
            theta *= theta_scale;
        }
    }
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
                              float eps) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        const float r = gate[i] > 0.0f ? gate[i] : 0.0f;
        const float a = r * r * up[i];
        gate[i] = a;
        sum += static_cast<double>(a) * static_cast<double>(a);
    }
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (std::int64_t i = 0; i < n; ++i) {
        const float normalized = gate[i] * scale;
        gate[i] = weight != nullptr ? normalized * weight[i] : normalized;
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

#include "bitnet/kernels/ops.hpp"

#include <algorithm>
#include <cmath>

#include "bitnet/quantization/fp16.hpp"

namespace bitnet::kernels {

void rmsnorm(const float* x, const float* weight, std::int64_t n, float eps, float* out) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
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

void silu_mul(float* x, const float* up, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i])) * up[i];
}

void round_to_f16(float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) x[i] = quant::fp16_to_fp32(quant::fp32_to_fp16(x[i]));
}

}  // namespace bitnet::kernels

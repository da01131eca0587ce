// Q8_0 and Q4_0: 32-element blocks with one f16 scale in front (ggml-common.h).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::quant {
namespace {

constexpr std::int64_t kQ8_0Bytes = 34;
constexpr std::int64_t kQ4_0Bytes = 18;

}  // namespace

void quantize_q8_0(const float* in, std::int64_t n, std::uint8_t* out) {
    for (std::int64_t b = 0; b < n / kQK8_0; ++b) {
        const float* x = in + b * kQK8_0;
        std::uint8_t* block = out + b * kQ8_0Bytes;
        float amax = 0.0f;
        for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_fp16(block, d);
        for (int j = 0; j < kQK8_0; ++j) {
            block[2 + j] =
                static_cast<std::uint8_t>(static_cast<std::int8_t>(std::roundf(x[j] * id)));
        }
    }
}

void dequantize_q8_0(const std::uint8_t* in, std::int64_t n, float* out) {
    for (std::int64_t b = 0; b < n / kQK8_0; ++b) {
        const std::uint8_t* block = in + b * kQ8_0Bytes;
        const float d = load_fp16(block);
        for (int j = 0; j < kQK8_0; ++j) {
            out[b * kQK8_0 + j] = static_cast<float>(static_cast<std::int8_t>(block[2 + j])) * d;
        }
    }
}

void quantize_q4_0(const float* in, std::int64_t n, std::uint8_t* out) {
    for (std::int64_t b = 0; b < n / kQK4_0; ++b) {
        const float* x = in + b * kQK4_0;
        std::uint8_t* block = out + b * kQ4_0Bytes;
        // The signed value of largest magnitude maps to -8, so the sign of d follows it.
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < kQK4_0; ++j) {
            if (amax < std::fabs(x[j])) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_fp16(block, d);
        for (int j = 0; j < kQK4_0 / 2; ++j) {
            const float x0 = x[j] * id;
            const float x1 = x[j + kQK4_0 / 2] * id;
            const std::uint8_t q0 = static_cast<std::uint8_t>(
                std::min<std::int8_t>(15, static_cast<std::int8_t>(x0 + 8.5f)));
            const std::uint8_t q1 = static_cast<std::uint8_t>(
                std::min<std::int8_t>(15, static_cast<std::int8_t>(x1 + 8.5f)));
            block[2 + j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
        }
    }
}

void dequantize_q4_0(const std::uint8_t* in, std::int64_t n, float* out) {
    for (std::int64_t b = 0; b < n / kQK4_0; ++b) {
        const std::uint8_t* block = in + b * kQ4_0Bytes;
        const float d = load_fp16(block);
        for (int j = 0; j < kQK4_0 / 2; ++j) {
            const int x0 = (block[2 + j] & 0x0f) - 8;
            const int x1 = (block[2 + j] >> 4) - 8;
            out[b * kQK4_0 + j] = static_cast<float>(x0) * d;
            out[b * kQK4_0 + j + kQK4_0 / 2] = static_cast<float>(x1) * d;
        }
    }
}

}  // namespace bitnet::quant

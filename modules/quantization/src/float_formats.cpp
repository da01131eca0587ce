// F32, F16 and BF16: element-wise formats (block size 1).
#include <cstring>

#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::quant {

void quantize_f32(const float* in, std::int64_t n, std::uint8_t* out) {
    std::memcpy(out, in, static_cast<std::size_t>(n) * 4);
}

void dequantize_f32(const std::uint8_t* in, std::int64_t n, float* out) {
    std::memcpy(out, in, static_cast<std::size_t>(n) * 4);
}

void quantize_f16(const float* in, std::int64_t n, std::uint8_t* out) {
    for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t h = fp32_to_fp16(in[i]);
        std::memcpy(out + 2 * i, &h, 2);
    }
}

void dequantize_f16(const std::uint8_t* in, std::int64_t n, float* out) {
    for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        out[i] = fp16_to_fp32(h);
    }
}

void quantize_bf16(const float* in, std::int64_t n, std::uint8_t* out) {
    for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t h = fp32_to_bf16(in[i]);
        std::memcpy(out + 2 * i, &h, 2);
    }
}

void dequantize_bf16(const std::uint8_t* in, std::int64_t n, float* out) {
    for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        out[i] = bf16_to_fp32(h);
    }
}

}  // namespace bitnet::quant

// Activation quantization for the W1.58A8 product (GGUF_AND_FORMATS.md §4), exactly as
// bitnet.cpp's quantize_row_i8_s: per token row, absmax in double, scale a = (float)(127/amax),
// q = clamp(nearest_int(x*a), -128, 127) with round-half-to-even, and the row sum of q.
// The matmul output is then y = ((float)(D - S) / a) * s with D = sum(code*q), S = sum(q).
#pragma once

#include <cstdint>

namespace bitnet::quant {

struct ActivationScale {
    float scale;       // a = 127 / max(|x|), so x ≈ q / a
    std::int32_t sum;  // S = sum of q over the row
};

// AVX2 where the CPU has it (a decode step quantizes ~100 rows; scalar they took ~1 ms), the
// same bits as the scalar reference below for every input, NaN and infinities included.
ActivationScale quantize_activations_i8(const float* x, std::int64_t n, std::int8_t* q);
ActivationScale quantize_activations_i8_scalar(const float* x, std::int64_t n, std::int8_t* q);

// ggml's nearest_int: round half to even via the 1.5*2^23 trick (valid for |x| < 2^22).
inline int nearest_int(float x) {
    float shifted = x + 12582912.f;
    std::int32_t bits;
    static_assert(sizeof(bits) == sizeof(shifted));
    __builtin_memcpy(&bits, &shifted, 4);
    return (bits & 0x007fffff) - 0x00400000;
}

// y = ((float)D - (float)S) / a * s : the W1.58A8 output rule for one row.
inline float i2s_output(std::int32_t dot_codes, ActivationScale act, float weight_scale) {
    return (static_cast<float>(dot_codes) - static_cast<float>(act.sum)) / act.scale * weight_scale;
}

}  // namespace bitnet::quant

// IEEE half and bfloat16 conversions, bit-exact with ggml (round to nearest even; NaN stays NaN).
#pragma once

#include <cstdint>
#include <cstring>

namespace bitnet::quant {

inline float bits_to_float(std::uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline std::uint32_t float_to_bits(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    return bits;
}

// Exact: every half value is representable as a float.
inline float fp16_to_fp32(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1fu;
    std::uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));  // inf/nan
    if (exponent != 0) return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
    if (mantissa == 0) return bits_to_float(sign);  // signed zero
    // Subnormal half: value = mantissa * 2^-24, exactly representable as a normal float.
    float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
}

// Round to nearest, ties to even; overflow goes to infinity, NaN stays a quiet NaN.
inline std::uint16_t fp32_to_fp16(float f) {
    const std::uint32_t bits = float_to_bits(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
    const std::uint32_t abs_bits = bits & 0x7fffffffu;
    if (abs_bits > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);   // NaN
    if (abs_bits >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520
    if (abs_bits < 0x38800000u) {
        // Result is a half subnormal or zero: scale so that rounding happens at bit 0.
        // 0.5 * 2^-24 and below rounds to zero (ties to even: exactly 2^-25 -> 0).
        float magnitude = bits_to_float(abs_bits);
        float scaled = magnitude * 16777216.0f;  // units of 2^-24, exact
        // nearbyint with the default rounding mode (nearest even).
        std::uint32_t units = static_cast<std::uint32_t>(__builtin_nearbyintf(scaled));
        return static_cast<std::uint16_t>(sign | units);
    }
    // Normal half: rebias exponent, round the 13 dropped mantissa bits to nearest even.
    std::uint32_t rebased = abs_bits - (112u << 23);
    std::uint32_t rounded = rebased + 0x0fffu + ((rebased >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | (rounded >> 13));
}

inline float bf16_to_fp32(std::uint16_t h) {
    return bits_to_float(static_cast<std::uint32_t>(h) << 16);
}

inline std::uint16_t fp32_to_bf16(float f) {
    std::uint32_t u = float_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return static_cast<std::uint16_t>((u >> 16) | 64u);  // quiet NaN
    return static_cast<std::uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

// Half values stored inside block formats (unaligned, little-endian).
inline void store_fp16(std::uint8_t* dst, float value) {
    const std::uint16_t h = fp32_to_fp16(value);
    std::memcpy(dst, &h, 2);
}

inline float load_fp16(const std::uint8_t* src) {
    std::uint16_t h;
    std::memcpy(&h, src, 2);
    return fp16_to_fp32(h);
}

}  // namespace bitnet::quant

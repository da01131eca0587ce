// Scalar reference quantize/dequantize for each block format the engine implements.
// These are the ground truth every optimized kernel is tested against, and they are bit-exact
// with ggml's `quantize_row_*_ref` / `dequantize_row_*` (see ../specs/GGUF_AND_FORMATS.md §3–4).
// All functions take n elements (a multiple of the type's block size) as a flat sequence.
#pragma once

#include <cstdint>

namespace bitnet::quant {

// Block sizes and byte sizes of the formats below (also in the type table).
inline constexpr std::int64_t kQK8_0 = 32;
inline constexpr std::int64_t kQK4_0 = 32;
inline constexpr std::int64_t kQK_K = 256;
inline constexpr std::int64_t kI2SBlock = 128;         // x86 layout: 128 elements -> 32 bytes
inline constexpr std::uint64_t kI2STrailerBytes = 32;  // float32 scale + 28 bytes padding

void quantize_f32(const float* in, std::int64_t n, std::uint8_t* out);
void dequantize_f32(const std::uint8_t* in, std::int64_t n, float* out);
void quantize_f16(const float* in, std::int64_t n, std::uint8_t* out);
void dequantize_f16(const std::uint8_t* in, std::int64_t n, float* out);
void quantize_bf16(const float* in, std::int64_t n, std::uint8_t* out);
void dequantize_bf16(const std::uint8_t* in, std::int64_t n, float* out);

// Q8_0: {f16 d; i8 q[32]}, x = d*q, d = amax/127, q = roundf(x/d).
void quantize_q8_0(const float* in, std::int64_t n, std::uint8_t* out);
void dequantize_q8_0(const std::uint8_t* in, std::int64_t n, float* out);

// Q4_0: {f16 d; u8 qs[16]}, x = d*(nibble-8); element j<16 low nibble of qs[j], j>=16 high.
void quantize_q4_0(const float* in, std::int64_t n, std::uint8_t* out);
void dequantize_q4_0(const std::uint8_t* in, std::int64_t n, float* out);

// TQ2_0: {u8 qs[64]; f16 d}, 2-bit codes, element chunk*128 + k*32 + m at bits 2k of byte
// chunk*32 + m.
void quantize_tq2_0(const float* in, std::int64_t n, std::uint8_t* out);
void dequantize_tq2_0(const std::uint8_t* in, std::int64_t n, float* out);

// TQ1_0: {u8 qs[48]; u8 qh[4]; f16 d}, base-3 digits, 5 (or 4) per byte.
void quantize_tq1_0(const float* in, std::int64_t n, std::uint8_t* out);
void dequantize_tq1_0(const std::uint8_t* in, std::int64_t n, float* out);

// Codes (0..2, value d*(c-1)) and scale of one 256-element TQ2_0 / TQ1_0 block, for integer
// kernels that work on codes directly.
void tq2_0_block_codes(const std::uint8_t* block, std::uint8_t* codes);
void tq1_0_block_codes(const std::uint8_t* block, std::uint8_t* codes);
float tq2_0_block_scale(const std::uint8_t* block);
float tq1_0_block_scale(const std::uint8_t* block);

// Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d} — dequantize only.
void dequantize_q6_k(const std::uint8_t* in, std::int64_t n, float* out);

// IQ2_S: {f16 d; u8 qs[64]; u8 qh[8]; u8 scales[8]} with the 1024-entry grid — dequantize only.
void dequantize_iq2_s(const std::uint8_t* in, std::int64_t n, float* out);

// I2_S (bitnet.cpp, x86 layout): n/4 packed bytes of codes c in {0,1,2} (value (c-1)*s), then
// the float32 per-tensor scale s and 28 bytes of padding. `out` must hold n/4 + 32 bytes.
// Quantize: s = max|w|; c = 1 if |w| < 1e-6, else 2 for w > 0 and 0 for w < 0.
void quantize_i2_s(const float* in, std::int64_t n, std::uint8_t* out);
void dequantize_i2_s(const std::uint8_t* in, std::int64_t n, float* out);

// I2_S helpers for code that works on codes directly (kernels, validation, repacking).
// Code of element j (0-based within the flat tensor) in a packed I2_S buffer.
inline std::uint8_t i2s_code_at(const std::uint8_t* packed, std::int64_t j) {
    const std::int64_t block = j / kI2SBlock;
    const std::int64_t within = j % kI2SBlock;
    const std::uint8_t byte = packed[block * 32 + (within % 32)];
    return static_cast<std::uint8_t>((byte >> (6 - 2 * (within / 32))) & 3);
}
// Packs n codes (0..2) into n/4 bytes of I2_S x86 layout.
void pack_i2s_codes(const std::uint8_t* codes, std::int64_t n, std::uint8_t* packed);
// The per-tensor scale stored after the packed codes of an n-element tensor.
float i2s_scale(const std::uint8_t* tensor, std::int64_t n);

}  // namespace bitnet::quant

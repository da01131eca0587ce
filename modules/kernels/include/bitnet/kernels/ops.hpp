// Element-wise and attention primitives shared by the CPU backends, written to match ggml's
// CPU semantics where it matters for agreement with bitnet.cpp (sums in double for RMSNorm and
// softmax, RoPE angles by repeated float multiplication, halves rounded to nearest even).
#pragma once

#include <cstdint>

#include "bitnet/kernels/attention_order.hpp"

namespace bitnet::kernels {

// out = x / sqrt(mean(x^2) + eps) * weight   (weight may be nullptr: no scaling). The norms take
// the sum of squares in 8 consecutive pieces of the row, each a running sum in double, then the
// pieces' sums in order: threads can take a piece each and the bits stay those of one thread. (In
// double the float mean is that of ggml's single running sum except for astronomically rare
// rows.)
void rmsnorm(const float* x, const float* weight, std::int64_t n, float eps, float* out);

// NeoX-style rotary embedding in place on `n_heads` heads of `head_dim` values at `position`:
// dimension i is paired with i + rope_dim/2 and rotated by position * base^(-2i/rope_dim).
void rope_neox(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rope_dim,
               std::int64_t position, float freq_base);
// The same in two steps: a position's cos and sin (rope_dim / 2 each: float theta advanced by
// repeated multiplication, libm cos/sin), computed once for all heads and layers, then the
// rotation with them.
void rope_angles(std::int64_t position, std::int64_t rope_dim, float freq_base, float* cos,
                 float* sin);
void rope_neox_with(float* x, std::int64_t n_heads, std::int64_t head_dim, std::int64_t rope_dim,
                    const float* cos, const float* sin);

// In place: x = softmax(x * scale).
void softmax(float* x, std::int64_t n, float scale);

// x = relu(x)^2 * up  /  x = silu(x) * up
void relu_squared_mul(float* x, const float* up, std::int64_t n);
// One element of relu_squared_mul: every path computing BitNet's activation uses this (the same
// float operations, so the same bits).
inline float relu_squared_times(float gate, float up) {
    const float r = gate > 0.0f ? gate : 0.0f;
    return r * r * up;
}
void silu_mul(float* x, const float* up, std::int64_t n);
// The FFN's activation and sub-norm in one pass over gate and up: gate = rmsnorm(relu(gate)^2 *
// up) * weight, bit for bit what relu_squared_mul followed by rmsnorm gives (same operations,
// same order), without reading the activations back for the sum of squares.
// `spread_over_threads`: the row's pieces go to the OpenMP threads (decode: one row; the other
// cores would wait), with the same result.
void relu_squared_mul_rmsnorm(float* gate, const float* up, const float* weight, std::int64_t n,
                              float eps, bool spread_over_threads = false);

// Attention inner products over the KV cache. Eight interleaved partial sums (element i goes to
// lane i % 8), combined in a fixed order: the SIMD (F16C/AVX2) and the scalar versions give
// bit-identical results, so the result never depends on the machine.
float dot_f16_f32(const std::uint16_t* a, const float* b, std::int64_t n);
float dot_f32(const float* a, const float* b, std::int64_t n);
// out[i] += w * v[i]
void add_scaled_f16(float* out, const std::uint16_t* v, float w, std::int64_t n);
// The same over `count` rows `stride` elements apart (a head's keys or values in the cache):
// out[p] = dot_f16_f32(row p, b) and out += w[p] * row p for p in order, bit for bit as one row at
// a time, faster (independent rows side by side, out held in registers, rows prefetched).
void dot_f16_f32_rows(const std::uint16_t* rows, std::int64_t stride, std::int64_t count,
                      const float* b, std::int64_t n, float* out);
void add_scaled_f16_rows(float* out, const std::uint16_t* rows, std::int64_t stride, const float* w,
                         std::int64_t count, std::int64_t n);
void add_scaled_f32(float* out, const float* v, float w, std::int64_t n);
// Attention's value sum over `count` rows `stride` elements apart with weights w, in the order
// of kAttentionValueChunk (attention_order.hpp): out = sum of the chunks' sums, each chunk's rows
// added in order into zeros (add_scaled_*_rows' bits per chunk).
void attention_values_f16(float* out, const std::uint16_t* rows, std::int64_t stride,
                          const float* w, std::int64_t count, std::int64_t n);
void attention_values_f32(float* out, const float* rows, std::int64_t stride, const float* w,
                          std::int64_t count, std::int64_t n);

// The first index of the largest value (greedy decoding's rule): NaN is never the largest, and
// when every value is -inf or NaN the first -inf is; -1 when every value is NaN.
std::int64_t argmax_first(const float* values, std::int64_t n);

// Rounds each value to the nearest half (ties to even) and back: what a trip through an F16
// tensor does to it.
void round_to_f16(float* x, std::int64_t n);
// out[i] = quant::fp32_to_fp16(x[i]), bit for bit (F16C where the CPU has it).
void to_f16(const float* x, std::uint16_t* out, std::int64_t n);

}  // namespace bitnet::kernels

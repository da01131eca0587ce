// Attention of several query heads that share one KV head (grouped-query attention), over an
// F16 KV cache, in one pass over the cached keys and one over the values: each cached half is
// converted to float once for all the group's heads instead of once per head. That conversion
// and the arithmetic per row, more than the bytes, are what long contexts cost on a CPU (with the
// whole cache in L3 one head at a time ran no faster than from memory).
#pragma once

#include <cstdint>

namespace bitnet::kernels {

// Standard attention (scores, softmax, weighted sum of values) for `heads` query heads:
//   q       heads × n query values, head after head (already rounded to F16 where the caller
//           wants ggml's conversion of the query),
//   keys    row p of the KV head at keys + p * stride (p = 0 .. count - 1), n halves each,
//   values  the same for the values,
//   scores  scratch of heads × count floats,
//   out     heads × n results, head after head (overwritten).
// Every head gets the bits of the one-head path: dot_f16_f32 per position, softmax(scale), then
// the values in kAttentionValueChunk order (attention_order.hpp: add_scaled_f16 per position in
// order into each chunk's zeros, the chunks added in order; tested bit for bit against it).
void attention_heads_f16(const float* q, std::int64_t heads, const std::uint16_t* keys,
                         const std::uint16_t* values, std::int64_t stride, std::int64_t count,
                         std::int64_t n, float scale, float* scores, float* out);

}  // namespace bitnet::kernels

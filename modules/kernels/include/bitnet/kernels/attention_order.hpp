// The order of attention's value sums, shared by every backend (the CPU's attention_heads_f16
// and attention_values_*, and all CUDA attention paths, the fused decode step's included), so
// that they give the same bits.
#pragma once

namespace bitnet::kernels {

// out = sum over p of w[p] * value row p, for each output: the positions in chunks of
// kAttentionValueChunk from position 0; a chunk's products added in position order into a sum
// starting from 0, and the chunks' sums added in chunk order into `out` starting from 0. Up to
// kAttentionValueChunk positions this is plain position order; past it, a long context's chunks
// can be summed at once (by different GPU blocks) and still give one result.
inline constexpr int kAttentionValueChunk = 128;

}  // namespace bitnet::kernels

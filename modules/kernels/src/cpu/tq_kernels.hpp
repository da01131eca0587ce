// TQ2_0 / TQ1_0 rows times int8 activations (internal). The integer part — one exact dot per
// 256-element block, D_b = sum codes * q — has a scalar and an AVX2 version that must agree
// exactly; the float part after it (tq_row_output) is one function used by every backend, so
// the results are bit-identical to the reference whatever computed the integers.
#pragma once

#include <cstdint>

#include "bitnet/quantization/activation.hpp"
#include "bitnet/quantization/type_traits.hpp"

namespace bitnet::kernels::detail {

// dots[b] = sum_i code_i * q[b*256 + i] over the `blocks` blocks of `row` (codes 0..2).
void tq_block_dots_scalar(quant::TypeId type, const std::uint8_t* row, const std::int8_t* q,
                          std::int64_t blocks, std::int32_t* dots);
void tq_block_dots_avx2(quant::TypeId type, const std::uint8_t* row, const std::int8_t* q,
                        std::int64_t blocks, std::int32_t* dots);

// Several tokens, TQ2_0: dots[t][b] for the `tokens` activation rows q[t], each block's codes
// unpacked once for up to four of them (the same integers as tq_block_dots_avx2).
void tq2_block_dots_tokens_avx2(const std::uint8_t* row, const std::int8_t* const* q, int tokens,
                                std::int64_t blocks, std::int32_t* const* dots);
// The same for TQ1_0 (each block's base-3 digits extracted once for up to four tokens).
void tq1_block_dots_tokens_avx2(const std::uint8_t* row, const std::int8_t* const* q, int tokens,
                                std::int64_t blocks, std::int32_t* const* dots);

// Decode, TQ2_0: rows a and b at once (two weight streams per thread), each y as
// tq_row_output gives it (`act_scale`: the activations' scale a).
void tq2_rows_pair_avx2(const std::uint8_t* row_a, const std::uint8_t* row_b, const std::int8_t* q,
                        const std::int32_t* block_sums, std::int64_t blocks, float act_scale,
                        float* ya, float* yb);

// A TQ2_0 / TQ1_0 row's block scales d_b as floats (F16C: the exact conversion).
void tq_row_scales(quant::TypeId type, const std::uint8_t* row, std::int64_t blocks, float* scales);
// tq_row_output's rule with the block scales given: the same operations in the same order.
float tq_output(const float* scales, const std::int32_t* dots, const std::int32_t* block_sums,
                std::int64_t blocks, float act_scale);

// y = (sum_b d_b * (D_b - S_b)) / a: block scales d_b from the row, S_b = sum of q per block.
float tq_row_output(quant::TypeId type, const std::uint8_t* row, const std::int32_t* dots,
                    const std::int32_t* block_sums, std::int64_t blocks,
                    const quant::ActivationScale& act);

}  // namespace bitnet::kernels::detail

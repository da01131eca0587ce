// I2_S integer kernels (internal): D[t][r] = sum_k code(r, k) * q_t[k] for a range of weight
// rows and a set of activation rows (tokens). One weight row is unpacked once and used for a
// group of tokens, so prefill reads each weight once per group (a tiled GEMM) and decode is a
// GEMV over the same code. Results are exact integers: every variant must equal the reference.
#pragma once

#include <cstdint>

#include "bitnet/quantization/activation.hpp"

namespace bitnet::kernels::detail {

struct I2sProblem {
    const std::uint8_t* weights;  // row 0 of the range; rows are cols/4 bytes apart
    std::int64_t n_rows;          // weight rows in the range
    std::int64_t cols;            // K, a multiple of 128
    const std::int8_t* q;  // n_tokens x cols activations (layout chosen by the kernel's prepare)
    std::int64_t n_tokens;
    std::int32_t* out;  // out[t * out_stride + r]
    std::int64_t out_stride;
};

// Activation layout each kernel wants: the VNNI kernel interleaves pairs of 128-blocks; the AMX
// kernel takes those rows rearranged into tiles of 16 tokens (amx_kernels.hpp).
// Vnni256: one token on 256-bit AVX-512 VNNI + GFNI (decode), several as Avx2; both take the
// activations in their plain order, as Avx2 does.
enum class I2sKernel { Generic, Avx2, Avx512Vnni, Amx, Vnni256 };

// The faster variant on this CPU for one token (decode) or several (prefill), measured once;
// AMX tiles (where usable) from 16 tokens on.
I2sKernel best_i2s_kernel(std::int64_t tokens);
// `kernel`, or the VNNI kernel where AMX does not apply (fewer than 16 tokens, or K not a
// multiple of 256).
I2sKernel i2s_kernel_for(I2sKernel kernel, std::int64_t n_tokens, std::int64_t cols);
const char* i2s_kernel_name(I2sKernel kernel);
// Rearranges one token's K activations into the kernel's layout (dst has K bytes); for AMX, the
// VNNI layout, which amx_arrange_activations then turns into tiles.
void i2s_prepare_activations(I2sKernel kernel, const std::int8_t* q, std::int64_t cols,
                             std::int8_t* dst);
void i2s_dot(I2sKernel kernel, const I2sProblem& p);

// The FFN's gate and up outputs of n rows for one token, scaled and through BitNet's activation:
// y[i] = relu_squared_times(i2s_output(gate[i]) [* gate_scale], i2s_output(up[i]) [* up_scale])
// (a scale of 1 is skipped, as everywhere). AVX2 where the CPU has it (8 divisions per
// instruction), the same IEEE operations either way, so the same bits.
struct GateUpScales {
    float gate_weight, up_weight;  // the I2_S tensors' own scales
    float gate, up;                // the optional per-tensor scales (1: none)
};
void i2s_relu_squared_outputs(const std::int32_t* gate, const std::int32_t* up, std::int64_t n,
                              quant::ActivationScale act, const GateUpScales& scales, float* y);

}  // namespace bitnet::kernels::detail

// I2_S integer kernels (internal): D[t][r] = sum_k code(r, k) * q_t[k] for a range of weight
// rows and a set of activation rows (tokens). One weight row is unpacked once and used for a
// group of tokens, so prefill reads each weight once per group (a tiled GEMM) and decode is a
// GEMV over the same code. Results are exact integers: every variant must equal the reference.
#pragma once

#include <cstdint>

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
enum class I2sKernel { Generic, Avx2, Avx512Vnni, Amx };

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

}  // namespace bitnet::kernels::detail

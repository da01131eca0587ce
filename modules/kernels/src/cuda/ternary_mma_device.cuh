// Device pieces of the ternary tensor-core products (ternary_mma.hpp), shared by the product
// kernels (ternary_mma.cu) and the fused decode step (decode_step.cu): the mma instruction, the
// A fragments of a packed 128-column chunk, the B fragments of a token's activations and the
// CPU's float rule applied to the exact integer results in the epilogue.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ternary_mma.hpp"

namespace bitnet::kernels::cuda::mma_device {

constexpr int kWarp = 32;

__device__ __forceinline__ void mma_s8(int (&d)[4], unsigned a0, unsigned a1, unsigned a2,
                                       unsigned a3, unsigned b0, unsigned b1) {
    asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned word_of(const uint4& v, int s) {
    return s == 0 ? v.x : s == 1 ? v.y : s == 2 ? v.z : v.w;
}

// A thread's B fragments of one 128-column chunk: 32 bytes of its token per 8-token tile.
template <int NT>
__device__ __forceinline__ void load_activations(const std::int8_t* __restrict__ q, int q_stride,
                                                 int chunk, int tok_base, int n, int g, int t,
                                                 uint4 (&x)[NT][2]) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
        const int tok = tok_base + nt * 8 + g;
        x[nt][0] = x[nt][1] = make_uint4(0, 0, 0, 0);
        if (tok < n) {
            const uint4* p = reinterpret_cast<const uint4*>(
                q + static_cast<std::size_t>(tok) * q_stride + chunk * kMmaChunk + t * 32);
            x[nt][0] = __ldg(p);
            x[nt][1] = __ldg(p + 1);
        }
    }
}

// One 128-column chunk: A fragments from `codes` (one uint4 per block), unpacked one k-step at a
// time (fewer live registers), times the B fragments `x`.
template <int MR, int NT>
__device__ __forceinline__ void chunk_product(const uint4 (&codes)[MR], const uint4 (&x)[NT][2],
                                              int (&acc)[MR][NT][4]) {
#pragma unroll
    for (int s = 0; s < 4; ++s)
#pragma unroll
        for (int m = 0; m < MR; ++m) {
            const unsigned w = word_of(codes[m], s);
            const unsigned a0 = w & 0x03030303u, a1 = (w >> 2) & 0x03030303u,
                           a2 = (w >> 4) & 0x03030303u, a3 = (w >> 6) & 0x03030303u;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                const uint4& lo = x[nt][s / 2];
                const unsigned b0 = s % 2 == 0 ? lo.x : lo.z, b1 = s % 2 == 0 ? lo.y : lo.w;
                mma_s8(acc[m][nt], a0, a1, a2, a3, b0, b1);
            }
        }
}

// The CPU's W1.58A8 rule on an exact integer dot product.
__device__ __forceinline__ float ternary_result(int dot, float act_scale, float w_scale) {
    return __fmul_rn(__fdiv_rn(static_cast<float>(dot), act_scale), w_scale);
}

// (act_scales / act_sums are not __restrict__: the fused decode step passes shared memory,
// which must not be read through the read-only global path.)
template <int MR, int NT>
__device__ __forceinline__ void write_results(const int (&acc)[MR][NT][4], int b0, int tok_base,
                                              int g, int t, int n, const float* act_scales,
                                              const int* act_sums, const MmaEpilogue& epi) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            // Accumulator i of a thread: row g (+8 for i >= 2), token 2t (+1 for odd i).
            const int tok = tok_base + nt * 8 + t * 2 + (i & 1);
            if (tok >= n) continue;
            const int r = g + (i >= 2 ? 8 : 0);
            const float a = act_scales[tok];
            const int sum = act_sums[tok];
            if (epi.kind == MmaOutput::ReluSquaredPair) {
                if constexpr (MR == 2) {
                    const int row = b0 / 2 * kMmaBlockRows + r;
                    const int rows = epi.seg[0].rows;
                    if (row >= rows) continue;
                    const float gv = ternary_result(acc[0][nt][i] - sum, a, epi.seg[0].scale);
                    const float uv = ternary_result(acc[1][nt][i] - sum, a, epi.seg[1].scale);
                    const float rl = gv > 0.0f ? gv : 0.0f;
                    epi.seg[0].out[static_cast<std::size_t>(tok) * rows + row] =
                        __fmul_rn(__fmul_rn(rl, rl), uv);
                }
                continue;
            }
#pragma unroll
            for (int m = 0; m < MR; ++m) {
                const int block = b0 + m;
                int s = 0;
                for (int k = 1; k < epi.count; ++k)
                    if (block >= epi.seg[k].first_block) s = k;
                const int first = s == 0
                                      ? epi.seg[0].first_block
                                      : (s == 1 ? epi.seg[1].first_block : epi.seg[2].first_block);
                const int rows =
                    s == 0 ? epi.seg[0].rows : (s == 1 ? epi.seg[1].rows : epi.seg[2].rows);
                const float scale =
                    s == 0 ? epi.seg[0].scale : (s == 1 ? epi.seg[1].scale : epi.seg[2].scale);
                float* out = s == 0 ? epi.seg[0].out : (s == 1 ? epi.seg[1].out : epi.seg[2].out);
                const int row = (block - first) * kMmaBlockRows + r;
                if (row >= rows) continue;
                const float y = ternary_result(acc[m][nt][i] - sum, a, scale);
                float* o = out + static_cast<std::size_t>(tok) * rows + row;
                // (__ldcg: read past L1, which the fused decode step's other blocks do not
                // update when they wrote this residual row in an earlier phase)
                *o = epi.kind == MmaOutput::AddInto ? __fadd_rn(__ldcg(o), y) : y;
            }
        }
}

}  // namespace bitnet::kernels::cuda::mma_device

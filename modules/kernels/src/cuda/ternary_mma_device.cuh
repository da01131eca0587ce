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

// The same with unsigned A bytes (0..255): the decode step's in-place codes (4^s times 0..2).
__device__ __forceinline__ void mma_u8s8(int (&d)[4], unsigned a0, unsigned a1, unsigned a2,
                                         unsigned a3, unsigned b0, unsigned b1) {
    asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
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

// One 128-column chunk: A fragments from `codes` (one uint4 per block: word r is register r of
// every k-step, ternary_mma_pack.cpp), unpacked one k-step at a time (fewer live registers),
// times the B fragments `x`.
template <int MR, int NT>
__device__ __forceinline__ void chunk_product(const uint4 (&codes)[MR], const uint4 (&x)[NT][2],
                                              int (&acc)[MR][NT][4]) {
#pragma unroll
    for (int s = 0; s < 4; ++s)
#pragma unroll
        for (int m = 0; m < MR; ++m) {
            const unsigned a0 = (codes[m].x >> (2 * s)) & 0x03030303u,
                           a1 = (codes[m].y >> (2 * s)) & 0x03030303u,
                           a2 = (codes[m].z >> (2 * s)) & 0x03030303u,
                           a3 = (codes[m].w >> (2 * s)) & 0x03030303u;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                const uint4& lo = x[nt][s / 2];
                const unsigned b0 = s % 2 == 0 ? lo.x : lo.z, b1 = s % 2 == 0 ? lo.y : lo.w;
                mma_s8(acc[m][nt], a0, a1, a2, a3, b0, b1);
            }
        }
}

// One token's chunk with the codes left in place: k-step s's registers are the words masked at
// bits 2s (4^s times the codes, unsigned), one instruction each instead of a shift and a mask.
// Each k-step adds into its own accumulators (`scaled[s]`, exact multiples of 4^s);
// in_place_dots() scales them back.
template <int MR>
__device__ __forceinline__ void chunk_product_in_place(const uint4 (&codes)[MR],
                                                       const uint4 (&x)[2],
                                                       int (&scaled)[4][MR][4]) {
#pragma unroll
    for (int s = 0; s < 4; ++s)
#pragma unroll
        for (int m = 0; m < MR; ++m) {
            const unsigned mask = 0x03030303u << (2 * s);
            const uint4& lo = x[s / 2];
            mma_u8s8(scaled[s][m], codes[m].x & mask, codes[m].y & mask, codes[m].z & mask,
                     codes[m].w & mask, s % 2 == 0 ? lo.x : lo.z, s % 2 == 0 ? lo.y : lo.w);
        }
}

// The exact dots of chunk_product_in_place's accumulators (arithmetic shifts of exact multiples).
template <int MR>
__device__ __forceinline__ void in_place_dots(const int (&scaled)[4][MR][4], int (&acc)[MR][1][4]) {
#pragma unroll
    for (int m = 0; m < MR; ++m)
#pragma unroll
        for (int i = 0; i < 4; ++i)
            acc[m][0][i] = scaled[0][m][i] + (scaled[1][m][i] >> 2) + (scaled[2][m][i] >> 4) +
                           (scaled[3][m][i] >> 6);
}

// The CPU's W1.58A8 rule on an exact integer dot product.
__device__ __forceinline__ float ternary_result(int dot, float act_scale, float w_scale) {
    return __fmul_rn(__fdiv_rn(static_cast<float>(dot), act_scale), w_scale);
}

// A thread's finished results: for each of its MR blocks (b0, b0 + 1, ...), NV values at row
// r[v] of the block and token tok[v]. Every load (token scales and sums, the AddInto targets'
// current values) is issued before the first store: stores through `out` could alias those
// addresses for all the compiler knows, so interleaving them would make each value wait a full
// memory round trip (32 values per thread: ~20 us per product).
template <int MR, int NV>
__device__ __forceinline__ void finish_results(const int (&dot)[MR][NV], int b0, const int (&r)[NV],
                                               const int (&tok)[NV], int n,
                                               const float* __restrict__ act_scales,
                                               const int* __restrict__ act_sums,
                                               const MmaEpilogue& epi) {
    float a[NV];
    int sum[NV];
#pragma unroll
    for (int v = 0; v < NV; ++v) {
        a[v] = tok[v] < n ? act_scales[tok[v]] : 1.0f;
        sum[v] = tok[v] < n ? act_sums[tok[v]] : 0;
    }
    if (epi.kind == MmaOutput::ReluSquaredPair) {
        if constexpr (MR == 2) {
            const int rows = epi.seg[0].rows;
#pragma unroll
            for (int v = 0; v < NV; ++v) {
                const int row = b0 / 2 * kMmaBlockRows + r[v];
                if (tok[v] >= n || row >= rows) continue;
                const float gv = ternary_result(dot[0][v] - sum[v], a[v], epi.seg[0].scale);
                const float uv = ternary_result(dot[1][v] - sum[v], a[v], epi.seg[1].scale);
                const float rl = gv > 0.0f ? gv : 0.0f;
                epi.seg[0].out[static_cast<std::size_t>(tok[v]) * rows + row] =
                    __fmul_rn(__fmul_rn(rl, rl), uv);
            }
        }
        return;
    }
    float* dst[MR][NV];
    float y[MR][NV];
#pragma unroll
    for (int m = 0; m < MR; ++m) {
        const int block = b0 + m;
        int s = 0;
        for (int k = 1; k < epi.count; ++k)
            if (block >= epi.seg[k].first_block) s = k;
        const MmaSegment& seg = s == 0 ? epi.seg[0] : (s == 1 ? epi.seg[1] : epi.seg[2]);
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            const int row = (block - seg.first_block) * kMmaBlockRows + r[v];
            const bool inside = tok[v] < n && row < seg.rows;
            dst[m][v] =
                inside ? seg.out + static_cast<std::size_t>(tok[v]) * seg.rows + row : nullptr;
            y[m][v] = ternary_result(dot[m][v] - sum[v], a[v], seg.scale);
        }
    }
    // (__ldcg: each residual value is read once, from L2 where the previous kernel left it;
    // keeping it out of L1 leaves L1 to the activations the warps share.)
    if (epi.kind == MmaOutput::AddInto) {
#pragma unroll
        for (int m = 0; m < MR; ++m)
#pragma unroll
            for (int v = 0; v < NV; ++v)
                if (dst[m][v] != nullptr) y[m][v] = __fadd_rn(__ldcg(dst[m][v]), y[m][v]);
    }
#pragma unroll
    for (int m = 0; m < MR; ++m)
#pragma unroll
        for (int v = 0; v < NV; ++v)
            if (dst[m][v] != nullptr) *dst[m][v] = y[m][v];
}

// All of a warp's accumulators (MR blocks x NT 8-token tiles): accumulator i of a thread is row
// g (+8 for i >= 2) and token 2t (+1 for odd i) of its tile.
template <int MR, int NT>
__device__ __forceinline__ void write_results(const int (&acc)[MR][NT][4], int b0, int tok_base,
                                              int g, int t, int n, const float* act_scales,
                                              const int* act_sums, const MmaEpilogue& epi) {
    int dot[MR][NT * 4], r[NT * 4], tok[NT * 4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            r[nt * 4 + i] = g + (i >= 2 ? 8 : 0);
            tok[nt * 4 + i] = tok_base + nt * 8 + t * 2 + (i & 1);
#pragma unroll
            for (int m = 0; m < MR; ++m) dot[m][nt * 4 + i] = acc[m][nt][i];
        }
    finish_results<MR, NT * 4>(dot, b0, r, tok, n, act_scales, act_sums, epi);
}

}  // namespace bitnet::kernels::cuda::mma_device

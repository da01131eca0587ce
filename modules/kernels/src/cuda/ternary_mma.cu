// Device side of ternary_mma.hpp. A warp owns two 16-row blocks (32 rows) and 8 or 32 tokens;
// per 128-column chunk it loads one uint4 of codes per block and lane (512 contiguous bytes per
// block), turns each word into four A fragment registers with a shift and a mask, loads its
// token's 32 activation bytes (B fragments for the 4 k-steps) and issues 4 mma per block and
// 8-token tile. Two launch shapes:
//  - decode (n <= 32): the 16 warps of a block share the same 32 rows and split the chunks among
//    them (K split), so a 2560-wide row is read by 16 warps at once; integer partial sums are
//    added through shared memory (exact, so the order does not matter);
//  - GEMM (n > 32): 4 warps per block on 4 different row pairs, 32 tokens each; the activation
//    tile is shared through L1.
#include <cuda_runtime.h>

#include "launch_control.cuh"
#include "ternary_mma.hpp"

namespace bitnet::kernels::cuda {
namespace {

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

template <int MR, int NT>
__device__ __forceinline__ void write_results(const int (&acc)[MR][NT][4], int b0, int tok_base,
                                              int g, int t, int n,
                                              const float* __restrict__ act_scales,
                                              const int* __restrict__ act_sums,
                                              const MmaEpilogue& epi) {
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
                *o = epi.kind == MmaOutput::AddInto ? __fadd_rn(*o, y) : y;
            }
        }
}

// WARPS warps per block; KSPLIT > 1: they share one row pair and split the chunks; KSPLIT == 1:
// each has its own row pair. U chunks are loaded before any is used (loads in flight).
template <int MR, int NT, int WARPS, int KSPLIT, int U>
__global__ void __launch_bounds__(WARPS* kWarp)
    ternary_mma_kernel(const uint4* __restrict__ w, int blocks, int chunks,
                       const std::int8_t* __restrict__ q, const float* __restrict__ act_scales,
                       const int* __restrict__ act_sums, int n, MmaEpilogue epi) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int g = lane / 4, t = lane % 4;
    const int pair =
        KSPLIT > 1 ? static_cast<int>(blockIdx.x) : static_cast<int>(blockIdx.x) * WARPS + warp;
    const int b0 = pair * MR;
    const int tok_base = static_cast<int>(blockIdx.y) * NT * 8;
    const int q_stride = chunks * kMmaChunk;
    int acc[MR][NT][4];
#pragma unroll
    for (int m = 0; m < MR; ++m)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[m][nt][i] = 0;
    const int c_begin = KSPLIT > 1 ? chunks * warp / KSPLIT : 0;
    const int c_end = b0 < blocks ? (KSPLIT > 1 ? chunks * (warp + 1) / KSPLIT : chunks) : c_begin;
    uint4 codes[U][MR];
    auto fetch = [&](int c) {
#pragma unroll
        for (int u = 0; u < U; ++u)
#pragma unroll
            for (int m = 0; m < MR; ++m)
                codes[u][m] =
                    c + u < c_end
                        ? __ldg(w + (static_cast<std::size_t>(b0 + m) * chunks + c + u) * kWarp +
                                lane)
                        : make_uint4(0, 0, 0, 0);
    };
    // The weights do not depend on the previous kernel: their first loads go out before waiting
    // for it (programmatic dependent launch; launch_control.cuh).
    fetch(c_begin);
    pdl_wait();
    pdl_trigger();
    for (int c = c_begin; c < c_end; c += U) {
        if (c != c_begin) fetch(c);
        // Every chunk's activations requested before the first product uses them.
        uint4 x[U][NT][2];
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (c + u < c_end) load_activations<NT>(q, q_stride, c + u, tok_base, n, g, t, x[u]);
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (c + u < c_end) chunk_product<MR, NT>(codes[u], x[u], acc);
    }
    if constexpr (KSPLIT > 1) {
        // The warps' integer partial sums added pairwise through shared memory (exact in any
        // order; no atomics, which serialize on the shared addresses).
        constexpr int kValues = MR * NT * 4;
        __shared__ int partial[KSPLIT / 2][kValues][kWarp];
        for (int half = KSPLIT / 2; half >= 1; half /= 2) {
            if (warp >= half && warp < 2 * half) {
#pragma unroll
                for (int m = 0; m < MR; ++m)
#pragma unroll
                    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                        for (int i = 0; i < 4; ++i)
                            partial[warp - half][(m * NT + nt) * 4 + i][lane] = acc[m][nt][i];
            }
            __syncthreads();
            if (warp < half) {
#pragma unroll
                for (int m = 0; m < MR; ++m)
#pragma unroll
                    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                        for (int i = 0; i < 4; ++i)
                            acc[m][nt][i] += partial[warp][(m * NT + nt) * 4 + i][lane];
            }
            __syncthreads();
        }
        if (warp > 0) return;
    }
    if (b0 >= blocks) return;
    write_results<MR, NT>(acc, b0, tok_base, g, t, n, act_scales, act_sums, epi);
}

}  // namespace

void launch_ternary_mma(const unsigned* w, int blocks, int padded_cols, const std::int8_t* q,
                        const float* act_scales, const int* act_sums, int n,
                        const MmaEpilogue& epilogue, void* stream) {
    const auto* codes = reinterpret_cast<const uint4*>(w);
    const int chunks = padded_cols / kMmaChunk;
    const int pairs = blocks / kMmaPairBlocks;
    // Decode: 16 warps split a row pair's chunks, each with all of its (up to 4) chunks' loads
    // issued at once: a whole matrix is in flight in about one memory latency.
    if (n <= 8) {
        launch(ternary_mma_kernel<2, 1, 16, 16, 4>, dim3(pairs, 1), 16 * kWarp, 0, stream, codes,
               blocks, chunks, q, act_scales, act_sums, n, epilogue);
    } else if (n <= 32) {
        launch(ternary_mma_kernel<2, 4, 8, 8, 2>, dim3(pairs, 1), 8 * kWarp, 0, stream, codes,
               blocks, chunks, q, act_scales, act_sums, n, epilogue);
    } else {
        launch(ternary_mma_kernel<2, 4, 4, 1, 2>, dim3((pairs + 3) / 4, (n + 31) / 32), 4 * kWarp,
               0, stream, codes, blocks, chunks, q, act_scales, act_sums, n, epilogue);
    }
}

}  // namespace bitnet::kernels::cuda

// Device side of ternary_mma.hpp. A warp owns two 16-row blocks (32 rows) and 8 or 32 tokens;
// per 128-column chunk it loads one uint4 of codes per block and lane (512 contiguous bytes per
// block), turns each word into four A fragment registers (a mask; a shift too for more than one
// 8-token tile), loads its token's 32 activation bytes (B fragments for the 4 k-steps) and
// issues 4 mma per block and 8-token tile. Two launch shapes:
//  - decode (n <= 32): the 16 warps of a block share the same 32 rows and split the chunks among
//    them (K split), so a 2560-wide row is read by 16 warps at once; integer partial sums are
//    added through shared memory (exact, so the order does not matter);
//  - GEMM (n > 32): 4 warps per block on 4 different row pairs, 32 tokens each; the activation
//    tile is shared through L1.
#include <cuda_runtime.h>

#include "launch_control.cuh"
#include "ternary_mma.hpp"
#include "ternary_mma_device.cuh"

namespace bitnet::kernels::cuda {
namespace {

using namespace mma_device;

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
    int scaled[4][MR][4] = {};  // one 8-token tile: chunk_product_in_place's accumulators
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
        for (int u = 0; u < U; ++u) {
            if (c + u >= c_end) continue;
            if constexpr (NT == 1)  // (fewer instructions; up to 8 rows are latency bound)
                chunk_product_in_place<MR>(codes[u], x[u][0], scaled);
            else
                chunk_product<MR, NT>(codes[u], x[u], acc);
        }
    }
    if constexpr (NT == 1) in_place_dots<MR>(scaled, acc);
    if constexpr (KSPLIT > 1) {
        // Every warp's integer partial sums go to shared memory (exact in any order); then the
        // results are finished by NT * 2 warps at once, warp w taking tile w / 2 and its rows
        // g (w even) or g + 8 (w odd) of both blocks: a quarter of the stores and loads each
        // instead of all of them in one warp.
        constexpr int kValues = MR * NT * 4;
        static_assert(NT * 2 <= WARPS, "a warp per tile half");
        __shared__ int partial[KSPLIT][kValues][kWarp];
#pragma unroll
        for (int m = 0; m < MR; ++m)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int i = 0; i < 4; ++i)
                    partial[warp][(m * NT + nt) * 4 + i][lane] = acc[m][nt][i];
        __syncthreads();
        if (warp >= NT * 2 || b0 >= blocks) return;
        const int nt = warp / 2, half = warp % 2;
        int dot[MR][2], r[2], tok[2];
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            r[j] = g + 8 * half;
            tok[j] = tok_base + nt * 8 + t * 2 + j;
#pragma unroll
            for (int m = 0; m < MR; ++m) {
                const int value = (m * NT + nt) * 4 + 2 * half + j;
                int total = 0;
#pragma unroll
                for (int k = 0; k < KSPLIT; ++k) total += partial[k][value][lane];
                dot[m][j] = total;
            }
        }
        finish_results<MR, 2>(dot, b0, r, tok, n, act_scales, act_sums, epi);
    } else {
        if (b0 >= blocks) return;
        write_results<MR, NT>(acc, b0, tok_base, g, t, n, act_scales, act_sums, epi);
    }
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

// Kernels of gpu_layer_kernels.hpp. Where the CPU's order of operations decides rounding it is
// kept (rmsnorm sums in double, products and sums rounded separately, 8-lane attention dots
// reduced pairwise, V sums in the order of attention_order.hpp), so the GPU follows the CPU
// backend's numbers closely: random ternary models amplify any rounding difference through the
// int8 activation quantization (tests/gpu checks greedy tokens and logits against the CPU).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "activation_scale.cuh"
#include "block_reduce.cuh"
#include "cuda_memory.hpp"
#include "gpu_layer_kernels.hpp"
#include "launch_control.cuh"

namespace bitnet::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kNormThreads = 1024;

// 1 / sqrt(mean(x^2) + eps) as the CPU computes it (sum of squares in double).
__device__ float rms_scale(const float* xr, int cols, float eps, double* shared) {
    double s = 0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) s += static_cast<double>(xr[i]) * xr[i];
    const double total = block_sum(s, shared);
    const float mean = static_cast<float>(total / cols);
    return __fdiv_rn(1.0f, sqrtf(__fadd_rn(mean, eps)));
}

__global__ void embed_rows(const __half* emb, const int* tokens, int hidden, float* x) {
    pdl_wait();
    pdl_trigger();
    const __half* row = emb + static_cast<std::size_t>(tokens[blockIdx.x]) * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        x[static_cast<std::size_t>(blockIdx.x) * hidden + i] = __half2float(row[i]);
}

// One block per row, one pass over memory: each thread keeps its first Per values in registers
// (rows up to Per * Threads wide; wider rows re-read the rest). The loops over the held values
// are branch-free: values past the row are zero, and only the stores check the padded width.
// Block sizes (H100, 2b4t): a decode step's few rows want large blocks (1024 threads: x32 after
// 512 tokens 8,235 tok/s, 256 threads: 7,988), a prefill's many rows small ones (pp512 30,770
// with 1024, 31,949 with 256).
constexpr int kManyRows = 64;  // from here on the small blocks

template <int Threads, int Per>
__global__ void __launch_bounds__(Threads)
    rmsnorm_quantize(const float* x, const float* w, int cols, int padded, float eps,
                     std::int8_t* q, float* scales, int* sums) {
    pdl_wait();
    pdl_trigger();
    __shared__ double shared[32];
    __shared__ float reduce[32];
    __shared__ int sum_reduce[32];
    const float* xr = x + static_cast<std::size_t>(blockIdx.x) * cols;
    constexpr int kNormPer = Per;
    constexpr int stride = Threads, held = kNormPer * stride;
    float v[kNormPer];
    double s = 0;
#pragma unroll
    for (int j = 0; j < kNormPer; ++j) {
        const int i = threadIdx.x + j * stride;
        v[j] = i < cols ? xr[i] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kNormPer; ++j) {
        if (threadIdx.x + j * stride >= cols) break;  // (double converts and adds are slow)
        s += static_cast<double>(v[j]) * v[j];
    }
    for (int i = held + threadIdx.x; i < cols; i += stride) s += static_cast<double>(xr[i]) * xr[i];
    const double total = block_sum(s, shared);
    const float mean = static_cast<float>(total / cols);
    const float scale = __fdiv_rn(1.0f, sqrtf(__fadd_rn(mean, eps)));
    float m = 0.0f;
#pragma unroll
    for (int j = 0; j < kNormPer; ++j) {
        const int i = threadIdx.x + j * stride;
        v[j] = i < cols ? __fmul_rn(__fmul_rn(v[j], scale), w[min(i, cols - 1)]) : 0.0f;
        m = fmaxf(m, fabsf(v[j]));
    }
    for (int i = held + threadIdx.x; i < cols; i += stride)
        m = fmaxf(m, fabsf(__fmul_rn(__fmul_rn(xr[i], scale), w[i])));
    for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if ((threadIdx.x & 31) == 0) reduce[threadIdx.x / 32] = m;
    __syncthreads();
    m = 0.0f;
    for (int k = 0; k < static_cast<int>(blockDim.x / 32); ++k) m = fmaxf(m, reduce[k]);
    const float a = activation_scale(m);
    if (threadIdx.x == 0) scales[blockIdx.x] = a;
    std::int8_t* qr = q + static_cast<std::size_t>(blockIdx.x) * padded;
    auto quantized = [a](float y) { return max(-128, min(127, __float2int_rn(__fmul_rn(y, a)))); };
    int sum = 0;
#pragma unroll
    for (int j = 0; j < kNormPer; ++j) {
        const int i = threadIdx.x + j * stride;
        const int c = quantized(v[j]);  // (0 past the row)
        if (i < padded) qr[i] = static_cast<std::int8_t>(c);
        sum += c;
    }
    for (int i = held + threadIdx.x; i < padded; i += stride) {
        const int c = i < cols ? quantized(__fmul_rn(__fmul_rn(xr[i], scale), w[i])) : 0;
        qr[i] = static_cast<std::int8_t>(c);
        sum += c;
    }
    for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if ((threadIdx.x & 31) == 0) sum_reduce[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        int all = 0;
        for (int k = 0; k < static_cast<int>(blockDim.x / 32); ++k) all += sum_reduce[k];
        sums[blockIdx.x] = all;
    }
}

__global__ void rmsnorm_half(const float* x, const float* w, int cols, float eps, __half* out) {
    pdl_wait();
    pdl_trigger();
    __shared__ double shared[32];
    const float* xr = x + static_cast<std::size_t>(blockIdx.x) * cols;
    const float scale = rms_scale(xr, cols, eps, shared);
    __half* o = out + static_cast<std::size_t>(blockIdx.x) * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
        o[i] = __float2half_rn(__fmul_rn(__fmul_rn(xr[i], scale), w[i]));
}

// cos/sin tables computed by the host exactly as the CPU does (same float angles, same libm), so
// the rotation is bit-identical to the CPU backend's.
__global__ void rope_and_store(float* q, const float* k, const float* v, RowPlaces rows,
                               HeadShape shape, const float* cos_table, const float* sin_table,
                               KvLayer kv) {
    pdl_wait();
    pdl_trigger();
    const int t = blockIdx.x;
    const int pos = rows.positions[t];
    const int hd = shape.head_dim, half_dim = shape.rope_dim / 2;
    const int q_dim = shape.heads * hd, kv_dim = shape.kv_heads * hd;
    const std::size_t at = static_cast<std::size_t>(rows.seqs[t]) * kv.seq_stride +
                           static_cast<std::size_t>(pos) * kv_dim;
    __half* kc = reinterpret_cast<__half*>(kv.k) + at;
    __half* vc = reinterpret_cast<__half*>(kv.v) + at;
    for (int j = threadIdx.x; j < (shape.heads + shape.kv_heads) * half_dim; j += blockDim.x) {
        const int head = j / half_dim, i = j % half_dim;
        const float c = cos_table[static_cast<std::size_t>(pos) * half_dim + i];
        const float s = sin_table[static_cast<std::size_t>(pos) * half_dim + i];
        if (head < shape.heads) {
            float* h = q + static_cast<std::size_t>(t) * q_dim + head * hd;
            const float x0 = h[i], x1 = h[i + half_dim];
            h[i] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
            h[i + half_dim] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
        } else {
            const int kh = head - shape.heads;
            const float* h = k + static_cast<std::size_t>(t) * kv_dim + kh * hd;
            const float x0 = h[i], x1 = h[i + half_dim];
            kc[kh * hd + i] = __float2half_rn(__fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)));
            kc[kh * hd + i + half_dim] =
                __float2half_rn(__fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c)));
        }
    }
    // Dimensions past rope_dim, and all of v, are stored as they are.
    for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) {
        if (j % hd >= shape.rope_dim)
            kc[j] = __float2half_rn(k[static_cast<std::size_t>(t) * kv_dim + j]);
        vc[j] = __float2half_rn(v[static_cast<std::size_t>(t) * kv_dim + j]);
    }
}

// One warp per weight row, 16-byte loads (8 halves), up to 4 token rows per pass.
constexpr int kGemvWarps = 4;
constexpr int kGemvTokens = 4;

__global__ void f16_gemv(const uint4* __restrict__ w, int rows, int pieces,
                         const uint4* __restrict__ x, int n, float* __restrict__ y) {
    pdl_wait();
    pdl_trigger();
    const int row = blockIdx.x * kGemvWarps + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const uint4* wr = w + static_cast<std::size_t>(row) * pieces;
    for (int t0 = 0; t0 < n; t0 += kGemvTokens) {
        const int nt = min(kGemvTokens, n - t0);
        float acc[kGemvTokens] = {0, 0, 0, 0};
#pragma unroll 4
        for (int i = lane; i < pieces; i += 32) {
            const uint4 wv = __ldg(wr + i);
            const __half2* wh = reinterpret_cast<const __half2*>(&wv);
            float2 wf[4];
#pragma unroll
            for (int j = 0; j < 4; ++j) wf[j] = __half22float2(wh[j]);
#pragma unroll
            for (int tt = 0; tt < kGemvTokens; ++tt) {
                if (tt >= nt) break;
                const uint4 xv = __ldg(x + static_cast<std::size_t>(t0 + tt) * pieces + i);
                const __half2* xh = reinterpret_cast<const __half2*>(&xv);
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const float2 xf = __half22float2(xh[j]);
                    acc[tt] = fmaf(wf[j].x, xf.x, acc[tt]);
                    acc[tt] = fmaf(wf[j].y, xf.y, acc[tt]);
                }
            }
        }
#pragma unroll
        for (int tt = 0; tt < kGemvTokens; ++tt) {
            if (tt >= nt) break;
            float v = acc[tt];
            for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
            if (lane == 0) y[static_cast<std::size_t>(t0 + tt) * rows + row] = v;
        }
    }
}

// Several token rows: F16 tensor cores (mma m16n8k16, f32 accumulation). A warp owns MR tiles
// of 16 rows and NT tiles of 8 tokens; per 32 columns a thread loads 16 bytes of rows g and g + 8
// of each row tile and of each of its tokens, used as the fragments of two k-steps (the same
// column permutation on both sides: fragment pair kk = 2t, 2t+1 is column 8t, 8t+1 of the step's
// first half, and so on). Each token vector serves MR row tiles: the activations, re-read by
// every warp, are read from L1/L2 less often than the weights stream from memory. Every output's
// sum runs over the columns in the same order whatever MR and NT are.
constexpr int kHeadWarps = 4;
constexpr int kHeadRowTiles = 4;  // 16-row tiles per warp

__device__ __forceinline__ void mma_f16(float (&d)[4], unsigned a0, unsigned a1, unsigned a2,
                                        unsigned a3, unsigned b0, unsigned b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <int MR, int NT>
__global__ void __launch_bounds__(kHeadWarps * 32)
    f16_mma_rows(const uint4* __restrict__ w, int rows, int pieces, const uint4* __restrict__ x,
                 int n, float* __restrict__ y) {
    pdl_wait();
    pdl_trigger();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int row0 = (blockIdx.x * kHeadWarps + warp) * 16 * MR;
    const int tok0 = blockIdx.y * NT * 8;
    if (row0 >= rows) return;
    const uint4* w_lo[MR];
    const uint4* w_hi[MR];
#pragma unroll
    for (int m = 0; m < MR; ++m) {
        w_lo[m] = w + static_cast<std::size_t>(min(row0 + m * 16 + g, rows - 1)) * pieces;
        w_hi[m] = w + static_cast<std::size_t>(min(row0 + m * 16 + g + 8, rows - 1)) * pieces;
    }
    float acc[MR][NT][4] = {};
#pragma unroll 2
    for (int c = t; c < pieces; c += 4) {  // 4 threads of a group cover 32 columns
        uint4 lo[MR], hi[MR];
#pragma unroll
        for (int m = 0; m < MR; ++m) {
            lo[m] = __ldg(w_lo[m] + c);
            hi[m] = __ldg(w_hi[m] + c);
        }
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            const int tok = tok0 + nt * 8 + g;
            const uint4 xv = tok < n ? __ldg(x + static_cast<std::size_t>(tok) * pieces + c)
                                     : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int m = 0; m < MR; ++m) {
                mma_f16(acc[m][nt], lo[m].x, hi[m].x, lo[m].y, hi[m].y, xv.x, xv.y);
                mma_f16(acc[m][nt], lo[m].z, hi[m].z, lo[m].w, hi[m].w, xv.z, xv.w);
            }
        }
    }
#pragma unroll
    for (int m = 0; m < MR; ++m)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int row = row0 + m * 16 + g + (i >= 2 ? 8 : 0);
                const int tok = tok0 + nt * 8 + t * 2 + (i & 1);
                if (row < rows && tok < n)
                    y[static_cast<std::size_t>(tok) * rows + row] = acc[m][nt][i];
            }
}

template <int NT>
void launch_head_rows(const uint4* w, int rows, int pieces, const uint4* x, int n, float* y,
                      void* stream) {
    constexpr int kRowsPerBlock = kHeadWarps * 16 * kHeadRowTiles;
    const dim3 grid((rows + kRowsPerBlock - 1) / kRowsPerBlock, (n + NT * 8 - 1) / (NT * 8));
    launch(f16_mma_rows<kHeadRowTiles, NT>, grid, kHeadWarps * 32, 0, stream, w, rows, pieces, x, n,
           y);
}

}  // namespace

void launch_embed_rows(const std::uint16_t* embedding, const int* tokens, int n, int hidden,
                       float* x, void* stream) {
    launch(embed_rows, n, kThreads, 0, stream, reinterpret_cast<const __half*>(embedding), tokens,
           hidden, x);
}

void launch_rmsnorm_quantize(const float* x, const float* weight, int n, int cols, int padded,
                             float eps, std::int8_t* q, float* scales, int* sums, void* stream) {
    if (n >= kManyRows)
        launch(rmsnorm_quantize<256, 28>, n, 256, 0, stream, x, weight, cols, padded, eps, q,
               scales, sums);
    else
        launch(rmsnorm_quantize<kNormThreads, 8>, n, kNormThreads, 0, stream, x, weight, cols,
               padded, eps, q, scales, sums);
}

void launch_rmsnorm_half(const float* x, const float* weight, int n, int cols, float eps,
                         std::uint16_t* out, void* stream) {
    launch(rmsnorm_half, n, kNormThreads, 0, stream, x, weight, cols, eps,
           reinterpret_cast<__half*>(out));
}

void launch_rope_and_store(float* q, const float* k, const float* v, int n, RowPlaces rows,
                           const HeadShape& shape, const float* cos_table, const float* sin_table,
                           KvLayer kv, void* stream) {
    launch(rope_and_store, n, kThreads, 0, stream, q, k, v, rows, shape, cos_table, sin_table, kv);
}

void launch_f16_gemv(const std::uint16_t* w, int rows, int cols, const std::uint16_t* x, int n,
                     float* y, void* stream) {
    const auto* wv = reinterpret_cast<const uint4*>(w);
    const auto* xv = reinterpret_cast<const uint4*>(x);
    if (n > 1 && cols % 32 == 0) {  // (every lane of a group must run the same steps)
        // Token tiles per warp: as many as the rows need, up to 4 (the rest in grid.y).
        if (n <= 8)
            launch_head_rows<1>(wv, rows, cols / 8, xv, n, y, stream);
        else if (n <= 16)
            launch_head_rows<2>(wv, rows, cols / 8, xv, n, y, stream);
        else
            launch_head_rows<4>(wv, rows, cols / 8, xv, n, y, stream);
        return;
    }
    launch(f16_gemv, (rows + kGemvWarps - 1) / kGemvWarps, kGemvWarps * 32, 0, stream, wv, rows,
           cols / 8, xv, n, y);
}

}  // namespace bitnet::kernels::cuda

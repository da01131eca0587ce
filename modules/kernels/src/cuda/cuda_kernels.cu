// CUDA kernels of the GPU backend (launched from cuda_backend.cpp through cuda_kernels.hpp):
//  - quantize_rows: per token row, absmax -> a = (float)(127 / max(amax, 1e-5)) computed in
//    double, q = clamp(round-half-even(x * a)) — the CPU rule, so the int8 inputs are identical;
//    with the row sum of q, which the tensor-core ternary kernels (ternary_mma.cu) need;
//  - f16_matmul: one warp per row, half2 weights, activations rounded to half, f32 accumulation.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda_kernels.hpp"

namespace bitnet::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kTokensPerPass = 8;  // token rows sharing each weight row
constexpr int kRowsPerBlock = 4;   // warps per block, one weight row each

__global__ void quantize_rows(const float* __restrict__ x, int cols, int padded,
                              std::int8_t* __restrict__ q, float* __restrict__ scales,
                              int* __restrict__ sums) {
    const int row = blockIdx.x;
    const float* xr = x + static_cast<std::size_t>(row) * cols;
    __shared__ float partial[32];
    float m = 0.0f;
    for (int k = threadIdx.x; k < cols; k += blockDim.x) m = fmaxf(m, fabsf(xr[k]));
    for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x / 32] = m;
    __syncthreads();
    if (threadIdx.x < 32) {
        m = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
        for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
        if (threadIdx.x == 0) partial[0] = m;
    }
    __syncthreads();
    // As the CPU: the max (exact in float) floored at 1e-5 in double, 127 / it in double.
    const double amax = fmax(static_cast<double>(partial[0]), 1e-5);
    const float a = static_cast<float>(127.0 / amax);
    if (threadIdx.x == 0) scales[row] = a;
    std::int8_t* qr = q + static_cast<std::size_t>(row) * padded;
    int sum = 0;
    for (int k = threadIdx.x; k < padded; k += blockDim.x) {
        int v = 0;
        if (k < cols) v = max(-128, min(127, __float2int_rn(__fmul_rn(xr[k], a))));
        qr[k] = static_cast<std::int8_t>(v);
        sum += v;
    }
    for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    __shared__ int sum_partial[32];
    if ((threadIdx.x & 31) == 0) sum_partial[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        int total = 0;
        for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += sum_partial[w];
        sums[row] = total;
    }
}

__global__ void to_half(const float* __restrict__ x, std::size_t n, __half* __restrict__ out) {
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
        out[i] = __float2half_rn(x[i]);
}

__global__ void f16_matmul(const __half2* __restrict__ w, int rows, int pairs,
                           const __half2* __restrict__ x, int n_tokens, float* __restrict__ y) {
    const int row = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;
    const __half2* wr = w + static_cast<std::size_t>(row) * pairs;
    for (int t0 = 0; t0 < n_tokens; t0 += kTokensPerPass) {
        const int nt = min(kTokensPerPass, n_tokens - t0);
        float acc[kTokensPerPass] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int i = lane; i < pairs; i += kWarp) {
            const float2 wf = __half22float2(wr[i]);
#pragma unroll
            for (int t = 0; t < kTokensPerPass; ++t) {
                if (t >= nt) break;
                const float2 xf = __half22float2(x[static_cast<std::size_t>(t0 + t) * pairs + i]);
                acc[t] = fmaf(wf.x, xf.x, acc[t]);
                acc[t] = fmaf(wf.y, xf.y, acc[t]);
            }
        }
#pragma unroll
        for (int t = 0; t < kTokensPerPass; ++t) {
            if (t >= nt) break;
            float v = acc[t];
            for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
            if (lane == 0) y[static_cast<std::size_t>(t0 + t) * rows + row] = v;
        }
    }
}

}  // namespace

void launch_quantize_rows(const float* x, int n, int cols, int padded, std::int8_t* q,
                          float* scales, int* sums, void* stream) {
    quantize_rows<<<static_cast<unsigned>(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        x, cols, padded, q, scales, sums);
}

void launch_to_half(const float* x, std::size_t count, std::uint16_t* out, void* stream) {
    to_half<<<256, 256, 0, static_cast<cudaStream_t>(stream)>>>(x, count,
                                                                reinterpret_cast<__half*>(out));
}

void launch_f16_matmul(const std::uint16_t* w, int rows, int cols, const std::uint16_t* x, int n,
                       float* y, void* stream) {
    const int blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    f16_matmul<<<blocks, kRowsPerBlock * kWarp, 0, static_cast<cudaStream_t>(stream)>>>(
        reinterpret_cast<const __half2*>(w), rows, cols / 2, reinterpret_cast<const __half2*>(x), n,
        y);
}

}  // namespace bitnet::kernels::cuda

// Kernels of head_screen.hpp.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_memory.hpp"
#include "head_screen.hpp"
#include "launch_control.cuh"

namespace bitnet::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// A block per row: the largest magnitude, the codes, then the largest reconstruction error
// (in double: the exact difference of two floats' products rounds at most once more).
__global__ void __launch_bounds__(kThreads)
    quantize_head_rows(const __half* w, int cols, std::int8_t* codes, float* scale, float* slack) {
    __shared__ float most[kThreads / 32];
    __shared__ double worst[kThreads / 32];
    const __half* row = w + static_cast<std::size_t>(blockIdx.x) * cols;
    float m = 0.0f;
    for (int i = threadIdx.x; i < cols; i += kThreads) m = fmaxf(m, fabsf(__half2float(row[i])));
    for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if (threadIdx.x % 32 == 0) most[threadIdx.x / 32] = m;
    __syncthreads();
    m = 0.0f;
    for (int k = 0; k < kThreads / 32; ++k) m = fmaxf(m, most[k]);
    const float d = __fdiv_rn(m, 127.0f);
    double err = 0;
    for (int i = threadIdx.x; i < cols; i += kThreads) {
        const float v = __half2float(row[i]);
        const float q = d > 0.0f ? fminf(127.0f, fmaxf(-127.0f, rintf(__fdiv_rn(v, d)))) : 0.0f;
        codes[static_cast<std::size_t>(blockIdx.x) * cols + i] = static_cast<std::int8_t>(q);
        err = fmax(err, fabs(static_cast<double>(v) - static_cast<double>(q) * d));
    }
    for (int off = 16; off > 0; off /= 2) err = fmax(err, __shfl_xor_sync(0xffffffffu, err, off));
    if (threadIdx.x % 32 == 0) worst[threadIdx.x / 32] = err;
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int k = 0; k < kThreads / 32; ++k) err = fmax(err, worst[k]);
    scale[blockIdx.x] = d;
    slack[blockIdx.x] = __double2float_ru(err + 3.0 * cols * 0x1p-24 * m);
}

}  // namespace

void launch_quantize_head_rows(const std::uint16_t* w, int rows, int cols, std::int8_t* codes,
                               float* scale, float* slack, void* stream) {
    launch(quantize_head_rows, rows, kThreads, 0, stream, reinterpret_cast<const __half*>(w), cols,
           codes, scale, slack);
}

ScreeningRows device_quantize_head_rows(const std::vector<std::uint16_t>& w, int rows, int cols) {
    const std::size_t n = static_cast<std::size_t>(rows) * cols;
    auto* dw = static_cast<std::uint16_t*>(device_alloc(n * 2, "screening test weights"));
    auto* dq = static_cast<std::int8_t*>(device_alloc(n, "screening test codes"));
    auto* ds = static_cast<float*>(device_alloc(rows * sizeof(float) * 2, "screening test rows"));
    BITNET_CUDA_CHECK(cudaMemcpy(dw, w.data(), n * 2, cudaMemcpyHostToDevice));
    launch_quantize_head_rows(dw, rows, cols, dq, ds, ds + rows, nullptr);
    ScreeningRows out;
    out.codes.resize(n);
    out.scale.resize(static_cast<std::size_t>(rows));
    out.slack.resize(static_cast<std::size_t>(rows));
    BITNET_CUDA_CHECK(cudaMemcpy(out.codes.data(), dq, n, cudaMemcpyDeviceToHost));
    BITNET_CUDA_CHECK(
        cudaMemcpy(out.scale.data(), ds, rows * sizeof(float), cudaMemcpyDeviceToHost));
    BITNET_CUDA_CHECK(
        cudaMemcpy(out.slack.data(), ds + rows, rows * sizeof(float), cudaMemcpyDeviceToHost));
    BITNET_CUDA_CHECK(cudaFree(dw));
    BITNET_CUDA_CHECK(cudaFree(dq));
    BITNET_CUDA_CHECK(cudaFree(ds));
    return out;
}

}  // namespace bitnet::kernels::cuda

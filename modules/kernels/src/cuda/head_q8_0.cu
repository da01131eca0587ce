// Kernels of head_q8_0.hpp.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstring>

#include "block_reduce.cuh"
#include "cuda_memory.hpp"
#include "head_q8_0.hpp"
#include "launch_control.cuh"

namespace bitnet::kernels::cuda {
namespace {

constexpr int kNormThreads = 1024;
constexpr int kGemvWarps = 4;

// One block per row: the rms scale as rmsnorm_half computes it, then each warp quantizes 32-value
// blocks (quantize_q8_0: d = amax / 127, codes roundf(x / d) through 1 / d, d kept as F16).
__global__ void __launch_bounds__(kNormThreads)
    rmsnorm_q8_0(const float* x, const float* w, int cols, float eps, std::int8_t* q, float* d) {
    pdl_wait();
    pdl_trigger();
    __shared__ double shared[32];
    const float* xr = x + static_cast<std::size_t>(blockIdx.x) * cols;
    double squares = 0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
        squares += static_cast<double>(xr[i]) * xr[i];
    const double total = block_sum(squares, shared);
    const float mean = static_cast<float>(total / cols);
    const float scale = __fdiv_rn(1.0f, sqrtf(__fadd_rn(mean, eps)));
    const int lane = threadIdx.x % 32, warps = blockDim.x / 32, blocks = cols / 32;
    std::int8_t* qr = q + static_cast<std::size_t>(blockIdx.x) * cols;
    float* dr = d + static_cast<std::size_t>(blockIdx.x) * blocks;
    for (int b = threadIdx.x / 32; b < blocks; b += warps) {
        const int i = b * 32 + lane;
        const float y = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
        float amax = fabsf(y);
        for (int off = 16; off > 0; off /= 2)
            amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
        const float dq = __fdiv_rn(amax, 127.0f);
        const float id = dq != 0.0f ? __fdiv_rn(1.0f, dq) : 0.0f;
        qr[i] = static_cast<std::int8_t>(roundf(__fmul_rn(y, id)));
        if (lane == 0) dr[b] = __half2float(__float2half_rn(dq));
    }
}

__device__ __forceinline__ int dot32(const uint4 (&a)[2], const uint4 (&b)[2]) {
    int s = 0;
    s = __dp4a(static_cast<int>(a[0].x), static_cast<int>(b[0].x), s);
    s = __dp4a(static_cast<int>(a[0].y), static_cast<int>(b[0].y), s);
    s = __dp4a(static_cast<int>(a[0].z), static_cast<int>(b[0].z), s);
    s = __dp4a(static_cast<int>(a[0].w), static_cast<int>(b[0].w), s);
    s = __dp4a(static_cast<int>(a[1].x), static_cast<int>(b[1].x), s);
    s = __dp4a(static_cast<int>(a[1].y), static_cast<int>(b[1].y), s);
    s = __dp4a(static_cast<int>(a[1].z), static_cast<int>(b[1].z), s);
    s = __dp4a(static_cast<int>(a[1].w), static_cast<int>(b[1].w), s);
    return s;
}

// A warp per weight row, lane l taking blocks l, l + 32, ... (each a contiguous 32 bytes: a
// warp reads 1 KB at a time), up to Tokens activation rows per pass over the weights (each pass
// streams the whole head: 350 MB for 2b4t, more than L2 holds).
template <int Tokens>
__global__ void __launch_bounds__(kGemvWarps * 32)
    q8_0_gemv(const std::int8_t* __restrict__ codes, const __half* __restrict__ scales, int rows,
              int cols, const std::int8_t* __restrict__ q, const float* __restrict__ d, int n,
              float* __restrict__ y) {
    pdl_wait();
    pdl_trigger();
    const int row = blockIdx.x * kGemvWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const int blocks = cols / 32;
    const auto* wr = reinterpret_cast<const uint4*>(codes + static_cast<std::size_t>(row) * cols);
    const __half* ds = scales + static_cast<std::size_t>(row) * blocks;
    for (int t0 = 0; t0 < n; t0 += Tokens) {
        const int nt = min(Tokens, n - t0);
        float acc[Tokens] = {};
        for (int b = lane; b < blocks; b += 32) {
            const uint4 wv[2] = {__ldg(wr + 2 * b), __ldg(wr + 2 * b + 1)};
            const float dw = __half2float(ds[b]);
#pragma unroll
            for (int tt = 0; tt < Tokens; ++tt) {
                if (tt >= nt) break;
                const std::size_t t = static_cast<std::size_t>(t0 + tt);
                const auto* xr = reinterpret_cast<const uint4*>(q + t * cols);
                const uint4 xv[2] = {__ldg(xr + 2 * b), __ldg(xr + 2 * b + 1)};
                const float dx = d[t * blocks + b];
                acc[tt] = __fadd_rn(
                    acc[tt], __fmul_rn(__fmul_rn(dw, dx), static_cast<float>(dot32(wv, xv))));
            }
        }
#pragma unroll
        for (int tt = 0; tt < Tokens; ++tt) {
            if (tt >= nt) break;
            float v = acc[tt];
            for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
            if (lane == 0) y[static_cast<std::size_t>(t0 + tt) * rows + row] = v;
        }
    }
}

}  // namespace

Q8_0Split split_q8_0(const std::uint8_t* blocks, std::int64_t rows, std::int64_t cols) {
    Q8_0Split s;
    const std::int64_t per_row = cols / 32;
    s.codes.resize(static_cast<std::size_t>(rows * cols));
    s.scales.resize(static_cast<std::size_t>(rows * per_row));
    for (std::int64_t b = 0; b < rows * per_row; ++b) {
        const std::uint8_t* block = blocks + b * 34;
        std::memcpy(&s.scales[static_cast<std::size_t>(b)], block, 2);
        std::memcpy(&s.codes[static_cast<std::size_t>(b * 32)], block + 2, 32);
    }
    return s;
}

void launch_rmsnorm_q8_0(const float* x, const float* weight, int n, int cols, float eps,
                         std::int8_t* q, float* d, void* stream) {
    launch(rmsnorm_q8_0, n, kNormThreads, 0, stream, x, weight, cols, eps, q, d);
}

void launch_q8_0_gemv(const std::int8_t* codes, const std::uint16_t* scales, int rows, int cols,
                      const std::int8_t* q, const float* d, int n, float* y, void* stream) {
    const int blocks = (rows + kGemvWarps - 1) / kGemvWarps;
    const auto* s = reinterpret_cast<const __half*>(scales);
    if (n <= 4)
        launch(q8_0_gemv<4>, blocks, kGemvWarps * 32, 0, stream, codes, s, rows, cols, q, d, n, y);
    else  // (batched decode: 32 rows in two passes over the head instead of eight)
        launch(q8_0_gemv<16>, blocks, kGemvWarps * 32, 0, stream, codes, s, rows, cols, q, d, n, y);
}

std::vector<float> device_q8_0_gemv(const std::uint8_t* weight_blocks, int rows, int cols,
                                    const std::uint8_t* activation_blocks, int n) {
    const Q8_0Split w = split_q8_0(weight_blocks, rows, cols);
    const Q8_0Split x = split_q8_0(activation_blocks, n, cols);
    std::vector<float> x_scales(x.scales.size());
    for (std::size_t i = 0; i < x.scales.size(); ++i)
        x_scales[i] = __half2float(__ushort_as_half(x.scales[i]));
    auto upload = [](const auto& host, const char* what) {
        const std::size_t bytes = sizeof(host[0]) * host.size();
        void* device = device_alloc(bytes, what);
        BITNET_CUDA_CHECK(cudaMemcpy(device, host.data(), bytes, cudaMemcpyHostToDevice));
        return device;
    };
    void* codes = upload(w.codes, "Q8_0 codes");
    void* scales = upload(w.scales, "Q8_0 scales");
    void* q = upload(x.codes, "Q8_0 activations");
    void* d = upload(x_scales, "Q8_0 activation scales");
    std::vector<float> y(static_cast<std::size_t>(rows) * n);
    auto* out = static_cast<float*>(device_alloc(sizeof(float) * y.size(), "Q8_0 products"));
    launch_q8_0_gemv(
        static_cast<const std::int8_t*>(codes), static_cast<const std::uint16_t*>(scales), rows,
        cols, static_cast<const std::int8_t*>(q), static_cast<const float*>(d), n, out, nullptr);
    BITNET_CUDA_CHECK(cudaMemcpy(y.data(), out, sizeof(float) * y.size(), cudaMemcpyDeviceToHost));
    for (void* p : {codes, scales, q, d, static_cast<void*>(out)}) BITNET_CUDA_CHECK(cudaFree(p));
    return y;
}

}  // namespace bitnet::kernels::cuda

// Launchers of the CUDA backend's kernels (cuda_kernels.cu), callable from plain C++: streams
// are passed as void* and half-precision data as uint16_t, so no CUDA header is needed here.
// Every launcher is asynchronous on `stream`; the caller checks cudaGetLastError().
#pragma once

#include <cstddef>
#include <cstdint>

namespace bitnet::kernels::cuda {

// n token rows of `cols` floats -> int8 rows of `padded` (>= cols, zero-filled), scales a and
// the row sums of the int8 values.
void launch_quantize_rows(const float* x, int n, int cols, int padded, std::int8_t* q,
                          float* scales, int* sums, void* stream);
void launch_to_half(const float* x, std::size_t count, std::uint16_t* out, void* stream);
// y[t][r] = sum_k w[r][k] * x[t][k], F16 inputs, f32 accumulation; cols even.
void launch_f16_matmul(const std::uint16_t* w, int rows, int cols, const std::uint16_t* x, int n,
                       float* y, void* stream);

}  // namespace bitnet::kernels::cuda

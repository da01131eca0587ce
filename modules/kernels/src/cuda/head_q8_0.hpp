// The output head re-quantized to Q8_0 (`--head q8_0`) on the GPU: half the bytes of the F16
// head per token. The arithmetic is the CPU's (matmul_common.cpp): the final rmsnorm in float,
// its rows quantized to Q8_0 as quantize_q8_0 does, and per 32-column block
// fp16(d_w) * fp16(d_x) * (integer dot), summed in float (in another order than the CPU's: equal
// within float rounding).
#pragma once

#include <cstdint>
#include <vector>

namespace bitnet::kernels::cuda {

// A Q8_0 matrix on the device: the 34-byte GGUF blocks split into int8 codes (rows * cols, 16-byte
// aligned rows) and their F16 scales (rows * cols / 32).
struct Q8_0Split {
    std::vector<std::int8_t> codes;
    std::vector<std::uint16_t> scales;
};
Q8_0Split split_q8_0(const std::uint8_t* blocks, std::int64_t rows, std::int64_t cols);

// rmsnorm (rmsnorm_half's sums) in float, then each row quantized to Q8_0: codes q (n * cols)
// and scales d (n * cols / 32) as floats (the F16-rounded values the dot uses). cols % 32 == 0.
void launch_rmsnorm_q8_0(const float* x, const float* weight, int n, int cols, float eps,
                         std::int8_t* q, float* d, void* stream);

// y[t][r] = the Q8_0 dot of weight row r and activation row t (n rows), a warp per weight row.
void launch_q8_0_gemv(const std::int8_t* codes, const std::uint16_t* scales, int rows, int cols,
                      const std::int8_t* q, const float* d, int n, float* y, void* stream);

// Tests: the GEMV on host data (GGUF Q8_0 weight blocks and activation blocks), synchronously.
std::vector<float> device_q8_0_gemv(const std::uint8_t* weight_blocks, int rows, int cols,
                                    const std::uint8_t* activation_blocks, int n);

}  // namespace bitnet::kernels::cuda

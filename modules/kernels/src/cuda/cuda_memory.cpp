#include "cuda_memory.hpp"

#include <cuda_runtime.h>

#include <string>

#include "bitnet/common/error.hpp"
#include "bitnet/quantization/formats.hpp"

namespace bitnet::kernels::cuda {

void check(int status, const char* call, const char* file, int line) {
    const auto error = static_cast<cudaError_t>(status);
    if (error == cudaSuccess) return;
    fail(error == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Internal,
         std::string("CUDA: ") + call + " failed: " + cudaGetErrorString(error) + " (" + file +
             ":" + std::to_string(line) + ")");
}

void* device_alloc(std::size_t bytes, const char* what) {
    void* ptr = nullptr;
    const cudaError_t status = cudaMalloc(&ptr, bytes);
    if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // clear the error so later calls are not blamed for it
        std::size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        fail(ErrorCode::OutOfMemory,
             std::string("CUDA: out of device memory for ") + what + ": needs " +
                 std::to_string(bytes) + " bytes, " + std::to_string(free_bytes) + " free of " +
                 std::to_string(total) + "; use a smaller -c or --device cpu");
    }
    check(status, "cudaMalloc", __FILE__, __LINE__);
    return ptr;
}

std::vector<unsigned> pack_i2s_rows(const WeightView& w) {
    const std::int64_t words = w.cols / 16;
    std::vector<unsigned> packed(static_cast<std::size_t>(w.rows * words), 0u);
    for (std::int64_t r = 0; r < w.rows; ++r)
        for (std::int64_t k = 0; k < w.cols; ++k) {
            const unsigned code = quant::i2s_code_at(w.data, r * w.cols + k);
            packed[static_cast<std::size_t>(r * words + k / 16)] |= code << (2 * (k % 16));
        }
    return packed;
}

}  // namespace bitnet::kernels::cuda

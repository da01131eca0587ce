#include "cuda_memory.hpp"

#include <cuda_runtime.h>

#include <string>

#include "bitnet/common/error.hpp"

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

}  // namespace bitnet::kernels::cuda

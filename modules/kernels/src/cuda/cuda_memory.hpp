// Shared by the CUDA sources: every runtime call checked into a bitnet::Error, and device
// allocations that say, when they fail, how much was asked and how much the device has free.
// No CUDA header here (statuses are passed as int), so plain C++ and .cu files both use it.
#pragma once

#include <cstddef>

namespace bitnet::kernels::cuda {

// Throws bitnet::Error (OutOfMemory for allocation failures, else Internal) naming the call.
void check(int status, const char* call, const char* file, int line);
// cudaMalloc of `bytes` for `what`; throws OutOfMemory with the sizes needed and available.
void* device_alloc(std::size_t bytes, const char* what);

}  // namespace bitnet::kernels::cuda

#define BITNET_CUDA_CHECK(call) \
    ::bitnet::kernels::cuda::check(static_cast<int>(call), #call, __FILE__, __LINE__)

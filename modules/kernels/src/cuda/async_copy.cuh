// Asynchronous global -> shared copies (cp.async, sm_80+): 16 bytes at a time without passing
// through registers, so a kernel can keep many requests in flight while it computes.
#pragma once

#include <cuda_runtime.h>

namespace bitnet::kernels::cuda {

__device__ __forceinline__ void copy_async16(void* shared, const void* global) {
    const auto to = static_cast<unsigned>(__cvta_generic_to_shared(shared));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(to), "l"(global) : "memory");
}
// Every copy this thread requested has landed.
__device__ __forceinline__ void wait_async() {
    asm volatile("cp.async.wait_all;" ::: "memory");
}
// Closes the group of copies requested since the last commit.
__device__ __forceinline__ void commit_async() {
    asm volatile("cp.async.commit_group;" ::: "memory");
}
// All but the newest `Pending` committed groups of this thread have landed.
template <int Pending>
__device__ __forceinline__ void wait_async_groups() {
    asm volatile("cp.async.wait_group %0;" ::"n"(Pending) : "memory");
}

}  // namespace bitnet::kernels::cuda

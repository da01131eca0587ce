// Block-wide reductions shared by the per-kernel layer kernels (gpu_layer_kernels.cu,
// attention.cu). The order of the double additions is fixed by the block size, so every kernel
// that sums the same values with the same block size gets the same bits.
#pragma once

#include <cuda_runtime.h>

namespace bitnet::kernels::cuda {

// The sum of every thread's `v`; `shared` holds one double per warp. All threads get the total.
__device__ __forceinline__ double block_sum(double v, double* shared) {
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    if ((threadIdx.x & 31) == 0) shared[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < blockDim.x / 32 ? shared[threadIdx.x] : 0.0;
        for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (threadIdx.x == 0) shared[0] = v;
    }
    __syncthreads();
    const double total = shared[0];
    __syncthreads();
    return total;
}

}  // namespace bitnet::kernels::cuda

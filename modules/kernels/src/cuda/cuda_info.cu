// cuda_info() for the gpu preset: asks the runtime how many devices there are.
#include <cuda_runtime.h>

#include "bitnet/kernels/cuda_info.hpp"

namespace bitnet::kernels {

CudaInfo cuda_info() {
    CudaInfo info;
    info.compiled = true;
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        info.reason = std::string("CUDA runtime: ") + cudaGetErrorString(status);
        return info;
    }
    info.device_count = count;
    if (count == 0) {
        info.reason = "no CUDA device found";
        return info;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) info.first_device_name = prop.name;
    return info;
}

}  // namespace bitnet::kernels

// cuda_info() for builds without the CUDA backend.
#include "bitnet/kernels/cuda_info.hpp"

namespace bitnet::kernels {

CudaInfo cuda_info() {
    CudaInfo info;
    info.reason = "this build has no CUDA backend (configure with --preset gpu)";
    return info;
}

}  // namespace bitnet::kernels

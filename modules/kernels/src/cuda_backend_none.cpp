// make_cuda_backend() for builds without CUDA (the cpu preset).
#include "bitnet/common/error.hpp"
#include "bitnet/kernels/cuda_backend.hpp"

namespace bitnet::kernels {

std::unique_ptr<Backend> make_cuda_backend(int device, int) {
    fail(ErrorCode::Unsupported, "cuda:" + std::to_string(device) +
                                     " requested, but this build has no CUDA support; build "
                                     "with `cmake --preset gpu` or use --device cpu");
}

}  // namespace bitnet::kernels

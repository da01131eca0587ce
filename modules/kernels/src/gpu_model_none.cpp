// The GPU forward pass in builds without CUDA (the cpu preset): never available.
#include "bitnet/common/error.hpp"
#include "bitnet/kernels/gpu_model.hpp"

namespace bitnet::kernels {

bool gpu_model_supported(const GpuModelDesc&, std::string& why) {
    why = "this build has no CUDA (cmake --preset gpu)";
    return false;
}

std::unique_ptr<GpuModel> make_gpu_model(const GpuModelDesc&, int device, int) {
    fail(ErrorCode::Unsupported, "cuda:" + std::to_string(device) +
                                     ": this build has no CUDA; build with `cmake --preset gpu` "
                                     "or use --device cpu");
}

}  // namespace bitnet::kernels

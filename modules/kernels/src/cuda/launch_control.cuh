// Kernel launches with optional programmatic dependent launch (PDL, sm_90+): a kernel launched
// this way may start while the previous kernel on the stream is still running; it does what does
// not depend on that kernel (a ternary product issues its weight loads), then waits at
// pdl_wait() until the previous grid has completed and its writes are visible. Every kernel
// calls pdl_wait() before it finishes, so completion stays transitive along the chain (a kernel
// that reads what three launches ago wrote is still ordered after it). pdl_trigger() lets the
// next kernel be launched early. Both are no-ops when a kernel was launched normally.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "cuda_memory.hpp"

namespace bitnet::kernels::cuda {

// Whether launches from this thread use PDL (GpuModel turns it on around its single-step
// passes on devices that have it; the CUDA backend never does).
inline bool& programmatic_launch() {
    thread_local bool on = false;
    return on;
}

class ProgrammaticLaunchScope {
  public:
    explicit ProgrammaticLaunchScope(bool on) : previous_(programmatic_launch()) {
        programmatic_launch() = on;
    }
    ~ProgrammaticLaunchScope() { programmatic_launch() = previous_; }
    ProgrammaticLaunchScope(const ProgrammaticLaunchScope&) = delete;
    ProgrammaticLaunchScope& operator=(const ProgrammaticLaunchScope&) = delete;

  private:
    bool previous_;
};

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem, void* stream,
            Args&&... args) {
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = static_cast<cudaStream_t>(stream);
    cudaLaunchAttribute attribute{};
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    if (programmatic_launch()) {
        config.attrs = &attribute;
        config.numAttrs = 1;
    }
    BITNET_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

}  // namespace bitnet::kernels::cuda

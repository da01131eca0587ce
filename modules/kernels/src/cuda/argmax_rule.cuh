// The greedy token's rule on (value, index) pairs, shared by the argmax kernel
// (sampling_kernels.cu) and the fused decode step's head (decode_step.cu): index -1 is "none";
// otherwise the larger value wins, then the lower index (-0 and +0 are equal). Callers skip NaN.
#pragma once

namespace bitnet::kernels::cuda {

__device__ __forceinline__ void keep_better(float& best, int& at, float v, int i) {
    if (i >= 0 && (at < 0 || v > best || (v == best && i < at))) {
        best = v;
        at = i;
    }
}

}  // namespace bitnet::kernels::cuda

// Token choice on the device: a decode step then copies back a token or a few candidates instead
// of the vocabulary's logits (0.5 MB for a 128k vocabulary). The rules are the host's
// (inference/greedy.cpp, inference/sampler.cpp): NaN never chosen; larger logits first, the lower
// index among equal ones (-0 and +0 are equal).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace bitnet::kernels::cuda {

// *out = the index of the largest of x[0..n) that is not NaN, the lowest of equal ones; -1 when
// all are NaN. One block: a single row of logits.
void launch_argmax(const float* x, int n, int* out, void* stream);

// The repetition penalty in place, on n_ids distinct in-range ids: x > 0 ? x / penalty : x *
// penalty.
void launch_penalize(float* x, const int* ids, int n_ids, float penalty, void* stream);

// The k best of x[0..n) that are not NaN (k <= kMaxDeviceTopK) in any order: out[0] = their
// count (k, or every non-NaN value when there are fewer), then (float bits, index) pairs from
// out[1]. An exact radix select of the k-th best key, then the values above it and the first of
// those equal to it by index. One block.
constexpr int kMaxDeviceTopK = 256;
void launch_top_k(const float* x, int n, int k, int* out, void* stream);

// Tests: the kernels on copies of host values, synchronously.
int device_argmax(const float* host, int n);
std::vector<std::pair<float, std::int32_t>> device_top_k(const float* host, int n, int k,
                                                         const std::vector<int>& ids,
                                                         float penalty);

}  // namespace bitnet::kernels::cuda

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
// all are NaN. A single row of logits, in slices over up to kArgmaxBlocks blocks; the last block
// to finish combines their answers. `work`: kArgmaxWorkInts ints on the device, zero before the
// first launch (and left zero by each); one launch at a time per `work`.
constexpr int kArgmaxBlocks = 64;
constexpr int kArgmaxWorkInts = 2 * kArgmaxBlocks + 1;
void launch_argmax(const float* x, int n, int* out, int* work, void* stream);

// Rows of n logits, row r at x + r * n, on the device.
// The repetition penalty in place: row r's distinct in-range ids[offsets[r] .. offsets[r + 1])
// get x > 0 ? x / penalties[r] : x * penalties[r].
void launch_penalize(float* x, int n, int rows, const int* offsets, const int* ids,
                     const float* penalties, void* stream);

// The ks[r] best values of row r that are not NaN (ks[r] <= kMaxDeviceTopK) in any order, at
// out + r * kTopKAnswerInts: their count (ks[r], or every non-NaN value when there are fewer),
// then (float bits, index) pairs. An exact select of the k-th best key, then the values above it
// and the first of those equal to it by index. A block per row.
constexpr int kMaxDeviceTopK = 256;
constexpr int kTopKAnswerInts = 1 + 2 * kMaxDeviceTopK;
void launch_top_k(const float* x, int n, int rows, const int* ks, int* out, void* stream);

// Tests: the kernels on copies of host values, synchronously.
int device_argmax(const float* host, int n);
std::vector<std::vector<std::pair<float, std::int32_t>>> device_top_k(
    const std::vector<std::vector<float>>& rows, const std::vector<int>& ks,
    const std::vector<std::vector<int>>& ids, const std::vector<float>& penalties);

}  // namespace bitnet::kernels::cuda

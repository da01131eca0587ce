// Q8_0 weight row . Q8_0 activations (internal; ggml's vec_dot_q8_0_q8_0 arithmetic): the
// re-quantized output head (`--head q8_0`) and Q8_0 tensors. Integer sums per 32-block, scaled
// by both block scales; summed in a different order from the scalar reference (equal within
// float rounding; the tests compare with a tolerance).
#pragma once

#include <cstdint>

namespace bitnet::kernels::detail {

// `prefetch`: how many bytes ahead of its loads the row's lines are asked for
// (head_prefetch_bytes).
float dot_q8_0_avx2(const std::uint8_t* w, const std::uint8_t* x, std::int64_t cols, int prefetch);
// AVX-512 VNNI: two blocks per 512-bit vector.
float dot_q8_0_vnni(const std::uint8_t* w, const std::uint8_t* x, std::int64_t cols, int prefetch);
// Two rows at once (two weight streams), each with the one-row kernel's bits.
void dot_q8_0_avx2_pair(const std::uint8_t* wa, const std::uint8_t* wb, const std::uint8_t* x,
                        std::int64_t cols, int prefetch, float* ya, float* yb);
void dot_q8_0_vnni_pair(const std::uint8_t* wa, const std::uint8_t* wb, const std::uint8_t* x,
                        std::int64_t cols, int prefetch, float* ya, float* yb);

}  // namespace bitnet::kernels::detail

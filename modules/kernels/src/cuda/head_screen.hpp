// An int8 copy of the F16 output head that screens the rows for greedy decoding without changing
// its answer (the fused decode step, decode_step.cu): each row's int8 dot with the token's
// normed activations, scaled, is within `slack * ||x||_1` of the F16 head's own float result for
// that row, so only the rows whose upper bound reaches the best lower bound can hold the largest
// logit, and only those are computed from the F16 weights. On a 128k x 2560 head the copy is
// 328 MB (half the F16 head's bytes per token), and a few dozen rows at most remain.
#pragma once

#include <cstdint>
#include <vector>

namespace bitnet::kernels::cuda {

// Per row r of the F16 matrix w (rows x cols): scale[r] = max|w| / 127 (float), codes
// q = round(w / scale) (int8), and slack[r] >= max_i |w_i - q_i * scale| plus the float rounding
// of both dots (3 * cols * 2^-24 * max|w|, far above what a warp's sums can lose), rounded up.
void launch_quantize_head_rows(const std::uint16_t* w, int rows, int cols, std::int8_t* codes,
                               float* scale, float* slack, void* stream);

// Tests: launch_quantize_head_rows on host data, synchronously.
struct ScreeningRows {
    std::vector<std::int8_t> codes;
    std::vector<float> scale, slack;
};
ScreeningRows device_quantize_head_rows(const std::vector<std::uint16_t>& w, int rows, int cols);

}  // namespace bitnet::kernels::cuda

// Pieces shared by the CPU backends (internal): per-row activation preparation and the
// per-output-row dot products for each weight type. Each function computes one output value
// from one prepared activation row, so backends differ only in how they schedule rows.
#pragma once

#include <cstdint>
#include <vector>

#include "bitnet/kernels/weight_view.hpp"
#include "bitnet/quantization/activation.hpp"

namespace bitnet::kernels::detail {

// One activation row prepared for a weight type: int8 codes + scale for ternary weights,
// half-rounded floats for F16/BF16, plain floats otherwise.
struct PreparedRow {
    std::vector<std::int8_t> q;
    quant::ActivationScale act{};
    std::vector<std::int32_t> block_sums;  // TQ formats: sum of q per 256-block
    std::vector<float> f;
    std::vector<std::uint8_t> q8;  // Q8_0 weights: the activations as Q8_0 blocks
};

// y = sum over 32-blocks of d_w * d_x * sum(q_w * q_x): ggml's Q8_0 x Q8_0 dot, scalar.
float dot_q8_0_reference(const std::uint8_t* w_row, const std::uint8_t* x_q8, std::int64_t cols);

void prepare_row(const WeightView& w, const float* x, bool int8_activations, PreparedRow& out);

// y = W[n] . x for one output row, with the numerics of the reference.
float dot_row_reference(const WeightView& w, std::int64_t n, const PreparedRow& x,
                        bool int8_activations);

}  // namespace bitnet::kernels::detail

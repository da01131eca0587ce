#include "matmul_common.hpp"

#include "bitnet/kernels/ternary_dot.hpp"

#include <cstring>

#include "bitnet/common/error.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"
#include "tq_kernels.hpp"

namespace bitnet::kernels::detail {

using quant::TypeId;

void prepare_row(const WeightView& w, const float* x, bool int8_activations, PreparedRow& out) {
    const std::int64_t k = w.cols;
    if (w.is_ternary() && int8_activations) {
        out.q.resize(static_cast<std::size_t>(k));
        out.act = quant::quantize_activations_i8(x, k, out.q.data());
        if (w.type != TypeId::I2_S) {
            out.block_sums.assign(static_cast<std::size_t>(k / quant::kQK_K), 0);
            for (std::int64_t i = 0; i < k; ++i)
                out.block_sums[static_cast<std::size_t>(i / quant::kQK_K)] +=
                    out.q[static_cast<std::size_t>(i)];
        }
        return;
    }
    if (w.type == TypeId::Q8_0) {
        // ggml's vec_dot_type for Q8_0 is Q8_0: activations are quantized the same way.
        out.q8.resize(static_cast<std::size_t>(k / 32 * 34));
        quant::quantize_q8_0(x, k, out.q8.data());
        return;
    }
    out.f.assign(x, x + k);
    if (w.type == TypeId::F16) {
        for (float& v : out.f) v = quant::fp16_to_fp32(quant::fp32_to_fp16(v));
    } else if (w.type == TypeId::BF16) {
        for (float& v : out.f) v = quant::bf16_to_fp32(quant::fp32_to_bf16(v));
    }
}

float dot_q8_0_reference(const std::uint8_t* w_row, const std::uint8_t* x_q8, std::int64_t cols) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < cols / 32; ++b) {
        const std::uint8_t* wb = w_row + b * 34;
        const std::uint8_t* xb = x_q8 + b * 34;
        std::uint16_t dw, dx;
        std::memcpy(&dw, wb, 2);
        std::memcpy(&dx, xb, 2);
        std::int32_t dot = 0;
        for (int i = 0; i < 32; ++i)
            dot += static_cast<std::int8_t>(wb[2 + i]) * static_cast<std::int8_t>(xb[2 + i]);
        sum += quant::fp16_to_fp32(dw) * quant::fp16_to_fp32(dx) * static_cast<float>(dot);
    }
    return sum;
}

float dot_row_reference(const WeightView& w, std::int64_t n, const PreparedRow& x,
                        bool int8_activations) {
    const std::int64_t k = w.cols;
    const std::uint8_t* row = w.row(n);
    if (w.type == TypeId::Q8_0 && !x.q8.empty()) return dot_q8_0_reference(row, x.q8.data(), k);
    if (w.is_ternary() && int8_activations) {
        if (w.type == TypeId::I2_S)
            return quant::i2s_output(dot_i2s_i8_reference(row, x.q.data(), k), x.act, w.scale);
        // TQ formats: per-block scales, y = sum_b d_b (D_b - S_b) / a
        const std::int64_t blocks = k / quant::kQK_K;
        thread_local std::vector<std::int32_t> dots;
        dots.resize(static_cast<std::size_t>(blocks));
        tq_block_dots_scalar(w.type, row, x.q.data(), blocks, dots.data());
        return tq_row_output(w.type, row, dots.data(), x.block_sums.data(), blocks, x.act);
    }
    // Float path: dequantize the row (I2_S rows carry no scale of their own: apply the tensor's).
    thread_local std::vector<float> wrow;
    wrow.resize(static_cast<std::size_t>(k));
    if (w.type == TypeId::I2_S) {
        for (std::int64_t i = 0; i < k; ++i)
            wrow[static_cast<std::size_t>(i)] =
                static_cast<float>(quant::i2s_code_at(row, i) - 1) * w.scale;
    } else {
        const quant::TypeTraits& t = quant::traits(w.type);
        if (!t.dequantize)
            fail(ErrorCode::Unsupported, "no kernel for weight type " + std::string(t.name));
        t.dequantize(row, k, wrow.data());
    }
    float acc = 0.0f;
    for (std::int64_t i = 0; i < k; ++i)
        acc += wrow[static_cast<std::size_t>(i)] * x.f[static_cast<std::size_t>(i)];
    return acc;
}

}  // namespace bitnet::kernels::detail

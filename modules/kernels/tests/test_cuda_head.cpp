// The Q8_0 output head on the device (head_q8_0.cu) against the CPU's reference dot
// (matmul_common.cpp dot_q8_0_reference): random weight and activation rows quantized by the
// CPU's quantize_q8_0, ragged row counts and several activation rows per pass. Only the order of
// the float additions differs, so they agree within float rounding. Skipped without a GPU (CI).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "../src/cpu/matmul_common.hpp"
#include "../src/cuda/head_q8_0.hpp"
#include "../src/cuda/head_screen.hpp"
#include "bitnet/kernels/cuda_info.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

using namespace bitnet;

TEST_CASE("device Q8_0 head: the CPU's Q8_0 dots within float rounding") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("device Q8_0 head skipped: " << info.reason);
        return;
    }
    std::mt19937 rng(11);
    std::normal_distribution<float> value(0.0f, 1.0f);
    for (const auto& [rows, cols, n] :
         {std::tuple{1, 32, 1}, {37, 96, 3}, {130, 2560, 1}, {67, 2560, 6}}) {
        INFO(rows << " x " << cols << ", " << n << " activation rows");
        auto quantized = [&](int count) {
            std::vector<float> x(static_cast<std::size_t>(count) * cols);
            for (float& v : x) v = value(rng);
            std::vector<std::uint8_t> q(static_cast<std::size_t>(count) * cols / 32 * 34);
            quant::quantize_q8_0(x.data(), static_cast<std::int64_t>(x.size()), q.data());
            return q;
        };
        const auto w = quantized(rows), x = quantized(n);
        const std::vector<float> y =
            kernels::cuda::device_q8_0_gemv(w.data(), rows, cols, x.data(), n);
        const std::size_t row_bytes = static_cast<std::size_t>(cols) / 32 * 34;
        for (int t = 0; t < n; ++t)
            for (int r = 0; r < rows; ++r) {
                const float expected = kernels::detail::dot_q8_0_reference(
                    w.data() + r * row_bytes, x.data() + t * row_bytes, cols);
                const float got = y[static_cast<std::size_t>(t) * rows + r];
                INFO("row " << r << " token " << t);
                REQUIRE(std::fabs(got - expected) <=
                        1e-5f * (1.0f + std::fabs(expected)) * cols / 32);
            }
    }
}

// The int8 screening head (head_screen.hpp) against exact sums: for random F16 rows (a zero row
// and a row with one large value among them) and random activations, the scaled int8 dot is
// within slack * ||x||_1 of the exact dot (in long double), and the slack is no looser than half
// a step plus the stated rounding allowance.
TEST_CASE("device screening head: int8 rows within their slack of the exact F16 dots") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("device screening head skipped: " << info.reason);
        return;
    }
    std::mt19937 rng(5);
    std::normal_distribution<float> value(0.0f, 0.05f);
    const int rows = 41, cols = 2560;
    std::vector<std::uint16_t> w(static_cast<std::size_t>(rows) * cols);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = quant::fp32_to_fp16(value(rng));
    for (int i = 0; i < cols; ++i) w[i] = quant::fp32_to_fp16(0.0f);     // row 0: zeros
    w[static_cast<std::size_t>(cols) + 7] = quant::fp32_to_fp16(30.0f);  // row 1: one outlier
    const auto screen = kernels::cuda::device_quantize_head_rows(w, rows, cols);
    for (int trial = 0; trial < 5; ++trial) {
        std::vector<float> x(cols);
        long double norm1 = 0;
        for (float& v : x) {
            v = quant::fp16_to_fp32(quant::fp32_to_fp16(value(rng) * 40.0f));
            norm1 += std::fabs(v);
        }
        for (int r = 0; r < rows; ++r) {
            INFO("row " << r << ", trial " << trial);
            long double exact = 0, scaled = 0;
            float amax = 0;
            for (int i = 0; i < cols; ++i) {
                const float wv = quant::fp16_to_fp32(w[static_cast<std::size_t>(r) * cols + i]);
                const int q = screen.codes[static_cast<std::size_t>(r) * cols + i];
                REQUIRE(std::abs(q) <= 127);
                exact += static_cast<long double>(wv) * x[i];
                scaled += static_cast<long double>(q) * screen.scale[r] * x[i];
                amax = std::max(amax, std::fabs(wv));
            }
            REQUIRE(std::fabs(static_cast<double>(scaled - exact)) <=
                    static_cast<double>(screen.slack[r] * norm1));
            REQUIRE(screen.scale[r] == amax / 127.0f);
            REQUIRE(screen.slack[r] <=
                    screen.scale[r] * 0.5001f + 3.0001f * cols * 0x1p-24f * amax + 1e-30f);
        }
    }
}

// The Q8_0 output head on the device (head_q8_0.cu) against the CPU's reference dot
// (matmul_common.cpp dot_q8_0_reference): random weight and activation rows quantized by the
// CPU's quantize_q8_0, ragged row counts and several activation rows per pass. Only the order of
// the float additions differs, so they agree within float rounding. Skipped without a GPU (CI).
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "../src/cpu/matmul_common.hpp"
#include "../src/cuda/head_q8_0.hpp"
#include "bitnet/kernels/cuda_info.hpp"
#include "bitnet/quantization/formats.hpp"

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

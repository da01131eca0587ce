// The screening head (src/cpu/head_screen.hpp) and the greedy rule it must reproduce: the
// integer dots of every kernel against the scalar loop, the bounds against the F16 kernel's own
// float results, and matmul_argmax through the screen against the full product's argmax.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../src/cpu/f16_kernels.hpp"
#include "../src/cpu/head_screen.hpp"
#include "bitnet/common/cpu_features.hpp"
#include "bitnet/kernels/backend.hpp"
#include "bitnet/kernels/ops.hpp"
#include "bitnet/quantization/fp16.hpp"

using namespace bitnet;
using kernels::detail::ScreenKernel;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool has_f16c() {
    return cpu_features().f16c && cpu_features().avx2 && cpu_features().fma;
}

// An F16 matrix of normal weights (std `sigma`), the shapes of a head.
std::vector<std::uint16_t> f16_matrix(std::int64_t rows, std::int64_t cols, std::uint32_t seed,
                                      float sigma = 0.02f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, sigma);
    std::vector<std::uint16_t> w(static_cast<std::size_t>(rows * cols));
    for (auto& v : w) v = quant::fp32_to_fp16(normal(rng));
    return w;
}

// Activations already rounded to F16 values (what the F16 kernels take).
std::vector<float> f16_input(std::int64_t cols, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(cols));
    for (auto& v : x) v = quant::fp16_to_fp32(quant::fp32_to_fp16(normal(rng)));
    return x;
}

kernels::WeightView f16_view(const std::vector<std::uint16_t>& w, std::int64_t rows,
                             std::int64_t cols) {
    return {quant::TypeId::F16, reinterpret_cast<const std::uint8_t*>(w.data()), rows, cols, 1.0f};
}

}  // namespace

TEST_CASE("argmax_first: the first largest, NaN never, the first -inf when nothing is finite") {
    auto argmax_first = [](const std::vector<float>& v) {
        return kernels::argmax_first(v.data(), static_cast<std::int64_t>(v.size()));
    };
    const std::vector<float> ties = {1, 3, 3, 2}, with_nan = {kNaN, 2, kNaN, 5, 5};
    const std::vector<float> infinite = {kNaN, -kInf, -kInf}, all_nan = {kNaN, kNaN};
    CHECK(argmax_first(ties) == 1);
    CHECK(argmax_first(with_nan) == 3);
    CHECK(argmax_first(infinite) == 1);
    CHECK(argmax_first(all_nan) == -1);
    // past the 16-wide lanes: a later tie does not win, a larger value in the tail does
    std::vector<float> long_row(37, 0.5f);
    long_row[20] = 2;
    long_row[30] = 2;
    CHECK(argmax_first(long_row) == 20);
    long_row[36] = 2.5f;
    CHECK(argmax_first(long_row) == 36);
}

TEST_CASE("screening dots: every kernel gives the scalar loop's exact integers") {
    std::mt19937 rng(11);
    for (const std::int64_t stride : {64, 128, 2560, 7168}) {
        const std::int32_t limit = kernels::detail::screen_input_limit(stride);
        CHECK(limit >= 8191);
        std::uniform_int_distribution<int> code(-127, 127), input(-limit, limit);
        for (const std::int64_t count : {1, 2, 3, 17, 64}) {
            std::vector<std::int8_t> rows(static_cast<std::size_t>(count * stride));
            std::vector<std::int16_t> x(static_cast<std::size_t>(stride));
            for (auto& q : rows) q = static_cast<std::int8_t>(code(rng));
            for (auto& k : x) k = static_cast<std::int16_t>(input(rng));
            // the largest magnitudes everywhere in one row: the lanes' worst case
            for (std::int64_t j = 0; j < stride; ++j) {
                rows[static_cast<std::size_t>(j)] = 127;
                x[static_cast<std::size_t>(j)] = static_cast<std::int16_t>(limit);
            }
            std::vector<std::int64_t> expected(static_cast<std::size_t>(count));
            kernels::detail::screen_dots(ScreenKernel::Scalar, rows.data(), stride, count, x.data(),
                                         0, expected.data());
            CHECK(expected[0] == std::int64_t{127} * limit * stride);
            for (ScreenKernel kernel : {ScreenKernel::Avx2, ScreenKernel::Avx512}) {
                if (!kernels::detail::screen_kernel_supported(kernel)) continue;
                std::vector<std::int64_t> got(static_cast<std::size_t>(count));
                kernels::detail::screen_dots(kernel, rows.data(), stride, count, x.data(), 1024,
                                             got.data());
                INFO("kernel " << static_cast<int>(kernel) << ", stride " << stride << ", " << count
                               << " rows");
                CHECK(got == expected);
            }
        }
    }
}

TEST_CASE("screening bounds hold the F16 kernel's own result for every row") {
    if (!has_f16c()) {
        WARN("skipped: no AVX2/F16C/FMA here (the screening head needs them)");
        return;
    }
    std::uint32_t seed = 100;
    for (const std::int64_t cols : {64, 100, 333, 2560}) {
        const std::int64_t rows = 301;
        auto w = f16_matrix(rows, cols, ++seed);
        // a zero row, a row of one outlier, a row at F16's largest magnitudes
        for (std::int64_t j = 0; j < cols; ++j) {
            w[static_cast<std::size_t>(5 * cols + j)] = 0;
            w[static_cast<std::size_t>(7 * cols + j)] = quant::fp32_to_fp16(j == 3 ? 9.0f : 1e-3f);
            w[static_cast<std::size_t>(9 * cols + j)] =
                quant::fp32_to_fp16(j % 2 ? 60000.0f : -1.0f);
        }
        const kernels::detail::ScreenedHead screen(w.data(), rows, cols, 2);
        for (int input = 0; input < 4; ++input) {
            auto x = f16_input(cols, ++seed);
            if (input == 3)  // tiny activations: products near the bottom of float's range
                for (auto& v : x) v = quant::fp16_to_fp32(quant::fp32_to_fp16(v * 1e-4f));
            for (ScreenKernel kernel :
                 {ScreenKernel::Scalar, ScreenKernel::Avx2, ScreenKernel::Avx512}) {
                if (!kernels::detail::screen_kernel_supported(kernel)) continue;
                const float best = screen.compute_bounds(x.data(), kernel, 2, 1024);
                REQUIRE(std::isfinite(best));
                float largest_value = -kInf;
                for (std::int64_t r = 0; r < rows; ++r) {
                    const float v =
                        kernels::detail::dot_f16_f16c(w.data() + r * cols, x.data(), cols, 0);
                    const auto b = screen.bounds()[static_cast<std::size_t>(r)];
                    INFO("cols " << cols << ", row " << r << ": " << b.lower << " <= " << v
                                 << " <= " << b.upper);
                    REQUIRE(b.lower <= v);
                    REQUIRE(v <= b.upper);
                    largest_value = std::max(largest_value, v);
                }
                CHECK(best <= largest_value);
            }
        }
    }
}

TEST_CASE("matmul_argmax through the screening head picks the full F16 product's argmax") {
    if (!has_f16c()) {
        WARN("skipped: no AVX2/F16C/FMA here (the screening head needs them)");
        return;
    }
    auto screened = kernels::make_cpu_backend(2);
    auto full = kernels::make_cpu_backend(2);
    auto reference = kernels::make_reference_backend();
    std::uint32_t seed = 500;
    auto full_argmax = [&](const kernels::WeightView& w, const std::vector<float>& x) {
        std::vector<float> y(static_cast<std::size_t>(w.rows));
        full->matmul(w, x.data(), 1, y.data());
        return kernels::argmax_first(y.data(), w.rows);
    };
    for (const std::int64_t cols : {96, 330, 2560}) {
        const std::int64_t rows = 4099;
        auto w = f16_matrix(rows, cols, ++seed);
        // ties: row 3000 copies row 1000 and row 4000 copies it too, scaled up a little so that
        // for some inputs the copies lead
        for (std::int64_t j = 0; j < cols; ++j) {
            w[static_cast<std::size_t>(3000 * cols + j)] =
                w[static_cast<std::size_t>(1000 * cols + j)];
            w[static_cast<std::size_t>(4000 * cols + j)] =
                w[static_cast<std::size_t>(1000 * cols + j)];
        }
        const kernels::WeightView view = f16_view(w, rows, cols);
        REQUIRE(screened->prepare_screened_head(view, {}) > 0);
        CHECK(screened->kernel_names()[1].find("screened") != std::string::npos);
        for (int input = 0; input < 12; ++input) {
            std::vector<float> x = f16_input(cols, ++seed);
            if (input % 3 == 0) {  // make row 1000 (and so its copies) the largest by far
                const std::size_t row = static_cast<std::size_t>(1000 * cols);
                for (std::int64_t j = 0; j < cols; ++j)
                    x[static_cast<std::size_t>(j)] =
                        quant::fp16_to_fp32(w[row + static_cast<std::size_t>(j)]) > 0 ? 1.0f
                                                                                      : -1.0f;
            }
            const std::int64_t expected = full_argmax(view, x);
            INFO("cols " << cols << ", input " << input);
            CHECK(screened->matmul_argmax(view, x.data()) == expected);
            CHECK(reference->matmul_argmax(view, x.data()) == expected);
            if (input % 3 == 0) CHECK(expected == 1000);
        }
    }
    SECTION("non-finite weights and inputs") {
        const std::int64_t rows = 200, cols = 128;
        auto w = f16_matrix(rows, cols, 900);
        w[static_cast<std::size_t>(50 * cols + 7)] = quant::fp32_to_fp16(kInf);  // row 50: +inf
        w[static_cast<std::size_t>(60 * cols + 1)] = 0x7e00;                     // row 60: NaN
        const kernels::WeightView view = f16_view(w, rows, cols);
        REQUIRE(screened->prepare_screened_head(view, {}) > 0);
        for (int input = 0; input < 6; ++input) {
            std::vector<float> x = f16_input(cols, 901 + static_cast<std::uint32_t>(input));
            if (input == 4) x.assign(static_cast<std::size_t>(cols), 0.0f);  // zero input
            if (input == 5) x[9] = kNaN;                                     // NaN input
            INFO("input " << input);
            CHECK(screened->matmul_argmax(view, x.data()) == full_argmax(view, x));
        }
    }
}

TEST_CASE("matmul_top_k through the screening head picks the full product's rows and values") {
    if (!has_f16c()) {
        WARN("skipped: no AVX2/F16C/FMA here (the screening head needs them)");
        return;
    }
    auto screened = kernels::make_cpu_backend(2);
    auto full = kernels::make_cpu_backend(2);
    const std::int64_t rows = 5000, cols = 320;
    auto w = f16_matrix(rows, cols, 1234);
    for (std::int64_t j = 0; j < cols; ++j)  // ties: rows 10, 20 and 4990 are the same
        for (std::int64_t copy : {20, 4990})
            w[static_cast<std::size_t>(copy * cols + j)] =
                w[static_cast<std::size_t>(10 * cols + j)];
    const kernels::WeightView view = f16_view(w, rows, cols);
    REQUIRE(screened->prepare_screened_head(view, {}) > 0);
    auto sorted = [](std::vector<kernels::ScoredRow> v) {
        std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
            return a.first != b.first ? a.first > b.first : a.second < b.second;
        });
        return v;
    };
    std::uint32_t seed = 77;
    for (const int k : {1, 2, 40, 256, 4999, 5000}) {
        for (const float penalty : {1.0f, 1.3f, 0.6f}) {
            std::vector<float> x = f16_input(cols, ++seed);
            // the largest rows of this input penalized, and some others
            std::vector<float> y(static_cast<std::size_t>(rows));
            full->matmul(view, x.data(), 1, y.data());
            std::vector<std::int32_t> penalized = {
                static_cast<std::int32_t>(kernels::argmax_first(y.data(), rows)), 10, 20, 3, 4999};
            std::sort(penalized.begin(), penalized.end());
            penalized.erase(std::unique(penalized.begin(), penalized.end()), penalized.end());
            const kernels::TopKRule rule{k, penalty, penalized};
            std::vector<kernels::ScoredRow> a, b;
            screened->matmul_top_k(view, x.data(), rule, a);
            full->matmul_top_k(view, x.data(), rule, b);
            INFO("k " << k << ", penalty " << penalty);
            CHECK(a.size() == static_cast<std::size_t>(k));
            CHECK(sorted(a) == sorted(b));
            // the default's rule by hand for the best one
            float best = -kInf;
            std::int32_t best_row = -1;
            for (std::int32_t r = 0; r < rows; ++r) {
                float v = y[static_cast<std::size_t>(r)];
                if (std::binary_search(penalized.begin(), penalized.end(), r))
                    v = v > 0 ? v / penalty : v * penalty;
                if (v > best) {
                    best = v;
                    best_row = r;
                }
            }
            CHECK(sorted(b)[0] == kernels::ScoredRow{best, best_row});
        }
    }
}

TEST_CASE("a screened head reads the rows it computes through its reader, and only those") {
    if (!has_f16c()) {
        WARN("skipped: no AVX2/F16C/FMA here (the screening head needs them)");
        return;
    }
    const std::int64_t rows = 3000, cols = 256;
    auto w = f16_matrix(rows, cols, 4321);
    // row 2000 copies row 1000, and the input follows row 1000's signs: the two lead, tied
    for (std::int64_t j = 0; j < cols; ++j)
        w[static_cast<std::size_t>(2000 * cols + j)] = w[static_cast<std::size_t>(1000 * cols + j)];
    const kernels::WeightView view = f16_view(w, rows, cols);
    // The reader copies the row's bytes from a second copy of the matrix: the results must come
    // from what it hands over (a changed row there changes the answer).
    std::vector<std::uint16_t> file = w;
    std::atomic<int> reads{0};
    std::atomic<bool> whole_rows{true};  // (no Catch assertions on the backend's threads)
    auto screened = kernels::make_cpu_backend(2);
    REQUIRE(screened->prepare_screened_head(view, [&](const std::uint8_t* at, std::size_t bytes,
                                                      void* out) {
        ++reads;
        CHECK(bytes == static_cast<std::size_t>(cols) * 2);
        std::memcpy(out, reinterpret_cast<const std::uint8_t*>(file.data()) + (at - view.data),
                    bytes);
    }) > 0);
    auto full = kernels::make_cpu_backend(2);
    std::vector<float> x(static_cast<std::size_t>(cols));
    for (std::int64_t j = 0; j < cols; ++j)
        x[static_cast<std::size_t>(j)] =
            quant::fp16_to_fp32(w[static_cast<std::size_t>(1000 * cols + j)]) > 0 ? 1.0f : -1.0f;
    std::vector<float> y(static_cast<std::size_t>(rows));
    full->matmul(view, x.data(), 1, y.data());
    const std::int64_t expected = kernels::argmax_first(y.data(), rows);
    REQUIRE(expected == 1000);
    CHECK(screened->matmul_argmax(view, x.data()) == expected);
    CHECK(whole_rows);
    INFO(reads << " rows read");
    CHECK(reads >= 2);
    CHECK(reads < rows / 10);
    // row 1000 zeroed where the reader copies from: its value becomes 0 and its twin wins
    std::fill(file.begin() + 1000 * cols, file.begin() + 1001 * cols, std::uint16_t{0});
    CHECK(screened->matmul_argmax(view, x.data()) == 2000);
}

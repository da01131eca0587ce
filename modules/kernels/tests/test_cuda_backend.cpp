// The CUDA backend against the reference backend. On a machine without a GPU (CI) the kernel
// checks are skipped with a message, and what remains checked is that asking for CUDA fails
// clearly. On the lent H100 they run (docs/performance.md records the runs).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/kernels/cuda_backend.hpp"
#include "bitnet/kernels/cuda_info.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

using namespace bitnet;
using quant::TypeId;

namespace {

bool have_gpu() {
    const auto info = kernels::cuda_info();
    if (info.device_count > 0) return true;
    WARN("CUDA kernel checks skipped: " << (info.compiled ? info.reason : "not a gpu build"));
    return false;
}

struct Weights {
    std::vector<std::uint8_t> bytes;
    kernels::WeightView view;
};

Weights i2s_weights(std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
    std::vector<float> values(static_cast<std::size_t>(rows * cols));
    const float s = 0.0371f;
    for (auto& v : values) v = s * static_cast<float>(static_cast<int>(rng() % 3) - 1);
    values[0] = s;
    Weights w;
    w.bytes.resize(quant::tensor_bytes(quant::traits(TypeId::I2_S), values.size()));
    quant::quantize_i2_s(values.data(), static_cast<std::int64_t>(values.size()), w.bytes.data());
    w.view = {TypeId::I2_S, w.bytes.data(), rows, cols,
              quant::i2s_scale(w.bytes.data(), rows * cols)};
    return w;
}

Weights f16_weights(std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 0.02f);
    Weights w;
    w.bytes.resize(static_cast<std::size_t>(rows * cols) * 2);
    for (std::int64_t i = 0; i < rows * cols; ++i) {
        const std::uint16_t h = quant::fp32_to_fp16(dist(rng));
        std::memcpy(w.bytes.data() + 2 * i, &h, 2);
    }
    w.view = {TypeId::F16, w.bytes.data(), rows, cols, 1.0f};
    return w;
}

std::vector<float> activations(std::int64_t count, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(count));
    for (auto& v : x) v = dist(rng);
    x[0] = 40.0f;  // an outlier, as real activations have
    return x;
}

}  // namespace

TEST_CASE("cuda backend: asking for a device that is not there is a clear error") {
    const auto info = kernels::cuda_info();
    const int missing = info.device_count;  // one past the last device
    try {
        kernels::make_cuda_backend(missing);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::Unsupported);
        CHECK_THAT(e.what(), Catch::Contains("cuda:" + std::to_string(missing)) &&
                                 Catch::Contains("--device cpu"));
    }
}

TEST_CASE("cuda backend: I2_S products are bit-identical to the reference backend") {
    if (!have_gpu()) return;
    std::mt19937 rng(7);
    auto gpu = kernels::make_cuda_backend(0);
    auto ref = kernels::make_reference_backend();
    std::vector<Weights> alive;  // the backend keys device copies by host address
    for (const std::int64_t rows : {1, 3, 17, 640, 2560})
        for (const std::int64_t cols : {128, 384, 2560, 6912})
            // 1..8 tokens: the split-K decode kernel; 9..32: 32-token tiles; 33+: the GEMM.
            for (const std::int64_t n : {1, 3, 9, 17, 33, 70}) {
                if (rows * cols * n > 40'000'000) continue;
                INFO(rows << " x " << cols << ", " << n << " token(s)");
                alive.push_back(i2s_weights(rows, cols, rng));
                const Weights& w = alive.back();
                const auto x = activations(n * cols, rng);
                std::vector<float> a(static_cast<std::size_t>(n * rows), NAN),
                    b(static_cast<std::size_t>(n * rows), NAN);
                gpu->matmul(w.view, x.data(), n, a.data());
                ref->matmul(w.view, x.data(), n, b.data());
                CHECK(a == b);
            }
}

TEST_CASE("cuda backend: F16 products match the reference within float rounding") {
    if (!have_gpu()) return;
    std::mt19937 rng(8);
    auto gpu = kernels::make_cuda_backend(0);
    auto ref = kernels::make_reference_backend();
    std::vector<Weights> alive;
    for (const std::int64_t rows : {1, 33, 4096})
        for (const std::int64_t n : {1, 5, 12}) {
            const std::int64_t cols = 2560;
            alive.push_back(f16_weights(rows, cols, rng));
            const Weights& w = alive.back();
            const auto x = activations(n * cols, rng);
            std::vector<float> a(static_cast<std::size_t>(n * rows), NAN),
                b(static_cast<std::size_t>(n * rows));
            gpu->matmul(w.view, x.data(), n, a.data());
            ref->matmul(w.view, x.data(), n, b.data());
            double diff = 0, norm = 0;
            for (std::size_t i = 0; i < a.size(); ++i) {
                diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
                norm += static_cast<double>(b[i]) * b[i];
            }
            INFO(rows << " rows, " << n << " token(s)");
            CHECK(std::sqrt(diff / norm) < 1e-5);
        }
}

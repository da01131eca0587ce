#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "bitnet/quantization/activation.hpp"

using namespace bitnet::quant;

TEST_CASE("int8 activation quantization of hand-picked values") {
    const std::vector<float> x = {1.0f, -0.5f, 0.25f, 0.0f};
    std::vector<std::int8_t> q(4);
    auto act = quantize_activations_i8(x.data(), 4, q.data());
    CHECK(act.scale == 127.0f);
    CHECK(q[0] == 127);
    CHECK(q[1] == -64);  // -63.5 rounds half to even -> -64
    CHECK(q[2] == 32);   // 31.75 -> 32
    CHECK(q[3] == 0);
    CHECK(act.sum == 127 - 64 + 32);
}

TEST_CASE("rounding is half to even, not half away from zero") {
    // amax 127 -> a = 1, so q = nearest_int(x) exactly.
    const std::vector<float> x = {127.0f, 2.5f, 3.5f, -2.5f, 0.5f};
    std::vector<std::int8_t> q(5);
    auto act = quantize_activations_i8(x.data(), 5, q.data());
    CHECK(act.scale == 1.0f);
    CHECK(q[1] == 2);
    CHECK(q[2] == 4);
    CHECK(q[3] == -2);
    CHECK(q[4] == 0);
}

TEST_CASE("an all-zero row uses the 1e-5 floor and gives zeros") {
    std::vector<float> x(64, 0.0f);
    std::vector<std::int8_t> q(64, 5);
    auto act = quantize_activations_i8(x.data(), 64, q.data());
    CHECK(act.scale == static_cast<float>(127.0 / 1e-5));
    CHECK(act.sum == 0);
    for (auto v : q) CHECK(v == 0);
}

// The GPU kernels compute the scale 127 / max(amax, 1e-5) (in double, rounded to float) as one
// float division from amax = 1e-5 on (kernels/src/cuda/activation_scale.cuh): the same float for
// every float amax there, because a double holds more than twice a float's precision (double
// rounding of a quotient of floats through double is innocuous). Checked here for all of them.
TEST_CASE("the int8 scale's double division equals a float division for every float from 1e-5") {
    const float first = std::nextafter(static_cast<float>(1e-5), 0.0f);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &first, sizeof bits);
    std::uint64_t checked = 0, differing = 0;
    for (; bits < 0x7f800000u; ++bits) {  // up to the largest finite float
        float m = 0.0f;
        std::memcpy(&m, &bits, sizeof m);
        if (static_cast<double>(m) < 1e-5) continue;
        const float by_double = static_cast<float>(127.0 / std::max(static_cast<double>(m), 1e-5));
        const float by_float = 127.0f / m;
        differing += std::memcmp(&by_double, &by_float, sizeof by_float) != 0 ? 1 : 0;
        ++checked;
    }
    CHECK(checked > 1'000'000'000u);
    CHECK(differing == 0);
}

TEST_CASE("quantized activations reconstruct x within half a step") {
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 2.0f);
    std::vector<float> x(2560);
    for (auto& v : x) v = dist(rng);
    std::vector<std::int8_t> q(x.size());
    auto act = quantize_activations_i8(x.data(), static_cast<std::int64_t>(x.size()), q.data());
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        REQUIRE(std::fabs(static_cast<float>(q[i]) / act.scale - x[i]) <= 0.5001f / act.scale);
        sum += q[i];
    }
    CHECK(sum == act.sum);
}

TEST_CASE("the W1.58A8 output rule recovers the float dot product of ternary weights") {
    // codes c in {0,1,2} mean w = (c-1)*s; y = ((D - S)/a) * s with D = sum c*q.
    const std::vector<float> x = {0.5f, -1.0f, 0.25f, 1.0f};
    const std::vector<int> codes = {2, 0, 1, 2};  // w = s * {1, -1, 0, 1}
    std::vector<std::int8_t> q(4);
    auto act = quantize_activations_i8(x.data(), 4, q.data());
    std::int32_t dot = 0;
    for (int k = 0; k < 4; ++k) dot += codes[k] * q[k];
    const float s = 0.5f;
    const float expected = s * (0.5f + 1.0f + 0.0f + 1.0f);
    CHECK(i2s_output(dot, act, s) == Approx(expected).epsilon(0.01));
}

TEST_CASE("the vectorized activation quantization gives the scalar reference's bits") {
    std::mt19937 rng(3);
    std::normal_distribution<float> dist(0.0f, 4.0f);
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const std::int64_t n : {1, 7, 8, 31, 32, 33, 100, 2560, 6912}) {
        for (int variant = 0; variant < 5; ++variant) {
            std::vector<float> x(static_cast<std::size_t>(n));
            for (auto& v : x) v = dist(rng);
            if (variant == 1) x[static_cast<std::size_t>(n / 2)] = 1e30f;  // one huge value
            if (variant == 2)  // ties: amax 127 makes a = 1, so halves are exact ties
                for (std::int64_t i = 0; i < n; ++i)
                    x[static_cast<std::size_t>(i)] =
                        i == 0 ? 127.0f : static_cast<float>(i % 9) - 4.5f;
            if (variant == 3) x[static_cast<std::size_t>(n - 1)] = nan;
            if (variant == 4) x[0] = -inf;
            std::vector<std::int8_t> fast(x.size()), reference(x.size());
            const ActivationScale a = quantize_activations_i8(x.data(), n, fast.data());
            const ActivationScale b = quantize_activations_i8_scalar(x.data(), n, reference.data());
            INFO("n " << n << ", variant " << variant);
            CHECK(a.scale == b.scale);
            CHECK(a.sum == b.sum);
            CHECK(fast == reference);
        }
    }
}

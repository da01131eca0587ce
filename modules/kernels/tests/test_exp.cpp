#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../src/cpu/exp_via_double.hpp"

using bitnet::kernels::detail::exp_shifted;
using bitnet::kernels::detail::exp_via_double;

namespace {

bool same_bits(float a, float b) {
    return std::memcmp(&a, &b, sizeof a) == 0;
}

}  // namespace

TEST_CASE("softmax's exponential is e^x correctly rounded to float") {
    // Against expl in long double (64-bit mantissa), rounded once: the nearest float except where
    // e^x lies within ~1e-14 of a halfway point, which a million random inputs do not hit.
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> wide(-110.0f, 90.0f), softmax_range(-20.0f, 0.0f);
    int mismatches = 0;
    for (int i = 0; i < 1000000; ++i) {
        const float x = i % 2 ? wide(rng) : softmax_range(rng);
        const float expected = static_cast<float>(std::exp(static_cast<long double>(x)));
        if (!same_bits(exp_via_double(x), expected)) ++mismatches;
    }
    CHECK(mismatches == 0);
    // Edges: exact values, the subnormal and overflow ends, non-numbers.
    CHECK(exp_via_double(0.0f) == 1.0f);
    CHECK(exp_via_double(-0.0f) == 1.0f);
    CHECK(exp_via_double(1.0f) == static_cast<float>(std::exp(1.0L)));
    CHECK(exp_via_double(-100.0f) == static_cast<float>(std::exp(-100.0L)));  // subnormal
    CHECK(exp_via_double(-104.0f) == 0.0f);
    CHECK(exp_via_double(-std::numeric_limits<float>::infinity()) == 0.0f);
    CHECK(exp_via_double(88.7f) == static_cast<float>(std::exp(static_cast<long double>(88.7f))));
    CHECK(std::isinf(exp_via_double(89.0f)));
    CHECK(std::isinf(exp_via_double(std::numeric_limits<float>::infinity())));
    CHECK(std::isnan(exp_via_double(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("the vectorized exponential gives the scalar one's bits for every kind of input") {
    std::mt19937 rng(11);
    std::vector<float> x(4101);  // not a multiple of 8: the scalar tail too
    for (std::size_t i = 0; i < x.size(); ++i) {
        if (i % 3 == 0) {  // any bit pattern: NaNs, infinities, subnormals, huge values
            const std::uint32_t bits = static_cast<std::uint32_t>(rng());
            std::memcpy(&x[i], &bits, 4);
        } else {
            x[i] = std::uniform_real_distribution<float>(-120.0f, 100.0f)(rng);
        }
    }
    for (const float shift : {0.0f, 3.5f, -7.25f}) {
        std::vector<float> y = x;
        exp_shifted(y.data(), static_cast<std::int64_t>(y.size()), shift);
        int differ = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const float expected = exp_via_double(x[i] - shift);
            if (!(same_bits(y[i], expected) || (std::isnan(y[i]) && std::isnan(expected))))
                ++differ;
        }
        INFO("shift " << shift);
        CHECK(differ == 0);
    }
}

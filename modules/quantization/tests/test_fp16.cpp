#include <catch2/catch.hpp>

#include <immintrin.h>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/quantization/fp16.hpp"

using namespace bitnet::quant;

namespace {
// The hardware conversion (F16C, round to nearest even) is an independent reference.
__attribute__((target("f16c"))) std::uint16_t hardware_fp32_to_fp16(float f) {
    return static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hardware_fp16_to_fp32(std::uint16_t h) {
    return _cvtsh_ss(h);
}
}  // namespace

TEST_CASE("fp16 conversion of hand-picked values") {
    CHECK(fp32_to_fp16(1.0f) == 0x3c00);
    CHECK(fp32_to_fp16(-2.0f) == 0xc000);
    CHECK(fp32_to_fp16(65504.0f) == 0x7bff);
    CHECK(fp32_to_fp16(65520.0f) == 0x7c00);                      // rounds up to infinity
    CHECK(fp32_to_fp16(65519.0f) == 0x7bff);                      // rounds down to max half
    CHECK(fp32_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);         // smallest subnormal
    CHECK(fp32_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);         // tie to even -> 0
    CHECK(fp32_to_fp16(std::ldexp(3.0f, -25)) == 0x0002);         // tie to even -> 2
    CHECK(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie to even (down)
    CHECK(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);  // tie to even (up)
    CHECK(fp16_to_fp32(0x3555) == Approx(0.333251953125f).epsilon(0));
    CHECK(std::isnan(fp16_to_fp32(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()))));
    CHECK(std::isinf(fp16_to_fp32(0x7c00)));
}

TEST_CASE("every half value survives fp16 -> fp32 -> fp16 exactly") {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const auto half = static_cast<std::uint16_t>(h);
        const float f = fp16_to_fp32(half);
        if (std::isnan(f)) continue;
        REQUIRE(fp32_to_fp16(f) == half);
    }
}

TEST_CASE("fp16 conversion matches the F16C hardware on random floats") {
    if (!bitnet::cpu_features().f16c) {
        WARN("SKIPPED: this CPU has no F16C");
        return;
    }
    std::mt19937 rng(1234);
    std::uniform_int_distribution<std::uint32_t> bits;
    for (int i = 0; i < 200000; ++i) {
        std::uint32_t b = bits(rng);
        // Bias half of the samples into the half-precision range where rounding matters.
        if (i % 2) b = (b & 0x807fffffu) | ((100u + (b >> 23) % 45u) << 23);
        const float f = bits_to_float(b);
        if (std::isnan(f)) continue;
        REQUIRE(fp32_to_fp16(f) == hardware_fp32_to_fp16(f));
    }
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const float ours = fp16_to_fp32(static_cast<std::uint16_t>(h));
        const float hw = hardware_fp16_to_fp32(static_cast<std::uint16_t>(h));
        if (std::isnan(hw)) {
            REQUIRE(std::isnan(ours));
        } else {
            REQUIRE(float_to_bits(ours) == float_to_bits(hw));
        }
    }
}

TEST_CASE("bf16 keeps the upper 16 bits with round-to-nearest-even") {
    CHECK(fp32_to_bf16(1.0f) == 0x3f80);
    CHECK(bf16_to_fp32(0x3f80) == 1.0f);
    CHECK(fp32_to_bf16(bits_to_float(0x3f808000u)) == 0x3f80);  // tie, even stays
    CHECK(fp32_to_bf16(bits_to_float(0x3f818000u)) == 0x3f82);  // tie, odd rounds up
    CHECK(fp32_to_bf16(bits_to_float(0x3f808001u)) == 0x3f81);  // above tie
    CHECK(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "bitnet/kernels/ternary_dot.hpp"
#include "bitnet/quantization/formats.hpp"

using namespace bitnet;

TEST_CASE("the reference I2_S dot equals a dot over unpacked codes") {
    std::mt19937 rng(21);
    const int n = 512;
    std::vector<std::uint8_t> codes(n);
    std::vector<std::int8_t> q(n);
    for (int i = 0; i < n; ++i) {
        codes[i] = static_cast<std::uint8_t>(rng() % 3);
        q[i] = static_cast<std::int8_t>(static_cast<int>(rng() % 256) - 128);
    }
    std::vector<std::uint8_t> packed(n / 4);
    quant::pack_i2s_codes(codes.data(), n, packed.data());
    std::int32_t expected = 0;
    for (int i = 0; i < n; ++i) expected += codes[i] * q[i];
    CHECK(kernels::dot_i2s_i8_reference(packed.data(), q.data(), n) == expected);
}

TEST_CASE("extreme activations do not overflow the 32-bit accumulator for 2B4T rows") {
    const int n = 6912;  // the longest row of the 2B4T shape
    std::vector<std::uint8_t> codes(n, 2);
    std::vector<std::int8_t> q(n, -128);
    std::vector<std::uint8_t> packed(n / 4);
    quant::pack_i2s_codes(codes.data(), n, packed.data());
    CHECK(kernels::dot_i2s_i8_reference(packed.data(), q.data(), n) == 2 * -128 * n);
}

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/type_traits.hpp"

using namespace bitnet::quant;

TEST_CASE("I2_S worked example: +s, 0, -s, +s at elements 0, 32, 64, 96 pack to 0x92") {
    const float s = 0.75f;
    std::vector<float> w(128, 0.0f);
    w[0] = s;
    w[32] = 0.0f;
    w[64] = -s;
    w[96] = s;
    std::vector<std::uint8_t> packed(128 / 4 + 32);
    quantize_i2_s(w.data(), 128, packed.data());
    CHECK(packed[0] == 0x92);
    CHECK(packed[1] == 0x55);  // four zeros -> code 1 in every field: 01 01 01 01
    CHECK(i2s_scale(packed.data(), 128) == s);
    for (std::size_t i = 128 / 4 + 4; i < packed.size(); ++i) CHECK(packed[i] == 0);  // padding
}

TEST_CASE("I2_S of ternary times s is lossless and the scale sits right after the codes") {
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> trit(-1, 1);
    const std::int64_t n = 2560 * 4;
    const float s = 0.0371f;
    std::vector<float> w(n);
    for (auto& x : w) x = s * static_cast<float>(trit(rng));
    w[17] = s;  // the absmax must be s
    std::vector<std::uint8_t> packed(tensor_bytes(traits(TypeId::I2_S), n));
    REQUIRE(packed.size() == static_cast<std::size_t>(n / 4 + 32));
    quantize_i2_s(w.data(), n, packed.data());
    float stored;
    std::memcpy(&stored, packed.data() + n / 4, 4);
    CHECK(stored == s);
    std::vector<float> back(n);
    dequantize_i2_s(packed.data(), n, back.data());
    CHECK(back == w);
}

TEST_CASE("I2_S code lookup agrees with the byte/shift rule for every position of a block") {
    std::vector<std::uint8_t> codes(256);
    std::mt19937 rng(3);
    for (auto& c : codes) c = static_cast<std::uint8_t>(rng() % 3);
    std::vector<std::uint8_t> packed(64);
    pack_i2s_codes(codes.data(), 256, packed.data());
    for (int j = 0; j < 256; ++j) {
        const int block = j / 128, within = j % 128;
        const int byte = packed[block * 32 + within % 32];
        REQUIRE(((byte >> (6 - 2 * (within / 32))) & 3) == codes[j]);
        REQUIRE(i2s_code_at(packed.data(), j) == codes[j]);
    }
}

TEST_CASE("I2_S quantization of non-ternary data keeps only the sign, near-zero becomes 0") {
    std::vector<float> w(128, 0.3f);
    w[1] = -0.1f;
    w[2] = 5e-7f;
    w[3] = 2.0f;
    std::vector<std::uint8_t> packed(64);
    quantize_i2_s(w.data(), 128, packed.data());
    CHECK(i2s_code_at(packed.data(), 0) == 2);
    CHECK(i2s_code_at(packed.data(), 1) == 0);
    CHECK(i2s_code_at(packed.data(), 2) == 1);
    CHECK(i2s_scale(packed.data(), 128) == 2.0f);
}

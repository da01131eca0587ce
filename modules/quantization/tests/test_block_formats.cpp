#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"
#include "bitnet/quantization/type_traits.hpp"

using namespace bitnet::quant;

namespace {

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// Ternary values times per-block scales that are exact in f16.
std::vector<float> random_ternary(std::size_t n, std::size_t block, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> trit(-1, 1);
    std::vector<float> v(n);
    for (std::size_t b = 0; b < n / block; ++b) {
        const float d = fp16_to_fp32(fp32_to_fp16(0.01f * static_cast<float>(b % 7 + 1)));
        for (std::size_t j = 0; j < block; ++j)
            v[b * block + j] = d * static_cast<float>(trit(rng));
        v[b * block] = d;  // make sure the block's absmax is d
    }
    return v;
}

std::uint16_t half_at(const std::uint8_t* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return h;
}

}  // namespace

TEST_CASE("Q8_0 block of hand-picked values") {
    std::vector<float> x(32, 0.0f);
    x[0] = 1.27f;
    x[1] = -0.635f;
    x[2] = 0.01f;
    std::vector<std::uint8_t> block(34);
    quantize_q8_0(x.data(), 32, block.data());
    CHECK(half_at(block.data()) == fp32_to_fp16(0.01f));  // d = amax / 127
    CHECK(static_cast<std::int8_t>(block[2]) == 127);
    CHECK(static_cast<std::int8_t>(block[3]) == -64);  // roundf(-63.5) = -64 (away from 0)
    CHECK(static_cast<std::int8_t>(block[4]) == 1);
    std::vector<float> y(32);
    dequantize_q8_0(block.data(), 32, y.data());
    const float d = fp16_to_fp32(half_at(block.data()));
    CHECK(y[0] == 127.0f * d);
    CHECK(y[1] == -64.0f * d);
    CHECK(y[5] == 0.0f);
}

TEST_CASE("Q4_0 block: the largest-magnitude value maps to nibble 0") {
    std::vector<float> x(32, 0.0f);
    x[0] = -8.0f;  // largest magnitude, negative: d = -8 / -8 = 1
    x[16] = 7.0f;  // high nibble of byte 0
    x[1] = 3.0f;
    std::vector<std::uint8_t> block(18);
    quantize_q4_0(x.data(), 32, block.data());
    CHECK(fp16_to_fp32(half_at(block.data())) == 1.0f);
    CHECK((block[2] & 0x0f) == 0);   // -8 + 8
    CHECK((block[2] >> 4) == 15);    // 7 + 8
    CHECK((block[3] & 0x0f) == 11);  // 3 + 8
    std::vector<float> y(32);
    dequantize_q4_0(block.data(), 32, y.data());
    CHECK(y[0] == -8.0f);
    CHECK(y[16] == 7.0f);
    CHECK(y[1] == 3.0f);
    CHECK(y[2] == 0.0f);
}

TEST_CASE("TQ2_0 places element chunk*128 + k*32 + m at bits 2k of byte chunk*32 + m") {
    std::vector<float> x(256, 0.0f);
    x[0] = 1.0f;          // chunk 0, k 0, m 0 -> byte 0 bits 0-1 = code 2
    x[32] = -1.0f;        // chunk 0, k 1, m 0 -> byte 0 bits 2-3 = code 0
    x[128 + 96 + 5] = 1;  // chunk 1, k 3, m 5 -> byte 37 bits 6-7 = code 2
    std::vector<std::uint8_t> block(66);
    quantize_tq2_0(x.data(), 256, block.data());
    CHECK(block[0] == (2 | (0 << 2) | (1 << 4) | (1 << 6)));
    CHECK(block[37] == (1 | (1 << 2) | (1 << 4) | (2 << 6)));
    CHECK(fp16_to_fp32(half_at(block.data() + 64)) == 1.0f);
}

TEST_CASE("TQ1_0 bytes hold ceil(q*256/243) of base-3 numbers, first element most significant") {
    std::vector<float> x(256, 0.0f);
    // Byte 0 holds elements 0, 32, 64, 96, 128. Choose trits 2,0,1,2,1 -> base-3 20121 = 178.
    x[0] = 1.0f;
    x[32] = -1.0f;
    x[64] = 0.0f;
    x[96] = 1.0f;
    x[128] = 0.0f;
    std::vector<std::uint8_t> block(54);
    quantize_tq1_0(x.data(), 256, block.data());
    const int q = 2 * 81 + 0 * 27 + 1 * 9 + 2 * 3 + 1;
    CHECK(block[0] == (q * 256 + 242) / 243);
    // An independent decode: floor(byte * 243 / 256) recovers q, then plain base-3 digits.
    const int recovered = block[0] * 243 / 256;
    CHECK(recovered == q);
}

TEST_CASE("TQ1_0 digits decode by independent base-3 arithmetic for every element") {
    auto x = random_ternary(1024, 256, 5);
    std::vector<std::uint8_t> packed(4 * 54);
    quantize_tq1_0(x.data(), 1024, packed.data());
    for (int b = 0; b < 4; ++b) {
        const std::uint8_t* block = packed.data() + b * 54;
        const float d = fp16_to_fp32(half_at(block + 52));
        auto digit = [&](int byte_index, int position, int digits) {
            int q = block[byte_index] * 243 / 256;  // undo the ceil(q*256/243) packing
            if (digits == 4) q /= 3;                // qh bytes carry one extra factor of 3
            for (int k = digits - 1; k > position; --k) q /= 3;
            return q % 3;
        };
        for (int e = 0; e < 256; ++e) {
            int value;
            if (e < 160)
                value = digit(e % 32, e / 32, 5);
            else if (e < 240)
                value = digit(32 + (e - 160) % 16, (e - 160) / 16, 5);
            else
                value = digit(48 + (e - 240) % 4, (e - 240) / 4, 4);
            REQUIRE(static_cast<float>(value - 1) * d == x[b * 256 + e]);
        }
    }
}

TEST_CASE("ternary data round-trips exactly through TQ2_0, TQ1_0 and I2_S") {
    const auto x = random_ternary(4096, 256, 42);
    for (TypeId id : {TypeId::TQ2_0, TypeId::TQ1_0}) {
        const TypeTraits& t = traits(id);
        std::vector<std::uint8_t> packed(tensor_bytes(t, x.size()));
        t.quantize(x.data(), static_cast<std::int64_t>(x.size()), packed.data());
        std::vector<float> y(x.size());
        t.dequantize(packed.data(), static_cast<std::int64_t>(x.size()), y.data());
        CHECK(y == x);
    }
}

TEST_CASE("Q6_K dequantizes by the documented bit layout") {
    // Build a block with random bytes and decode every element by the layout rule written
    // independently: element e = half*128 + k*32 + l.
    std::mt19937 rng(7);
    std::vector<std::uint8_t> block(210);
    for (auto& b : block) b = static_cast<std::uint8_t>(rng());
    const std::uint16_t d_bits = fp32_to_fp16(0.0123f);
    std::memcpy(block.data() + 208, &d_bits, 2);
    std::vector<float> y(256);
    dequantize_q6_k(block.data(), 256, y.data());
    const float d = fp16_to_fp32(d_bits);
    for (int e = 0; e < 256; ++e) {
        const int half = e / 128, k = (e % 128) / 32, l = e % 32;
        const int low_byte = block[half * 64 + l + 32 * (k & 1)];
        const int low = (k < 2) ? (low_byte & 0xF) : (low_byte >> 4);
        const int high = (block[128 + half * 32 + l] >> (2 * k)) & 3;
        const int q = (low | (high << 4)) - 32;
        const int scale = static_cast<std::int8_t>(block[192 + half * 8 + l / 16 + 2 * k]);
        REQUIRE(y[e] == d * static_cast<float>(scale) * static_cast<float>(q));
    }
}

TEST_CASE("F16 and BF16 tensors round-trip within their precision") {
    const auto x = random_floats(1000, 3);
    std::vector<std::uint8_t> packed(2000);
    std::vector<float> y(1000);
    quantize_f16(x.data(), 1000, packed.data());
    dequantize_f16(packed.data(), 1000, y.data());
    for (int i = 0; i < 1000; ++i) REQUIRE(std::fabs(y[i] - x[i]) <= std::fabs(x[i]) * 0x1p-11f);
    quantize_bf16(x.data(), 1000, packed.data());
    dequantize_bf16(packed.data(), 1000, y.data());
    for (int i = 0; i < 1000; ++i) REQUIRE(std::fabs(y[i] - x[i]) <= std::fabs(x[i]) * 0x1p-8f);
}

TEST_CASE(
    "Q8_0 and Q4_0 reconstruction error is bounded by half a step plus the f16 rounding of d") {
    // Quantization uses the float scale; the block stores it rounded to f16 (relative error
    // <= 2^-11), which moves a reconstructed value by at most |q| * d * 2^-11.
    const auto x = random_floats(32 * 64, 9);
    std::vector<float> y(x.size());
    std::vector<std::uint8_t> packed(64 * 34);
    quantize_q8_0(x.data(), static_cast<std::int64_t>(x.size()), packed.data());
    dequantize_q8_0(packed.data(), static_cast<std::int64_t>(x.size()), y.data());
    for (std::size_t b = 0; b < 64; ++b) {
        const float d = fp16_to_fp32(half_at(packed.data() + b * 34));
        for (int j = 0; j < 32; ++j)
            REQUIRE(std::fabs(y[b * 32 + j] - x[b * 32 + j]) <=
                    0.5f * d + 128.0f * d * 0x1p-11f + 1e-6f);
    }
    quantize_q4_0(x.data(), static_cast<std::int64_t>(x.size()), packed.data());
    dequantize_q4_0(packed.data(), static_cast<std::int64_t>(x.size()), y.data());
    for (std::size_t b = 0; b < 64; ++b) {
        const float d = std::fabs(fp16_to_fp32(half_at(packed.data() + b * 18)));
        for (int j = 0; j < 32; ++j)  // Q4_0 maps the extreme to -8, so the opposite side clips at
                                      // +7: up to one full step.
            REQUIRE(std::fabs(y[b * 32 + j] - x[b * 32 + j]) <=
                    1.0f * d + 8.0f * d * 0x1p-11f + 1e-6f);
    }
}

TEST_CASE("IQ2_S dequantizes a hand-built block by the documented layout") {
    std::vector<std::uint8_t> block(82, 0);
    const std::uint16_t one = fp32_to_fp16(1.0f);
    std::memcpy(block.data(), &one, 2);
    block[74] = 0x21;      // scales[0]: low nibble 1 -> (0.5+1)*0.25 = 0.375; high 2 -> 0.625
    block[2] = 5;          // qs[0]: group 0 uses grid entry 5 = 0x0808080808190819
    block[2 + 32] = 0x02;  // signs[0]: element 1 negative
    block[2 + 2] = 0xff;   // qs[2] with qh bits 4-5 set: entry 0x3ff = 1023 = all 43
    block[66] = 0x30;      // qh[0]
    std::vector<float> y(256);
    dequantize_iq2_s(block.data(), 256, y.data());
    CHECK(y[0] == 0.375f * 25);
    CHECK(y[1] == -0.375f * 8);
    CHECK(y[2] == 0.375f * 25);
    CHECK(y[3] == 0.375f * 8);
    CHECK(y[8] == 0.375f * 8);  // group 1: entry 0 (all 8), first sub-block scale
    for (int j = 16; j < 24; ++j) CHECK(y[j] == 0.625f * 43);  // group 2: second sub-block scale
    CHECK(y[32] == 0.5f * 0.25f * 8);  // the next 32 elements: scale nibble 0 -> 0.125
}

TEST_CASE("the IQ2_S grid has 1024 strictly increasing entries of magnitudes 8, 25, 43") {
    // Read every entry back through the public dequantizer: d = 4 and scale nibble 0 give a
    // factor of 4 * 0.5 * 0.25 = 0.5, so each magnitude is 2 * y.
    std::vector<std::uint64_t> entries;
    for (unsigned index = 0; index < 1024; ++index) {
        std::vector<std::uint8_t> block(82, 0);
        const std::uint16_t four = fp32_to_fp16(4.0f);
        std::memcpy(block.data(), &four, 2);
        block[2] = static_cast<std::uint8_t>(index & 0xff);
        block[66] = static_cast<std::uint8_t>(index >> 8);  // qh bits 0-1 for l = 0
        std::vector<float> y(256);
        dequantize_iq2_s(block.data(), 256, y.data());
        std::uint64_t entry = 0;
        for (int j = 0; j < 8; ++j) {
            const int magnitude = static_cast<int>(2 * y[static_cast<std::size_t>(j)]);
            REQUIRE((magnitude == 8 || magnitude == 25 || magnitude == 43));
            entry |= static_cast<std::uint64_t>(magnitude) << (8 * j);
        }
        entries.push_back(entry);
    }
    for (std::size_t i = 1; i < entries.size(); ++i) REQUIRE(entries[i - 1] < entries[i]);
    CHECK(entries.front() == 0x0808080808080808ull);
    CHECK(entries.back() == 0x2b2b2b2b2b2b2b2bull);
}

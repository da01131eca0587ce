#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "bitnet/kernels/ops.hpp"
#include "bitnet/quantization/fp16.hpp"

using namespace bitnet::kernels;

TEST_CASE("rmsnorm of hand-picked values") {
    const std::vector<float> x = {1, 2, 3, 4};
    const std::vector<float> w = {1, 1, 2, 0.5f};
    std::vector<float> out(4);
    rmsnorm(x.data(), w.data(), 4, 0.0f, out.data());
    const float s = 1.0f / std::sqrt(7.5f);  // mean of squares (1+4+9+16)/4
    CHECK(out[0] == Approx(1 * s));
    CHECK(out[1] == Approx(2 * s));
    CHECK(out[2] == Approx(3 * s * 2));
    CHECK(out[3] == Approx(4 * s * 0.5f));
    rmsnorm(x.data(), nullptr, 4, 1.0f, out.data());  // eps enters under the root
    CHECK(out[3] == Approx(4.0f / std::sqrt(8.5f)));
}

TEST_CASE("NeoX RoPE pairs dimension i with i + d/2 and rotates by pos * base^(-2i/d)") {
    // head_dim 4: pair (0,2) turns by pos * 1, pair (1,3) by pos * 10000^(-1/2) = pos * 0.01.
    std::vector<float> x = {1, 1, 0, 0};
    rope_neox(x.data(), 1, 4, 4, 1, 10000.0f);
    CHECK(x[0] == Approx(std::cos(1.0)));
    CHECK(x[2] == Approx(std::sin(1.0)));
    CHECK(x[1] == Approx(std::cos(0.01)));
    CHECK(x[3] == Approx(std::sin(0.01)));
    std::vector<float> y = {0.3f, -0.2f, 0.5f, 0.7f};
    const std::vector<float> original = y;
    rope_neox(y.data(), 1, 4, 4, 0, 10000.0f);  // position 0: identity
    CHECK(y == original);
    rope_neox(y.data(), 1, 4, 4, 5, 10000.0f);
    rope_neox(y.data(), 1, 4, 4, -5, 10000.0f);  // rotating back restores it
    for (int i = 0; i < 4; ++i)
        CHECK(y[static_cast<std::size_t>(i)] ==
              Approx(original[static_cast<std::size_t>(i)]).margin(1e-6));
}

TEST_CASE("RoPE leaves dimensions beyond rope_dim untouched and handles several heads") {
    std::vector<float> x = {1, 0, 9, 9, 1, 0, 9, 9};  // 2 heads of 4, rope_dim 2
    rope_neox(x.data(), 2, 4, 2, 2, 10000.0f);
    CHECK(x[0] == Approx(std::cos(2.0)));
    CHECK(x[1] == Approx(std::sin(2.0)));
    CHECK(x[2] == 9);
    CHECK(x[4] == Approx(std::cos(2.0)));
    CHECK(x[7] == 9);
}

TEST_CASE("softmax of hand-picked values, with scale") {
    std::vector<float> x = {1, 2, 3};
    softmax(x.data(), 3, 1.0f);
    const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    CHECK(x[0] == Approx(std::exp(1.0) / z));
    CHECK(x[2] == Approx(std::exp(3.0) / z));
    std::vector<float> y = {2, 4};
    softmax(y.data(), 2, 0.5f);  // = softmax([1, 2])
    CHECK(y[1] == Approx(std::exp(2.0) / (std::exp(1.0) + std::exp(2.0))));
    std::vector<float> big = {1000, 1000};
    softmax(big.data(), 2, 1.0f);  // no overflow
    CHECK(big[0] == Approx(0.5));
}

TEST_CASE("relu^2 * up and silu * up") {
    std::vector<float> g = {-1, 2, 0.5f};
    const std::vector<float> up = {3, 4, 2};
    relu_squared_mul(g.data(), up.data(), 3);
    CHECK(g[0] == 0);
    CHECK(g[1] == 16);
    CHECK(g[2] == Approx(0.5));
    std::vector<float> s = {1, 0, -2};
    silu_mul(s.data(), up.data(), 3);
    CHECK(s[0] == Approx(3.0 / (1.0 + std::exp(-1.0))));
    CHECK(s[1] == 0);
    CHECK(s[2] == Approx(2.0 * -2.0 / (1.0 + std::exp(2.0))));
}

namespace {

// Random gate, up and norm-weight rows of n values.
std::tuple<std::vector<float>, std::vector<float>, std::vector<float>> random_ffn_rows(
    std::int64_t n, std::mt19937& rng, std::normal_distribution<float>& dist) {
    std::vector<float> gate(static_cast<std::size_t>(n)), up(gate.size()), w(gate.size());
    for (std::size_t i = 0; i < gate.size(); ++i) {
        gate[i] = dist(rng);
        up[i] = dist(rng);
        w[i] = dist(rng);
    }
    return {gate, up, w};
}

}  // namespace

TEST_CASE("the fused relu^2 * up + rmsnorm equals the two passes bit for bit") {
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 2.0f);
    for (const std::int64_t n : {1, 7, 64, 6912}) {
        auto [gate, up, w] = random_ffn_rows(n, rng, dist);
        std::vector<float> two_passes = gate, fused = gate;
        relu_squared_mul(two_passes.data(), up.data(), n);
        rmsnorm(two_passes.data(), w.data(), n, 1e-5f, two_passes.data());
        relu_squared_mul_rmsnorm(fused.data(), up.data(), w.data(), n, 1e-5f);
        CHECK(fused == two_passes);
        // Without a weight: the plain normalization.
        std::vector<float> plain = gate;
        relu_squared_mul_rmsnorm(plain.data(), up.data(), nullptr, n, 1e-5f);
        std::vector<float> expected = gate;
        relu_squared_mul(expected.data(), up.data(), n);
        rmsnorm(expected.data(), nullptr, n, 1e-5f, expected.data());
        CHECK(plain == expected);
    }
}

TEST_CASE("the FFN sub-norm spread over threads gives the bits of one thread") {
    std::mt19937 rng(11);
    std::normal_distribution<float> dist(0.0f, 3.0f);
    for (const std::int64_t n : {1, 5, 9, 100, 6912}) {
        auto [gate, up, w] = random_ffn_rows(n, rng, dist);
        std::vector<float> alone = gate, spread = gate;
        relu_squared_mul_rmsnorm(alone.data(), up.data(), w.data(), n, 1e-5f, false);
        relu_squared_mul_rmsnorm(spread.data(), up.data(), w.data(), n, 1e-5f, true);
        CHECK(spread == alone);
        // And it is the norm: the normalized row (without weights) has mean square ~1.
        std::vector<float> plain = gate;
        relu_squared_mul_rmsnorm(plain.data(), up.data(), nullptr, n, 0.0f, true);
        double squares = 0;
        for (float v : plain) squares += static_cast<double>(v) * v;
        if (squares > 0) CHECK(squares / static_cast<double>(n) == Approx(1.0).epsilon(1e-5));
    }
}

TEST_CASE("RoPE from precomputed angles is rope_neox bit for bit") {
    std::mt19937 rng(5);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (const std::int64_t position : {0, 1, 17, 4095}) {
        std::vector<float> x(3 * 64);
        for (float& v : x) v = dist(rng);
        std::vector<float> y = x;
        rope_neox(x.data(), 3, 64, 48, position, 500000.0f);
        std::vector<float> cos(24), sin(24);
        rope_angles(position, 48, 500000.0f, cos.data(), sin.data());
        rope_neox_with(y.data(), 3, 64, 48, cos.data(), sin.data());
        CHECK(y == x);
        // Independent check: pair 1 turns by position * base^(-2/48).
        const double angle = static_cast<double>(position) * std::pow(500000.0, -2.0 / 48);
        CHECK(std::abs(cos[1] - std::cos(angle)) < 1e-3);
    }
}

TEST_CASE("attention over many cached rows gives the bits of one row at a time") {
    std::mt19937 rng(13);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (const std::int64_t n : {3, 8, 64, 100, 128}) {
        for (const std::int64_t count : {1, 3, 4, 9, 37}) {
            const std::int64_t stride = n + 24;  // rows of a wider cache row, as in the KV cache
            std::vector<std::uint16_t> rows(static_cast<std::size_t>(count * stride));
            for (auto& h : rows) h = bitnet::quant::fp32_to_fp16(dist(rng));
            std::vector<float> b(static_cast<std::size_t>(n)), w(static_cast<std::size_t>(count));
            for (float& v : b) v = dist(rng);
            for (float& v : w) v = dist(rng);
            std::vector<float> dots(w.size()), one_by_one(w.size());
            dot_f16_f32_rows(rows.data(), stride, count, b.data(), n, dots.data());
            for (std::int64_t p = 0; p < count; ++p)
                one_by_one[static_cast<std::size_t>(p)] =
                    dot_f16_f32(rows.data() + p * stride, b.data(), n);
            INFO("n " << n << ", rows " << count);
            CHECK(dots == one_by_one);
            std::vector<float> out = b, expected = b;
            add_scaled_f16_rows(out.data(), rows.data(), stride, w.data(), count, n);
            for (std::int64_t p = 0; p < count; ++p)
                add_scaled_f16(expected.data(), rows.data() + p * stride,
                               w[static_cast<std::size_t>(p)], n);
            CHECK(out == expected);
            // Against a plain double computation too (not only the same code's one-row path).
            double d0 = 0;
            for (std::int64_t i = 0; i < n; ++i)
                d0 += static_cast<double>(
                          bitnet::quant::fp16_to_fp32(rows[static_cast<std::size_t>(i)])) *
                      b[static_cast<std::size_t>(i)];
            CHECK(dots[0] == Approx(d0).margin(1e-4));
        }
    }
}

TEST_CASE("attention's value sums follow the chunk order of attention_order.hpp") {
    std::mt19937 rng(17);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (const std::int64_t n : {8, 100, 128, 300}) {
        for (const std::int64_t count : {1, 127, 128, 129, 257, 400}) {
            const std::int64_t stride = n + 24;
            std::vector<std::uint16_t> rows(static_cast<std::size_t>(count * stride));
            for (auto& h : rows) h = bitnet::quant::fp32_to_fp16(dist(rng));
            std::vector<float> rows32(rows.size()), w(static_cast<std::size_t>(count));
            for (std::size_t i = 0; i < rows.size(); ++i)
                rows32[i] = bitnet::quant::fp16_to_fp32(rows[i]);
            for (float& v : w) v = dist(rng);
            // The definition written out: per output, each chunk's products summed from 0 in
            // order, the chunks' sums added from 0 in order (float operations one at a time).
            std::vector<float> expected(static_cast<std::size_t>(n));
            for (std::int64_t i = 0; i < n; ++i) {
                float total = 0.0f;
                for (std::int64_t p0 = 0; p0 < count; p0 += kAttentionValueChunk) {
                    float chunk = 0.0f;
                    for (std::int64_t p = p0;
                         p < std::min<std::int64_t>(count, p0 + kAttentionValueChunk); ++p) {
                        const volatile float product =
                            w[static_cast<std::size_t>(p)] *
                            rows32[static_cast<std::size_t>(p * stride + i)];
                        chunk += product;
                    }
                    total += chunk;
                }
                expected[static_cast<std::size_t>(i)] = total;
            }
            INFO("n " << n << ", rows " << count);
            std::vector<float> out(static_cast<std::size_t>(n), 7.0f);  // overwritten
            attention_values_f16(out.data(), rows.data(), stride, w.data(), count, n);
            CHECK(out == expected);
            std::fill(out.begin(), out.end(), 7.0f);
            attention_values_f32(out.data(), rows32.data(), stride, w.data(), count, n);
            CHECK(out == expected);
            // Up to one chunk: plain position order (add_scaled_f16_rows into zeros).
            if (count <= kAttentionValueChunk) {
                std::vector<float> plain(static_cast<std::size_t>(n), 0.0f);
                add_scaled_f16_rows(plain.data(), rows.data(), stride, w.data(), count, n);
                CHECK(plain == expected);
            }
        }
    }
}

TEST_CASE("rounding and converting to f16 equal the scalar conversion for every kind of float") {
    // Random bit patterns (normals of every exponent, subnormals, infinities, NaN), plus the
    // overflow edge and ties; the SIMD path must give the bits of fp32_to_fp16 then back.
    std::mt19937 rng(41);
    std::vector<float> x(4099);
    for (auto& v : x) {
        const std::uint32_t bits = static_cast<std::uint32_t>(rng());
        std::memcpy(&v, &bits, 4);
    }
    for (std::size_t i = 0; i + 1 < x.size(); i += 97) x[i] = 65519.0f + static_cast<float>(i % 3);
    for (std::size_t i = 5; i < x.size(); i += 89) x[i] = 1.0f + 0x1p-11f;  // a tie
    std::vector<float> rounded = x;
    round_to_f16(rounded.data(), static_cast<std::int64_t>(rounded.size()));
    std::vector<std::uint16_t> halves(x.size());
    to_f16(x.data(), halves.data(), static_cast<std::int64_t>(x.size()));
    for (std::size_t i = 0; i < x.size(); ++i) {
        const float expected = bitnet::quant::fp16_to_fp32(bitnet::quant::fp32_to_fp16(x[i]));
        std::uint32_t a = 0, b = 0;
        std::memcpy(&a, &expected, 4);
        std::memcpy(&b, &rounded[i], 4);
        INFO("input " << x[i] << " at " << i);
        REQUIRE(a == b);
        REQUIRE(halves[i] == bitnet::quant::fp32_to_fp16(x[i]));
    }
}

TEST_CASE("rounding to f16 keeps representable values and rounds the rest to nearest even") {
    std::vector<float> x = {1.0f, 1.0f + 0x1p-11f, 1.0f + 0x1p-10f, 65504.0f};
    round_to_f16(x.data(), 4);
    CHECK(x[0] == 1.0f);
    CHECK(x[1] == 1.0f);  // tie -> even
    CHECK(x[2] == 1.0f + 0x1p-10f);
    CHECK(x[3] == 65504.0f);
}

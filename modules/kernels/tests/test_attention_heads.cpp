#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "bitnet/kernels/attention_heads.hpp"
#include "bitnet/kernels/ops.hpp"
#include "bitnet/quantization/fp16.hpp"

using namespace bitnet::kernels;
using bitnet::quant::fp16_to_fp32;

namespace {

struct Case {
    std::int64_t heads, count, n, stride;
};

// The one-head path the grouped kernel must reproduce: each head's scores one row at a time,
// softmax, then its values one row at a time, in chunks of kAttentionValueChunk rows each summed
// into zeros and added to the output in order (attention_order.hpp).
std::vector<float> one_head_at_a_time(const Case& c, const std::vector<float>& q,
                                      const std::vector<std::uint16_t>& k,
                                      const std::vector<std::uint16_t>& v, float scale) {
    std::vector<float> out(static_cast<std::size_t>(c.heads * c.n), 0.0f);
    std::vector<float> s(static_cast<std::size_t>(c.count));
    for (std::int64_t g = 0; g < c.heads; ++g) {
        for (std::int64_t p = 0; p < c.count; ++p)
            s[static_cast<std::size_t>(p)] =
                dot_f16_f32(k.data() + p * c.stride, q.data() + g * c.n, c.n);
        softmax(s.data(), c.count, scale);
        std::vector<float> chunk(static_cast<std::size_t>(c.n));
        for (std::int64_t p0 = 0; p0 < c.count; p0 += kAttentionValueChunk) {
            std::fill(chunk.begin(), chunk.end(), 0.0f);
            for (std::int64_t p = p0;
                 p < std::min<std::int64_t>(c.count, p0 + kAttentionValueChunk); ++p)
                add_scaled_f16(chunk.data(), v.data() + p * c.stride,
                               s[static_cast<std::size_t>(p)], c.n);
            for (std::int64_t i = 0; i < c.n; ++i)
                out[static_cast<std::size_t>(g * c.n + i)] += chunk[static_cast<std::size_t>(i)];
        }
    }
    return out;
}

// The same in double, written out from the definition (no engine kernel involved).
std::vector<double> in_double(const Case& c, const std::vector<float>& q,
                              const std::vector<std::uint16_t>& k,
                              const std::vector<std::uint16_t>& v, double scale) {
    std::vector<double> out(static_cast<std::size_t>(c.heads * c.n), 0.0);
    for (std::int64_t g = 0; g < c.heads; ++g) {
        std::vector<double> s(static_cast<std::size_t>(c.count));
        double max = -INFINITY, sum = 0;
        for (std::int64_t p = 0; p < c.count; ++p) {
            double d = 0;
            for (std::int64_t i = 0; i < c.n; ++i)
                d += static_cast<double>(
                         fp16_to_fp32(k[static_cast<std::size_t>(p * c.stride + i)])) *
                     q[static_cast<std::size_t>(g * c.n + i)];
            s[static_cast<std::size_t>(p)] = d * scale;
            max = std::max(max, d * scale);
        }
        for (double& x : s) sum += (x = std::exp(x - max));
        for (std::int64_t p = 0; p < c.count; ++p)
            for (std::int64_t i = 0; i < c.n; ++i)
                out[static_cast<std::size_t>(g * c.n + i)] +=
                    s[static_cast<std::size_t>(p)] / sum *
                    fp16_to_fp32(v[static_cast<std::size_t>(p * c.stride + i)]);
    }
    return out;
}

}  // namespace

TEST_CASE("grouped-query attention gives every head the bits of one head at a time") {
    std::mt19937 rng(29);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<Case> cases;
    // heads 1, 2, 4, 8 take the grouped kernels; 3 and odd widths the one-head fallback. Counts
    // cover fewer rows than one step, ragged last steps and more than the prefetch distance.
    for (const std::int64_t heads : {1, 2, 3, 4, 8})
        for (const std::int64_t count : {1, 2, 3, 5, 8, 9, 17, 40})
            for (const std::int64_t n : {8, 24, 64, 128})
                cases.push_back({heads, count, n, 5 * n});  // rows of a 5-KV-head cache row
    cases.push_back({4, 33, 20, 100});                      // width not a multiple of 8
    cases.push_back({4, 1100, 128, 640});                   // a long context of the 2b4t shape
    // Around the value sums' chunk boundaries (attention_order.hpp), in the grouped kernels and
    // the fallback (3 heads; a width past the grouped kernels' widest).
    for (const std::int64_t count : {127, 128, 129, 256, 300}) {
        cases.push_back({4, count, 128, 640});
        cases.push_back({2, count, 64, 320});
        cases.push_back({3, count, 128, 640});
    }
    cases.push_back({2, 200, 264, 264 * 5});
    for (const Case& c : cases) {
        std::vector<std::uint16_t> k(static_cast<std::size_t>(c.count * c.stride)), v(k.size());
        for (auto& h : k) h = bitnet::quant::fp32_to_fp16(dist(rng));
        for (auto& h : v) h = bitnet::quant::fp32_to_fp16(dist(rng));
        std::vector<float> q(static_cast<std::size_t>(c.heads * c.n));
        for (float& x : q) x = dist(rng);
        const float scale = 1.0f / std::sqrt(static_cast<float>(c.n));
        std::vector<float> scores(static_cast<std::size_t>(c.heads * c.count));
        std::vector<float> out(q.size(), 12345.0f);  // overwritten, whatever it held
        attention_heads_f16(q.data(), c.heads, k.data(), v.data(), c.stride, c.count, c.n, scale,
                            scores.data(), out.data());
        INFO("heads " << c.heads << ", rows " << c.count << ", width " << c.n);
        CHECK(out == one_head_at_a_time(c, q, k, v, scale));
        const std::vector<double> exact = in_double(c, q, k, v, scale);
        double err = 0, norm = 0;
        for (std::size_t i = 0; i < out.size(); ++i) {
            err += (out[i] - exact[i]) * (out[i] - exact[i]);
            norm += exact[i] * exact[i];
        }
        CHECK(std::sqrt(err / norm) < 1e-5);
    }
}

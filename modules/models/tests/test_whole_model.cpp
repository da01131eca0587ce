// The whole forward pass against an independent, straightforward implementation written here
// from BITNET_MODEL.md: double precision, angles from pow(), attention recomputed from scratch
// for every position, weights dequantized up front. It shares no code with the transformer
// beyond the (separately tested) dequantizers and fp16 conversion.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "bitnet/kernels/backend.hpp"
#include "bitnet/models/synthetic_model.hpp"
#include "bitnet/models/transformer.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

#include "in_memory_model.hpp"

using namespace bitnet;

namespace {

using Vec = std::vector<double>;

struct Dense {
    std::int64_t rows = 0, cols = 0;
    std::vector<double> w;
    Vec apply(const Vec& x) const {
        Vec y(static_cast<std::size_t>(rows), 0.0);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c)
                y[static_cast<std::size_t>(r)] +=
                    w[static_cast<std::size_t>(r * cols + c)] * x[static_cast<std::size_t>(c)];
        return y;
    }
};

Dense dense(const models::GgufFile& f, const std::string& name) {
    const auto& t = f.tensor(name);
    Dense d;
    d.cols = static_cast<std::int64_t>(t.ne[0]);
    d.rows = static_cast<std::int64_t>(t.rows());
    std::vector<float> values(t.n_elements);
    t.traits.dequantize(t.data, static_cast<std::int64_t>(t.n_elements), values.data());
    d.w.assign(values.begin(), values.end());
    return d;
}

Vec vec(const models::GgufFile& f, const std::string& name) {
    const auto& t = f.tensor(name);
    const auto* p = reinterpret_cast<const float*>(t.data);
    return Vec(p, p + t.n_elements);
}

Vec rmsnorm(const Vec& x, const Vec& w, double eps) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double s = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
    Vec out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i] * s * w[i];
    return out;
}

void rope(Vec& x, std::int64_t heads, std::int64_t hd, std::int64_t pos, double base) {
    for (std::int64_t h = 0; h < heads; ++h)
        for (std::int64_t i = 0; i < hd / 2; ++i) {
            const double angle =
                static_cast<double>(pos) *
                std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
            double& a = x[static_cast<std::size_t>(h * hd + i)];
            double& b = x[static_cast<std::size_t>(h * hd + i + hd / 2)];
            const double a0 = a, b0 = b;
            a = a0 * std::cos(angle) - b0 * std::sin(angle);
            b = a0 * std::sin(angle) + b0 * std::cos(angle);
        }
}

// Through a trip to F16 (what an F16 KV cache, and the query meeting it, store).
void round_to_half(Vec& x) {
    for (double& v : x) v = quant::fp16_to_fp32(quant::fp32_to_fp16(static_cast<float>(v)));
}

// Logits of every position, float activations (no int8 quantization), f32 everything except
// that F16 weights see their input rounded to F16 (the documented matmul rule); with
// `f16_cache`, keys, values and the query are rounded to F16 as an F16 KV cache stores them.
std::vector<Vec> independent_forward(const models::GgufFile& f, const models::ModelConfig& c,
                                     const std::vector<std::int32_t>& tokens, bool f16_cache) {
    const Dense embd = dense(f, "token_embd.weight");
    const std::int64_t H = c.hidden, hd = c.head_dim, nh = c.head_count, nkv = c.head_count_kv;
    std::vector<std::vector<Vec>> keys(c.block_count), values(c.block_count);
    std::vector<Vec> out;
    for (std::size_t t = 0; t < tokens.size(); ++t) {
        Vec h(embd.w.begin() + tokens[t] * H, embd.w.begin() + (tokens[t] + 1) * H);
        for (std::uint32_t l = 0; l < c.block_count; ++l) {
            auto name = [l](const char* s) { return "blk." + std::to_string(l) + "." + s; };
            const Vec x = rmsnorm(h, vec(f, name("attn_norm.weight")), c.rms_eps);
            Vec q = dense(f, name("attn_q.weight")).apply(x);
            Vec k = dense(f, name("attn_k.weight")).apply(x);
            Vec v = dense(f, name("attn_v.weight")).apply(x);
            rope(q, nh, hd, static_cast<std::int64_t>(t), c.rope_freq_base);
            rope(k, nkv, hd, static_cast<std::int64_t>(t), c.rope_freq_base);
            if (f16_cache) {
                round_to_half(q);
                round_to_half(k);
                round_to_half(v);
            }
            keys[l].push_back(k);
            values[l].push_back(v);
            Vec att(static_cast<std::size_t>(nh * hd), 0.0);
            for (std::int64_t head = 0; head < nh; ++head) {
                const std::int64_t kvh = head / (nh / nkv);
                Vec scores;
                double max = -1e300;
                for (std::size_t p = 0; p <= t; ++p) {
                    double s = 0;
                    for (std::int64_t i = 0; i < hd; ++i)
                        s += q[static_cast<std::size_t>(head * hd + i)] *
                             keys[l][p][static_cast<std::size_t>(kvh * hd + i)];
                    scores.push_back(s / std::sqrt(static_cast<double>(hd)));
                    max = std::max(max, scores.back());
                }
                double z = 0;
                for (double& s : scores) z += (s = std::exp(s - max));
                for (std::size_t p = 0; p <= t; ++p)
                    for (std::int64_t i = 0; i < hd; ++i)
                        att[static_cast<std::size_t>(head * hd + i)] +=
                            scores[p] / z * values[l][p][static_cast<std::size_t>(kvh * hd + i)];
            }
            const Vec o = dense(f, name("attn_output.weight"))
                              .apply(rmsnorm(att, vec(f, name("attn_sub_norm.weight")), c.rms_eps));
            for (std::int64_t i = 0; i < H; ++i)
                h[static_cast<std::size_t>(i)] += o[static_cast<std::size_t>(i)];
            const Vec x2 = rmsnorm(h, vec(f, name("ffn_norm.weight")), c.rms_eps);
            Vec g = dense(f, name("ffn_gate.weight")).apply(x2);
            const Vec u = dense(f, name("ffn_up.weight")).apply(x2);
            for (std::size_t i = 0; i < g.size(); ++i)
                g[i] = std::max(0.0, g[i]) * std::max(0.0, g[i]) * u[i];
            const Vec d = dense(f, name("ffn_down.weight"))
                              .apply(rmsnorm(g, vec(f, name("ffn_sub_norm.weight")), c.rms_eps));
            for (std::int64_t i = 0; i < H; ++i)
                h[static_cast<std::size_t>(i)] += d[static_cast<std::size_t>(i)];
        }
        Vec xn = rmsnorm(h, vec(f, "output_norm.weight"), c.rms_eps);
        for (double& x : xn)
            x = quant::fp16_to_fp32(
                quant::fp32_to_fp16(static_cast<float>(x)));  // F16 output weights
        out.push_back(embd.apply(xn));
    }
    return out;
}

}  // namespace

TEST_CASE("a 2-layer model's logits equal an independent straightforward implementation") {
    struct Case {
        std::uint32_t heads, kv_heads, head_dim;
        models::KvType cache;
        double tolerance;
    };
    // Groups of 2 and of 4 query heads per KV head (the grouped attention kernels' shapes), with
    // an F32 cache (one head at a time) and an F16 one (the grouped kernels; F16 rounding of
    // float vs double values can differ by one half-ULP here and there, hence the looser bound).
    for (const Case c :
         {Case{4, 2, 32, models::KvType::F32, 1e-5}, Case{4, 2, 32, models::KvType::F16, 3e-4},
          Case{8, 2, 16, models::KvType::F16, 3e-4}}) {
        const auto m =
            models::test::tiny_model(c.heads, c.kv_heads, c.head_dim, 256, 42, "two-layer.gguf");
        const auto& file = m.file;
        const models::Transformer model(file);
        REQUIRE(model.config().block_count == 2);
        const std::vector<std::int32_t> tokens = {5, 17, 250, 3, 99, 17, 17, 42};
        const bool f16 = c.cache == models::KvType::F16;
        const auto expected = independent_forward(*file, model.config(), tokens, f16);

        const auto backend = kernels::make_reference_backend(kernels::ActivationPrecision::Float);
        models::KvCache cache(model.config(), 16, c.cache);
        std::vector<float> logits;
        model.forward(tokens, 0, cache, *backend, models::LogitsFor::AllPositions, logits);
        const std::size_t vocab = model.config().vocab_size;
        for (std::size_t t = 0; t < tokens.size(); ++t) {
            double diff = 0, norm = 0;
            for (std::size_t i = 0; i < vocab; ++i) {
                const double d = logits[t * vocab + i] - expected[t][i];
                diff += d * d;
                norm += expected[t][i] * expected[t][i];
            }
            INFO("heads " << c.heads << ", kv heads " << c.kv_heads << ", f16 cache " << f16
                          << ", position " << t);
            CHECK(std::sqrt(diff / norm) < c.tolerance);
        }
    }
}

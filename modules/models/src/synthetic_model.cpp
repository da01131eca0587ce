#include "bitnet/models/synthetic_model.hpp"

#include <cmath>
#include <cstring>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::models {
namespace {

using quant::TypeId;

// splitmix64: tiny, fast, and good enough for test weights.
struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0,1)
    // Approximately normal (Irwin-Hall of 4 uniforms, rescaled to unit variance).
    float normal() {
        const float s = uniform() + uniform() + uniform() + uniform() - 2.0f;
        return s * 1.7320508f;
    }
};

std::uint64_t tensor_seed(std::uint64_t seed, const std::string& name) {
    std::uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a over the name, keyed by seed
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    return h;
}

// Rows are filled in chunks with their own generators so the result does not depend on the
// number of threads.
constexpr std::uint64_t kRowsPerChunk = 64;

// Calls fill(first_row, end_row, rng) for chunks of kRowsPerChunk rows in parallel, each chunk
// with a generator derived from the tensor seed and the chunk index.
template <typename Fill>
void for_each_row_chunk(std::uint64_t rows, std::uint64_t seed, const Fill& fill) {
    const std::int64_t chunks =
        static_cast<std::int64_t>((rows + kRowsPerChunk - 1) / kRowsPerChunk);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t c = 0; c < chunks; ++c) {
        SplitMix64 rng{seed + static_cast<std::uint64_t>(c) * 0x632be59bd9b4e019ull};
        const std::uint64_t r0 = static_cast<std::uint64_t>(c) * kRowsPerChunk;
        fill(r0, std::min(rows, r0 + kRowsPerChunk), rng);
    }
}

// Ternary codes 0,1,2 (-1, 0, +1) with P(0) = 1/3, like trained BitNet weights.
void fill_codes(std::uint8_t* codes, std::uint64_t count, SplitMix64& rng) {
    std::uint64_t bits = 0;
    int left = 0;
    for (std::uint64_t i = 0; i < count; ++i) {
        if (left == 0) {
            bits = rng.next();
            left = 21;  // 3 bits per draw
        }
        const unsigned r = bits & 7u;
        bits >>= 3;
        --left;
        // Draws 0..5 map uniformly to 0..2; the rare 6 and 7 (1/4 of draws) fall back to a
        // position-dependent code, which keeps the mix close to uniform without redrawing.
        codes[i] = static_cast<std::uint8_t>(r < 6 ? r % 3 : (i + r) % 3);
    }
}

void fill_ternary(std::uint8_t* out, const ExpectedTensor& e, TypeId type, std::uint64_t seed) {
    const std::uint64_t cols = e.ne[0], rows = e.ne[1];
    const std::uint64_t n = cols * rows;
    const float scale = 1.0f / std::sqrt(static_cast<float>(cols) * (2.0f / 3.0f));
    if (type == TypeId::I2_S) {
        for_each_row_chunk(rows, seed, [&](std::uint64_t r0, std::uint64_t r1, SplitMix64& rng) {
            std::vector<std::uint8_t> codes((r1 - r0) * cols);
            fill_codes(codes.data(), codes.size(), rng);
            quant::pack_i2s_codes(codes.data(), static_cast<std::int64_t>(codes.size()),
                                  out + r0 * cols / 4);
        });
        std::memset(out + n / 4, 0, quant::kI2STrailerBytes);
        std::memcpy(out + n / 4, &scale, 4);
        return;
    }
    const quant::TypeTraits& t = quant::traits(type);
    const std::uint64_t row_size = quant::row_bytes(t, cols);
    for_each_row_chunk(rows, seed, [&](std::uint64_t r0, std::uint64_t r1, SplitMix64& rng) {
        std::vector<std::uint8_t> codes((r1 - r0) * cols);
        fill_codes(codes.data(), codes.size(), rng);
        std::vector<float> values(codes.size());
        for (std::size_t i = 0; i < codes.size(); ++i)
            values[i] = scale * static_cast<float>(static_cast<int>(codes[i]) - 1);
        t.quantize(values.data(), static_cast<std::int64_t>(values.size()), out + r0 * row_size);
    });
}

void fill_floats(std::uint8_t* out, const ExpectedTensor& e, TypeId type, std::uint64_t seed,
                 float mean, float stddev) {
    const std::uint64_t cols = e.ne[0];
    const std::uint64_t rows = e.ne.size() > 1 ? e.ne[1] : 1;
    const quant::TypeTraits& t = quant::traits(type);
    const std::uint64_t row_size = quant::row_bytes(t, cols);
    for_each_row_chunk(rows, seed, [&](std::uint64_t r0, std::uint64_t r1, SplitMix64& rng) {
        std::vector<float> values((r1 - r0) * cols);
        for (float& v : values) v = mean + stddev * rng.normal();
        t.quantize(values.data(), static_cast<std::int64_t>(values.size()), out + r0 * row_size);
    });
}

}  // namespace

ModelConfig preset_config(const std::string& preset, std::uint32_t vocab_size) {
    ModelConfig c;
    c.architecture = Architecture::BitnetB158;
    c.architecture_name = "bitnet-b1.58";
    c.ffn_activation = FfnActivation::ReluSquared;
    c.rope_freq_base = 500000.0f;
    c.rms_eps = 1e-5f;
    struct Preset {
        const char* name;
        std::uint32_t context, hidden, blocks, ffn, heads, kv_heads, vocab;
    };
    static constexpr Preset kPresets[] = {
        {"tiny", 512, 128, 2, 384, 2, 1, 512},
        {"small", 2048, 256, 4, 512, 4, 2, 512},
        {"2b4t", 4096, 2560, 30, 6912, 20, 5, 128256},
    };
    const Preset* p = nullptr;
    for (const Preset& candidate : kPresets)
        if (preset == candidate.name) p = &candidate;
    if (p == nullptr)
        fail(ErrorCode::InvalidArgument,
             "unknown preset '" + preset + "'; use tiny, small or 2b4t");
    c.context_length = p->context;
    c.hidden = p->hidden;
    c.block_count = p->blocks;
    c.ffn_hidden = p->ffn;
    c.head_count = p->heads;
    c.head_count_kv = p->kv_heads;
    c.vocab_size = p->vocab;
    if (vocab_size != 0) c.vocab_size = vocab_size;
    c.head_dim = c.hidden / c.head_count;
    c.rope_dim = c.head_dim;
    return c;
}

GgufWriter synthetic_model_writer(const SyntheticModelOptions& options,
                                  const std::function<void(GgufWriter&)>& add_metadata) {
    const ModelConfig& c = options.config;
    const TypeId tt = options.ternary_type;
    if (tt != TypeId::I2_S && tt != TypeId::TQ2_0 && tt != TypeId::TQ1_0 && tt != TypeId::F16)
        fail(ErrorCode::InvalidArgument,
             "synthetic models store ternary weights as i2_s, tq2_0, tq1_0 or f16");
    const std::uint32_t block = static_cast<std::uint32_t>(quant::traits(tt).block_size);
    if (c.hidden % block != 0 || c.ffn_hidden % block != 0)
        fail(ErrorCode::InvalidArgument,
             std::string(quant::traits(tt).name) + " needs hidden (" + std::to_string(c.hidden) +
                 ") and ffn (" + std::to_string(c.ffn_hidden) + ") sizes that are multiples of " +
                 std::to_string(block));
    GgufWriter w;
    write_model_metadata(w, c, tt, options.name);
    if (add_metadata) add_metadata(w);

    for (const ExpectedTensor& e : expected_tensors(c)) {
        if (e.optional) continue;  // tied output, no scale tensors
        const std::uint64_t seed = tensor_seed(options.seed, e.name);
        switch (e.role) {
            case TensorRole::Ternary:
                w.add_tensor(e.name, static_cast<std::uint32_t>(tt), e.ne,
                             [e, tt, seed](std::uint8_t* out, std::uint64_t) {
                                 fill_ternary(out, e, tt, seed);
                             });
                break;
            case TensorRole::Embedding:
            case TensorRole::Output: {
                const TypeId et = options.embedding_type;
                w.add_tensor(e.name, static_cast<std::uint32_t>(et), e.ne,
                             [e, et, seed](std::uint8_t* out, std::uint64_t) {
                                 fill_floats(out, e, et, seed, 0.0f, 0.02f);
                             });
                break;
            }
            case TensorRole::Norm:
            case TensorRole::Scale:
                w.add_tensor(e.name, static_cast<std::uint32_t>(TypeId::F32), e.ne,
                             [e, seed](std::uint8_t* out, std::uint64_t) {
                                 fill_floats(out, e, TypeId::F32, seed, 1.0f, 0.05f);
                             });
                break;
        }
    }
    return w;
}

}  // namespace bitnet::models

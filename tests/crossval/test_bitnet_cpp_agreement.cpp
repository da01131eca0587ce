// Agreement with Microsoft's bitnet.cpp on a model file it wrote (../shared/fixtures/bitnet-cpp):
// same prompt tokens, same top-1 at every position, last-position cosine >= 0.999 and the same
// 32 greedy tokens — for the reference backend and the default CPU backend.
//
// The fixture's prompt logits match ggml's standard attention to ~1e-4 (cosine 0.99999998),
// and its greedy continuation matches llama.cpp's flash-attention numerics (F16 accumulation of
// V) token for token; each check runs in the mode that produced its data
// (docs/correctness.md has the measurements that show which is which).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bitnet/crossval/logit_metrics.hpp"
#include "bitnet/inference/greedy.hpp"
#include "bitnet/models/transformer.hpp"
#include "bitnet/tokenizers/tokenizer.hpp"
#include "test_support.hpp"

using namespace bitnet;

namespace {

struct Fixture {
    std::shared_ptr<const models::GgufFile> file;
    nlohmann::json expected;
    std::vector<float> last_logits;
    std::vector<std::int32_t> tokens;
};

const Fixture& fixture() {
    static const Fixture f = [] {
        const auto dir = test::shared_dir() / "fixtures/bitnet-cpp";
        Fixture x;
        x.file = models::GgufFile::open((dir / "mini-bitnet-i2_s.gguf").string());
        std::ifstream json(dir / "mini-bitnet-i2_s.prompt0.json");
        x.expected = nlohmann::json::parse(json);
        std::ifstream raw(dir / "mini-bitnet-i2_s.prompt0.last.f32", std::ios::binary);
        x.last_logits.resize(x.expected["n_vocab"].get<std::size_t>());
        raw.read(reinterpret_cast<char*>(x.last_logits.data()),
                 static_cast<std::streamsize>(x.last_logits.size() * 4));
        x.tokens = tokenizers::load_tokenizer(*x.file)->encode(
            x.expected["prompt"].get<std::string>(), true, false);
        return x;
    }();
    return f;
}

float top2_margin(std::span<const float> logits) {
    float first = -INFINITY, second = -INFINITY;
    for (float v : logits) {
        if (v > first) {
            second = first;
            first = v;
        } else if (v > second) {
            second = v;
        }
    }
    return first - second;
}

void check_prompt_logits(const kernels::Backend& backend) {
    const Fixture& f = fixture();
    REQUIRE(f.tokens == f.expected["tokens"].get<std::vector<std::int32_t>>());
    models::Transformer model(f.file);
    models::KvCache cache(model.config(), 64, models::KvType::F16);
    std::vector<float> logits;
    model.forward(f.tokens, 0, cache, backend, models::LogitsFor::AllPositions, logits);
    const std::size_t vocab = model.config().vocab_size;
    for (const auto& position : f.expected["top20_per_position"]) {
        const auto pos = position["pos"].get<std::size_t>();
        const std::span<const float> row(logits.data() + pos * vocab, vocab);
        const auto& top = position["top20"];
        INFO("position " << pos << ", bitnet.cpp's top-1 margin "
                         << top[0][1].get<float>() - top[1][1].get<float>());
        CHECK(inference::greedy_token(row) == top[0][0].get<std::int32_t>());
        // bitnet.cpp's 20 highest logits, value by value.
        for (const auto& entry : top)
            CHECK(row[entry[0].get<std::size_t>()] == Approx(entry[1].get<float>()).margin(1e-3));
    }
    const std::span<const float> last(logits.data() + (f.tokens.size() - 1) * vocab, vocab);
    const double cosine = crossval::cosine_similarity(last, f.last_logits);
    INFO("last-position cosine " << cosine << ", relative L2 "
                                 << crossval::relative_l2(last, f.last_logits));
    CHECK(cosine >= 0.999);
    CHECK(crossval::relative_l2(last, f.last_logits) < 1e-3);
}

void check_greedy_continuation(const kernels::Backend& backend) {
    const Fixture& f = fixture();
    models::Transformer model(f.file);
    model.set_attention_mode(models::AttentionMode::Flash);
    models::KvCache cache(model.config(), 64, models::KvType::F16);
    std::vector<float> logits;
    model.forward(f.tokens, 0, cache, backend, models::LogitsFor::LastPosition, logits);
    const auto expected = f.expected["greedy32"].get<std::vector<std::int32_t>>();
    std::int64_t position = static_cast<std::int64_t>(f.tokens.size());
    for (std::size_t step = 0; step < expected.size(); ++step) {
        const std::int32_t next = inference::greedy_token(logits);
        INFO("step " << step << ": our top-2 margin " << top2_margin(logits));
        REQUIRE(next == expected[step]);
        const std::int32_t token[1] = {next};
        model.forward(token, position++, cache, backend, models::LogitsFor::LastPosition, logits);
    }
}

}  // namespace

TEST_CASE("reference backend: prompt logits match bitnet.cpp's") {
    BITNET_REQUIRE_SHARED("fixtures/bitnet-cpp/mini-bitnet-i2_s.gguf");
    check_prompt_logits(*kernels::make_reference_backend());
}

TEST_CASE("reference backend: the 32 greedy tokens match bitnet.cpp's") {
    BITNET_REQUIRE_SHARED("fixtures/bitnet-cpp/mini-bitnet-i2_s.gguf");
    check_greedy_continuation(*kernels::make_reference_backend());
}

TEST_CASE("cpu backend: prompt logits match bitnet.cpp's") {
    BITNET_REQUIRE_SHARED("fixtures/bitnet-cpp/mini-bitnet-i2_s.gguf");
    check_prompt_logits(*kernels::make_cpu_backend(2));
}

TEST_CASE("cpu backend: the 32 greedy tokens match bitnet.cpp's") {
    BITNET_REQUIRE_SHARED("fixtures/bitnet-cpp/mini-bitnet-i2_s.gguf");
    check_greedy_continuation(*kernels::make_cpu_backend(2));
}

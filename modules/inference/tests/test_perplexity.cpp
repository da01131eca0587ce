#include <catch2/catch.hpp>

#include <cmath>

#include "bitnet/common/error.hpp"
#include "bitnet/inference/perplexity.hpp"
#include "model_files.hpp"

using namespace bitnet;

namespace {
std::unique_ptr<inference::Engine> load(const std::string& path, int threads) {
    inference::EngineOptions o;
    o.model_path = path;
    o.device = "cpu";
    o.context = 128;
    o.threads = threads;
    return inference::Engine::load(o);
}

std::vector<std::int32_t> some_tokens(std::size_t n) {
    std::vector<std::int32_t> t(n);
    for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<std::int32_t>((i * 31 + 7) % 400);
    return t;
}
}  // namespace

TEST_CASE(
    "a text that fits in one window gives the same perplexity for every stride, equal to a direct "
    "computation") {
    test::TempDir dir("ppl");
    auto engine = load(test::write_synthetic_model(dir, "tiny", 3), 2);
    const auto tokens = some_tokens(40);
    const auto single = inference::compute_perplexity(*engine, tokens, 64, 64);
    const auto sliding = inference::compute_perplexity(*engine, tokens, 64, 16);
    CHECK(single.windows == 1);
    CHECK(sliding.windows == 1);
    CHECK(single.perplexity == sliding.perplexity);
    CHECK(single.scored_tokens == 39);
    // Direct: mean negative log-likelihood from one evaluation of all tokens.
    const auto logits = engine->evaluate_all(tokens);
    const std::size_t vocab = engine->model().config().vocab_size;
    double nll = 0;
    for (std::size_t pos = 1; pos < tokens.size(); ++pos) {
        const float* row = logits.data() + (pos - 1) * vocab;
        double z = 0;
        for (std::size_t i = 0; i < vocab; ++i) z += std::exp(static_cast<double>(row[i]));
        nll -= std::log(std::exp(static_cast<double>(row[tokens[pos]])) / z);
    }
    CHECK(single.perplexity == Approx(std::exp(nll / 39.0)).epsilon(1e-9));
}

TEST_CASE("sliding windows score every token once; results are finite and independent of threads") {
    test::TempDir dir("ppl-slide");
    const std::string path = test::write_synthetic_model(dir, "tiny", 4);
    const auto tokens = some_tokens(300);
    const auto a = inference::compute_perplexity(*load(path, 1), tokens, 64, 32);
    const auto b = inference::compute_perplexity(*load(path, 2), tokens, 64, 32);
    CHECK(a.scored_tokens == 299);
    CHECK(a.windows == 9);  // starts 0, 32, ..., 256 (the last reaches the end)
    CHECK(std::isfinite(a.perplexity));
    CHECK(a.perplexity == b.perplexity);
    // stride == window: the first token of each later window has no context and is skipped.
    const auto chunks = inference::compute_perplexity(*load(path, 2), tokens, 64, 64);
    CHECK(chunks.windows == 5);
    CHECK(chunks.scored_tokens == 299 - 4);
    CHECK_THROWS_AS(inference::compute_perplexity(*load(path, 2), tokens, 64, 0), Error);
    CHECK_THROWS_AS(inference::compute_perplexity(*load(path, 2), tokens, 1000, 10), Error);
}

TEST_CASE("llama.cpp's chunk convention scores the second half of each chunk, with BOS first") {
    test::TempDir dir("ppl-chunks");
    auto engine = load(test::write_synthetic_model(dir, "tiny", 5), 2);
    const auto tokens = some_tokens(200);
    const std::int32_t bos = *engine->tokenizer().special_tokens().bos;
    const auto r = inference::compute_perplexity_chunks(*engine, tokens, 64, bos);
    CHECK(r.windows == 3);             // floor(200 / 64)
    CHECK(r.scored_tokens == 3 * 31);  // positions 32 .. 62 predict 33 .. 63
    // Direct computation for the first chunk.
    std::vector<std::int32_t> chunk(tokens.begin(), tokens.begin() + 64);
    chunk[0] = bos;
    const auto logits = engine->evaluate_all(chunk);
    const std::size_t vocab = engine->model().config().vocab_size;
    double nll = 0;
    for (std::size_t j = 32; j < 63; ++j) {
        double z = 0;
        for (std::size_t i = 0; i < vocab; ++i)
            z += std::exp(static_cast<double>(logits[j * vocab + i]));
        nll -= std::log(std::exp(static_cast<double>(
                            logits[j * vocab + static_cast<std::size_t>(chunk[j + 1])])) /
                        z);
    }
    const auto first_only = inference::compute_perplexity_chunks(
        *engine, std::vector<std::int32_t>(tokens.begin(), tokens.begin() + 64), 64, bos);
    CHECK(first_only.perplexity == Approx(std::exp(nll / 31.0)).epsilon(1e-9));
    CHECK_THROWS_AS(inference::compute_perplexity_chunks(*engine, some_tokens(10), 64, bos), Error);
}

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

TEST_CASE("a text that fits in one window gives the same perplexity for every stride, equal to a direct computation") {
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
    const auto chunks = inference::compute_perplexity(*load(path, 2), tokens, 64, 64);
    CHECK(chunks.scored_tokens == 299);
    CHECK_THROWS_AS(inference::compute_perplexity(*load(path, 2), tokens, 64, 0), Error);
    CHECK_THROWS_AS(inference::compute_perplexity(*load(path, 2), tokens, 1000, 10), Error);
}

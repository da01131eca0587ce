#include <catch2/catch.hpp>

#include <omp.h>

#include <atomic>
#include <cstdlib>

#include <cmath>
#include <span>
#include "bitnet/common/error.hpp"
#include "bitnet/common/mapped_file.hpp"
#include "bitnet/inference/engine.hpp"
#include "model_files.hpp"

using namespace bitnet;

namespace {
double relative_l2(std::span<const float> a, std::span<const float> b) {
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
        norm += static_cast<double>(b[i]) * b[i];
    }
    return std::sqrt(diff / norm);
}

std::unique_ptr<inference::Engine> load(const std::string& path, const std::string& kernel = "auto",
                                        std::int64_t context = 256,
                                        models::KvType kv = models::KvType::F16,
                                        const std::string& head = "auto") {
    inference::EngineOptions o;
    o.model_path = path;
    o.kernel = kernel;
    o.context = context;
    o.kv_type = kv;
    o.head = head;
    o.threads = 2;
    o.device = "cpu";
    return inference::Engine::load(o);
}
}  // namespace

TEST_CASE("prefill of N tokens in one pass equals N single-token steps (KV cache correctness)") {
    test::TempDir dir("engine-kv");
    const std::string path = test::write_synthetic_model(dir, "small", 3);
    for (auto kv : {models::KvType::F16, models::KvType::F32}) {
        auto engine = load(path, "auto", 256, kv);
        std::vector<std::int32_t> tokens;
        for (int i = 0; i < 40; ++i) tokens.push_back((i * 37 + 11) % 500);
        const auto all = engine->evaluate_all(tokens);
        const std::size_t vocab = engine->model().config().vocab_size;
        models::KvCache cache(engine->model().config(), 64, kv);
        std::vector<float> step;
        for (std::size_t t = 0; t < tokens.size(); ++t) {
            const std::int32_t one[1] = {tokens[t]};
            engine->model().forward(one, static_cast<std::int64_t>(t), cache, engine->backend(),
                                    models::LogitsFor::LastPosition, step);
            const std::span<const float> batched(all.data() + t * vocab, vocab);
            REQUIRE(relative_l2(step, batched) < 1e-4);
        }
    }
}

TEST_CASE(
    "a 40-token prefill on the fast kernels matches the reference backend at every position") {
    // 40 tokens: the prefill tiles (AVX2 2 x 4, VNNI 4 x 4, AMX groups of 16 where the CPU has
    // them) inside the whole model, against the plain reference path.
    test::TempDir dir("engine-prefill");
    const std::string path = test::write_synthetic_model(dir, "small", 4);
    std::vector<std::int32_t> tokens;
    for (int i = 0; i < 40; ++i) tokens.push_back((i * 53 + 7) % 500);
    const auto fast = load(path, "i2s")->evaluate_all(tokens);
    const auto ref = load(path, "ref")->evaluate_all(tokens);
    REQUIRE(fast.size() == ref.size());
    const std::size_t vocab = fast.size() / tokens.size();
    for (std::size_t t = 0; t < tokens.size(); ++t) {
        INFO("position " << t);
        CHECK(relative_l2(std::span<const float>(fast.data() + t * vocab, vocab),
                          std::span<const float>(ref.data() + t * vocab, vocab)) < 1e-3);
    }
}

TEST_CASE("greedy generation is identical across runs and backends") {
    test::TempDir dir("engine-greedy");
    const std::string path = test::write_synthetic_model(dir, "tiny", 5);
    inference::GenerationRequest r;
    r.prompt = "the capital of france is";
    r.n_predict = 24;
    r.sampling.greedy = true;
    const auto a = load(path)->generate(r);
    const auto b = load(path)->generate(r);
    const auto ref = load(path, "ref")->generate(r);
    CHECK(a.tokens == b.tokens);
    CHECK(a.tokens == ref.tokens);
    CHECK(a.text == ref.text);
    CHECK(a.tokens.size() <= 24);
}

TEST_CASE("greedy and top-k tokens through the CPU's screened head equal the whole F16 head's") {
    // head auto: an int8 screening copy of the F16 head chooses the rows to compute exactly;
    // head f16: every row every token.
    test::TempDir dir("engine-screened");
    const std::string path = test::write_synthetic_model(dir, "small", 8);
    auto whole = load(path, "auto", 128, models::KvType::F16, "auto");
    auto plain = load(path, "auto", 128, models::KvType::F16, "f16");
    const bool screened =
        whole->weight_bytes_per_token(true) < whole->weight_bytes_per_token(false);
    if (!screened) WARN("no screening head on this CPU (needs AVX2, F16C, FMA): both read F16");
    CHECK(plain->weight_bytes_per_token(true) == plain->weight_bytes_per_token(false));
    inference::GenerationRequest r;
    r.prompt = "once upon a time";
    r.n_predict = 64;
    r.sampling.greedy = true;
    const auto a = whole->generate(r), b = plain->generate(r);
    CHECK(a.tokens.size() == 64);
    CHECK(a.tokens == b.tokens);
    CHECK(a.metrics.weight_bytes_per_token == whole->weight_bytes_per_token(true));
    // top-k sampling (the defaults: top-k 40, top-p, min-p, repetition penalty 1.1) with a seed
    r.sampling = {};
    r.sampling.seed = 99;
    r.sampling.temperature = 1.5f;  // hot: many tokens in play
    const auto c = whole->generate(r), d = plain->generate(r);
    CHECK(c.tokens == d.tokens);
    CHECK(c.tokens != a.tokens);
}

TEST_CASE("seeded sampling is reproducible and seeds matter") {
    test::TempDir dir("engine-seed");
    const std::string path = test::write_synthetic_model(dir, "tiny", 6);
    auto engine = load(path);
    inference::GenerationRequest r;
    r.prompt = "hello";
    r.n_predict = 32;
    r.sampling.seed = 7;
    r.sampling.temperature = 1.5f;
    const auto first = engine->generate(r);
    const auto second = engine->generate(r);  // the cached prompt prefix is reused
    r.sampling.seed = 8;
    const auto other = engine->generate(r);
    CHECK(first.tokens == second.tokens);
    CHECK(first.text == second.text);
    CHECK(first.tokens != other.tokens);
    CHECK(second.metrics.prefilled_tokens == 1);  // only the last prompt token was recomputed
}

TEST_CASE("streamed text equals the result text and metrics are filled in") {
    test::TempDir dir("engine-stream");
    const std::string path = test::write_synthetic_model(dir, "tiny", 7);
    auto engine = load(path);
    inference::GenerationRequest r;
    r.prompt = "once upon a time";
    r.n_predict = 16;
    r.sampling.seed = 1;
    std::string streamed;
    const auto result = engine->generate(r, [&](std::string_view t) { streamed += t; });
    CHECK(streamed == result.text);
    CHECK(result.metrics.prompt_tokens == static_cast<std::int64_t>(result.prompt_tokens.size()));
    CHECK(result.metrics.prefill_ms > 0);
    CHECK(result.metrics.peak_rss_bytes > 0);
    CHECK(result.metrics.time_to_first_token_ms > 0);
    CHECK_FALSE(result.metrics.kernels.empty());
}

TEST_CASE("generation stops at the context limit, or shifts the context when asked") {
    test::TempDir dir("engine-ctx");
    const std::string path = test::write_synthetic_model(dir, "tiny", 8);
    inference::GenerationRequest r;
    r.prompt = "abc";
    r.n_predict = -1;
    r.sampling.seed = 2;
    r.sampling.temperature = 3.0f;  // avoid an early end-of-generation token as much as possible
    auto engine = load(path, "auto", 24);
    const auto full = engine->generate(r);
    if (full.stop_reason != inference::StopReason::EndOfGeneration) {
        CHECK(full.stop_reason == inference::StopReason::ContextFull);
        CHECK(full.prompt_tokens.size() + full.tokens.size() == 24u + 1u);
    }
    inference::EngineOptions o;
    o.model_path = path;
    o.context = 24;
    o.context_shift = true;
    o.device = "cpu";
    auto shifting = inference::Engine::load(o);
    r.n_predict = 60;
    const auto shifted = shifting->generate(r);
    if (shifted.stop_reason != inference::StopReason::EndOfGeneration) {
        CHECK(shifted.stop_reason == inference::StopReason::Length);
        CHECK(shifted.tokens.size() == 60u);
    }
}

TEST_CASE("cancellation stops generation before the next token") {
    test::TempDir dir("engine-cancel");
    const std::string path = test::write_synthetic_model(dir, "tiny", 9);
    auto engine = load(path);
    std::atomic<bool> cancel{false};
    inference::GenerationRequest r;
    r.prompt = "x";
    r.n_predict = 100;
    r.sampling.seed = 3;
    int pieces = 0;
    const auto result = engine->generate(
        r,
        [&](std::string_view) {
            if (++pieces == 2) cancel = true;
        },
        &cancel);
    if (result.stop_reason != inference::StopReason::EndOfGeneration)
        CHECK(result.stop_reason == inference::StopReason::Cancelled);
    CHECK(result.tokens.size() < 100u);
}

TEST_CASE("bad requests are clear errors") {
    test::TempDir dir("engine-bad");
    const std::string path = test::write_synthetic_model(dir, "tiny", 10);
    auto engine = load(path, "auto", 16);
    inference::GenerationRequest r;
    r.n_predict = 0;
    CHECK_THROWS_WITH(engine->generate(r), Catch::Contains("-n must be at least 1"));
    r.n_predict = 4;
    r.prompt = std::string(200, 'z') + " long prompt";
    CHECK_THROWS_WITH(engine->generate(r), Catch::Contains("context holds 16"));
    r.prompt = "";
    CHECK_NOTHROW(engine->generate(r));  // an empty prompt starts from BOS
    r.sampling.top_p = 2.0f;
    CHECK_THROWS_WITH(engine->generate(r), Catch::Contains("--top-p"));
}

TEST_CASE("loading problems: missing file, unknown device or kernel, a CUDA device not present") {
    test::TempDir dir("engine-load");
    inference::EngineOptions o;
    o.model_path = dir.file("missing.gguf");
    CHECK_THROWS_WITH(inference::Engine::load(o), Catch::Contains("missing.gguf"));
    o.model_path = test::write_synthetic_model(dir, "tiny", 11);
    o.device = "tpu";
    CHECK_THROWS_WITH(inference::Engine::load(o), Catch::Contains("unknown device 'tpu'"));
    // (an index no machine has: on a GPU machine cuda:0 would load)
    o.device = "cuda:999";
    CHECK_THROWS_WITH(inference::Engine::load(o), Catch::Contains("--device cuda:999 requested") &&
                                                      Catch::Contains("--device cpu"));
    o.device = "cpu";
    o.kernel = "fast";
    CHECK_THROWS_WITH(inference::Engine::load(o), Catch::Contains("unknown kernel 'fast'"));
}

TEST_CASE("a tokenizer whose vocabulary disagrees with the model is refused") {
    test::TempDir dir("engine-vocab");
    models::SyntheticModelOptions options;
    options.config = models::preset_config("tiny");
    const std::string path = dir.file("mismatch.gguf");
    models::synthetic_model_writer(options, [](models::GgufWriter& w) {
        tokenizers::write_tokenizer_metadata(w, tokenizers::synthetic_tokenizer(300));
    }).write(path);
    inference::EngineOptions o;
    o.model_path = path;
    o.device = "cpu";
    CHECK_THROWS_WITH(inference::Engine::load(o), Catch::Contains("tokenizer has 300 tokens"));
}

TEST_CASE("a Q8_0 output head (head = q8_0) keeps logits within 1% of the F16 head") {
    test::TempDir dir("engine-head");
    const std::string path = test::write_synthetic_model(dir, "small", 12);
    inference::EngineOptions o;
    o.model_path = path;
    o.device = "cpu";
    o.context = 64;
    auto f16 = inference::Engine::load(o);
    o.head = "q8_0";
    auto q8 = inference::Engine::load(o);
    CHECK(q8->model().output_weight().type == quant::TypeId::Q8_0);
    const std::vector<std::int32_t> tokens = {1, 20, 300, 4000 % 512, 77};
    const auto a = f16->evaluate_all(tokens), b = q8->evaluate_all(tokens);
    CHECK(relative_l2(b, a) < 1e-2);
    o.head = "q4";
    CHECK_THROWS_WITH(inference::Engine::load(o), Catch::Contains("unknown --head"));
}

TEST_CASE("weights copied into huge pages give the logits of the file mapping, released or not") {
    // The copy moves the file's bytes to the same addresses; tensors released after a TL1
    // repack or a Q8_0 re-quantization of the head map back to the file (the embedding rows
    // are still read from there). Every configuration must see the same bytes either way.
    if (!transparent_huge_pages_available())
        WARN("transparent huge pages are off here: both loads use the file mapping");
    test::TempDir dir("engine-huge");
    const std::string path = test::write_synthetic_model(dir, "small", 21);
    const std::vector<std::int32_t> tokens = {1, 20, 300, 7, 77, 150};
    for (const auto& [kernel, head] :
         {std::pair<std::string, std::string>{"i2s", "auto"}, {"tl1", "auto"}, {"i2s", "q8_0"}}) {
        inference::EngineOptions o;
        o.model_path = path;
        o.device = "cpu";
        o.context = 64;
        o.threads = 2;
        o.kernel = kernel;
        o.head = head;
        o.keep_mapped = true;
        const auto mapped = inference::Engine::load(o)->evaluate_all(tokens);
        o.keep_mapped = false;
        const auto copied = inference::Engine::load(o)->evaluate_all(tokens);
        INFO("kernel " << kernel << ", head " << head);
        CHECK(copied == mapped);
    }
}

TEST_CASE("-t bounds the model's own parallel work too (OpenMP's default team)") {
    test::TempDir dir("engine-threads");
    const std::string path = test::write_synthetic_model(dir, "tiny", 5);
    for (const int threads : {1, 3}) {
        inference::EngineOptions o;
        o.model_path = path;
        o.context = 64;
        o.threads = threads;
        o.device = "cpu";
        const auto engine = inference::Engine::load(o);
        CHECK(omp_get_max_threads() == threads);
        int seen = 0;
#pragma omp parallel
        {
#pragma omp single
            seen = omp_get_num_threads();
        }
        CHECK(seen == threads);
    }
}

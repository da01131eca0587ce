// --device cuda against --device cpu on whole models: the same greedy tokens for 64 steps and
// logits with cosine >= 0.999, on the small preset and on the 2b4t shape. Skipped (with a
// message) where there is no GPU, as in CI; run on the lent H100 (docs/performance.md).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "bitnet/crossval/logit_metrics.hpp"
#include "bitnet/inference/batch_generator.hpp"
#include "bitnet/inference/engine.hpp"
#include "bitnet/inference/greedy.hpp"
#include "bitnet/kernels/cuda_info.hpp"
#include "bitnet/kernels/gpu_model.hpp"
#include "model_files.hpp"

using namespace bitnet;

namespace {

std::unique_ptr<inference::Engine> load(const std::string& path, const std::string& device,
                                        int context = 256, const std::string& head = "auto") {
    inference::EngineOptions o;
    o.model_path = path;
    o.context = context;
    o.device = device;
    o.head = head;
    return inference::Engine::load(o);
}

// The CPU and the GPU on one model file (with the output head `head`): the worst logits cosine
// over 24 positions and both engines' 64 greedy tokens after the same prompt.
struct Agreement {
    double worst_cosine = 1.0;
    inference::GenerationResult cpu, gpu;
    bool whole_pass_on_gpu = false;
};
Agreement compare_with_cpu(const std::string& path, const std::string& head = "auto") {
    auto cpu = load(path, "cpu", 256, head);
    auto gpu = load(path, "cuda:0", 256, head);
    Agreement a;
    a.whole_pass_on_gpu = gpu->backend().name() == "cuda" && gpu->gpu_model() != nullptr;
    std::vector<std::int32_t> tokens;
    for (int i = 0; i < 24; ++i) tokens.push_back((i * 7919 + 5) % 500);
    const auto x = cpu->evaluate_all(tokens), y = gpu->evaluate_all(tokens);
    const std::size_t vocab = cpu->model().config().vocab_size;
    for (std::size_t t = 0; t < tokens.size(); ++t)
        a.worst_cosine = std::min(
            a.worst_cosine,
            crossval::cosine_similarity(std::span<const float>(x.data() + t * vocab, vocab),
                                        std::span<const float>(y.data() + t * vocab, vocab)));
    inference::GenerationRequest r;
    r.prompt = "the quick brown fox";
    r.n_predict = 64;
    r.sampling.greedy = true;
    a.cpu = cpu->generate(r);
    a.gpu = gpu->generate(r);
    return a;
}

}  // namespace

TEST_CASE("cuda and cpu give the same greedy tokens and logits on whole models") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("GPU parity skipped: " << (info.compiled ? info.reason : "not a gpu build"));
        return;
    }
    test::TempDir dir("cuda-parity");
    for (const char* preset : {"small", "2b4t"}) {
        INFO(preset);
        const Agreement a = compare_with_cpu(test::write_synthetic_model(dir, preset, 3));
        CHECK(a.whole_pass_on_gpu);
        CHECK(a.worst_cosine >= 0.999);
        CHECK(a.cpu.tokens == a.gpu.tokens);
        std::printf(
            "%s: worst logits cosine %.8f; decode cpu %.1f tok/s, cuda %.1f tok/s; "
            "prefill cpu %.1f, cuda %.1f tok/s\n",
            preset, a.worst_cosine, a.cpu.metrics.decode_tokens_per_s,
            a.gpu.metrics.decode_tokens_per_s, a.cpu.metrics.prefill_tokens_per_s,
            a.gpu.metrics.prefill_tokens_per_s);
    }
}

TEST_CASE("the Q8_0 head (--head q8_0) on the GPU gives the CPU's tokens and logits") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("GPU Q8_0 head skipped: " << (info.compiled ? info.reason : "not a gpu build"));
        return;
    }
    test::TempDir dir("cuda-q8-head");
    for (const char* preset : {"small", "2b4t"}) {
        INFO(preset);
        const Agreement a = compare_with_cpu(test::write_synthetic_model(dir, preset, 3), "q8_0");
        REQUIRE(a.whole_pass_on_gpu);  // (not the fallback with the products only on the GPU)
        CHECK(a.worst_cosine >= 0.999);
        CHECK(a.cpu.tokens == a.gpu.tokens);
        std::printf("%s, Q8_0 head: worst logits cosine %.8f; decode cuda %.1f tok/s\n", preset,
                    a.worst_cosine, a.gpu.metrics.decode_tokens_per_s);
    }
}

TEST_CASE("batched decode on the GPU gives every sequence what it gets alone") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("GPU batching skipped: " << (info.compiled ? info.reason : "not a gpu build"));
        return;
    }
    test::TempDir dir("cuda-batch");
    const std::string path = test::write_synthetic_model(dir, "small", 5);
    auto gpu = load(path, "cuda:0");
    REQUIRE(gpu->gpu_model() != nullptr);
    const std::vector<std::string> prompts = {"the quick brown fox", "hello", "a b c d e f g",
                                              "once upon a time", "zzz"};
    // Greedy (the token chosen on the device when alone) and sampled (the top-k candidates
    // selected on the device when alone; in the batch the host samples from the logits).
    for (const bool greedy : {true, false}) {
        INFO((greedy ? "greedy" : "sampled"));
        auto request = [greedy](const std::string& prompt, int n) {
            inference::GenerationRequest r;
            r.prompt = prompt;
            r.n_predict = n;
            r.sampling.greedy = greedy;
            r.sampling.seed = 42;
            return r;
        };
        std::vector<std::vector<std::int32_t>> alone;
        for (std::size_t i = 0; i < prompts.size(); ++i)
            alone.push_back(gpu->generate(request(prompts[i], 20 + static_cast<int>(i))).tokens);
        // 3 slots for 5 requests: sequences join as others finish.
        inference::BatchGenerator batch(*gpu, 3);
        std::map<std::size_t, std::vector<std::int32_t>> together;
        std::size_t next = 0;
        int widest = 0;
        while (together.size() < prompts.size()) {
            while (next < prompts.size() && batch.has_free_slot()) {
                const std::size_t i = next++;
                batch.add(
                    request(prompts[i], 20 + static_cast<int>(i)), nullptr,
                    [&together, i](inference::GenerationResult&& r) { together[i] = r.tokens; });
            }
            widest = std::max(widest, batch.step());
        }
        CHECK(widest == 3);
        for (std::size_t i = 0; i < prompts.size(); ++i) {
            INFO(prompts[i]);
            CHECK(together[i] == alone[i]);
        }
    }
}

// Loads with the environment variable `name` set to `value` (unset again after).
std::unique_ptr<inference::Engine> load_with(const char* name, const char* value,
                                             const std::string& path, int context) {
    ::setenv(name, value, 1);
    auto e = load(path, "cuda:0", context);
    ::unsetenv(name);
    return e;
}

TEST_CASE("the fused single-token GPU step equals the per-kernel step bit for bit") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("fused step check skipped: " << (info.compiled ? info.reason : "not a gpu build"));
        return;
    }
    test::TempDir dir("cuda-fused");
    for (const char* preset : {"small", "2b4t"}) {
        INFO(preset);
        const std::string path = test::write_synthetic_model(dir, preset, 11);
        // Past 256 positions the fused step's attention splits positions over ranges of whole
        // chunks (decode_step.cu: several blocks per KV head meeting through flags); with
        // BITNET_CUDA_LONG_RANGES=2 a range holds several chunks (as past ~3300 positions on an
        // H100); with the long path off the one-block-per-head path runs everywhere (past 384
        // splitting each head's values over several blocks, past 512 streaming keys and values
        // beyond those requested before its barrier).
        const int steps = std::string(preset) == "small" ? 600 : 450;
        auto fused = load(path, "cuda:0", steps);
        auto few_ranges = load_with("BITNET_CUDA_LONG_RANGES", "2", path, steps);
        auto short_only = load_with("BITNET_CUDA_LONG_ATTENTION", "100000", path, steps);
        auto split = load_with("BITNET_CUDA_FUSED_STEP", "0", path, steps);
        REQUIRE(fused->gpu_model() != nullptr);
        REQUIRE(few_ranges->gpu_model() != nullptr);
        REQUIRE(short_only->gpu_model() != nullptr);
        REQUIRE(split->gpu_model() != nullptr);
        const std::size_t vocab = fused->model().config().vocab_size;
        std::vector<float> a(vocab), b(vocab);
        const std::vector<inference::Engine*> fused_ones = {fused.get(), few_ranges.get(),
                                                            short_only.get()};
        std::vector<int> differing_steps(fused_ones.size(), 0);
        double worst = 0;
        for (int pos = 0; pos < steps; ++pos) {
            const std::int32_t token = (pos * 7919 + 13) % 500;
            split->gpu_model()->forward(&token, 1, pos, false, b.data());
            for (std::size_t f = 0; f < fused_ones.size(); ++f) {
                kernels::GpuModel* m = fused_ones[f]->gpu_model();
                // (through forward_last, the decode loop's path: same logits)
                const float* last = m->forward_last(&token, 1, pos);
                std::copy(last, last + vocab, a.begin());
                // The device's greedy choice (the same token at the same position again: the
                // cache row is rewritten with the same values) is the host's choice from these.
                if (pos % 50 == 7)
                    CHECK(m->forward_greedy(&token, 1, pos) == inference::greedy_token(a));
                double diff = 0;
                for (std::size_t i = 0; i < vocab; ++i)
                    diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
                worst = std::max(worst, diff);
                if (diff != 0) ++differing_steps[f];
            }
        }
        std::printf(
            "%s: fused (default / 2 ranges / short path) vs per-kernel step, %d positions: "
            "%d / %d / %d differ, max |diff| %g\n",
            preset, steps, differing_steps[0], differing_steps[1], differing_steps[2], worst);
        CHECK(differing_steps == std::vector<int>(fused_ones.size(), 0));
    }
}

TEST_CASE("a burst of greedy steps on the device picks what greedy steps one by one pick") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("greedy burst check skipped: " << (info.compiled ? info.reason : "not a gpu build"));
        return;
    }
    test::TempDir dir("cuda-burst");
    for (const char* preset : {"small", "2b4t"}) {
        INFO(preset);
        const std::string path = test::write_synthetic_model(dir, preset, 5);
        // The bursts start at 270 positions and cross 288, where the fused step's attention
        // takes its long-context path, and the second one starts mid-context.
        const int context = 330, prompt_length = 270;
        auto fused = load(path, "cuda:0", context);
        auto split = load_with("BITNET_CUDA_FUSED_STEP", "0", path, context);
        REQUIRE(fused->gpu_model() != nullptr);
        REQUIRE(split->gpu_model() != nullptr);
        std::vector<std::int32_t> prompt;
        for (int i = 0; i < prompt_length; ++i) prompt.push_back((i * 7919 + 3) % 500);
        const std::int32_t first =
            fused->gpu_model()->forward_greedy(prompt.data(), prompt_length, 0);
        REQUIRE(split->gpu_model()->forward_greedy(prompt.data(), prompt_length, 0) == first);
        // One by one on the per-kernel step, feeding each choice back from the host.
        std::vector<std::int32_t> expected;
        std::int32_t token = first;
        for (int i = 0; i < 50; ++i) {
            token = split->gpu_model()->forward_greedy(&token, 1, prompt_length + i);
            expected.push_back(token);
        }
        // Bursts of 37 and 13 on the fused step (one graph of launches each).
        std::vector<std::int32_t> got(50, -2);
        fused->gpu_model()->decode_greedy(first, prompt_length, 37, got.data());
        fused->gpu_model()->decode_greedy(got[36], prompt_length + 37, 13, got.data() + 37);
        CHECK(got == expected);
        // Greedy generation through the bursts gives the CPU's tokens.
        inference::GenerationRequest r;
        r.prompt = "once upon a time";
        r.n_predict = 41;  // (two whole bursts and a part)
        r.sampling.greedy = true;
        auto cpu = load(path, "cpu", context);
        CHECK(fused->generate(r).tokens == cpu->generate(r).tokens);
    }
}

TEST_CASE(
    "every attention shape gives the same bits: grouped heads, split kernels, chunked values, one "
    "kernel") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("attention shapes check skipped: " << (info.compiled ? info.reason
                                                                  : "not a gpu build"));
        return;
    }
    test::TempDir dir("cuda-attention-shapes");
    // 2b4t: 4 query heads per KV head. A 200-row prefill runs the one-kernel shape (groups of 4
    // or 1); 32 sequences decoded together run the split scores / values kernels (or, with the
    // split off, the one-kernel shape), over several V tiles and score blocks.
    const std::string path = test::write_synthetic_model(dir, "2b4t", 17);
    auto grouped = load(path, "cuda:0", 256);
    ::setenv("BITNET_CUDA_ATTENTION_GROUP", "1", 1);
    auto single = load(path, "cuda:0", 256);
    ::unsetenv("BITNET_CUDA_ATTENTION_GROUP");
    ::setenv("BITNET_CUDA_ATTENTION_SPLIT", "0", 1);
    auto one_kernel = load(path, "cuda:0", 256);
    ::unsetenv("BITNET_CUDA_ATTENTION_SPLIT");
    // (the split values a chunk of positions per block, as for long spans: past 128 positions
    // the chunks' sums meet in a separate kernel)
    auto chunked = load_with("BITNET_CUDA_ATTENTION_CHUNKED", "0", path, 256);
    std::vector<std::int32_t> tokens;
    for (int i = 0; i < 200; ++i) tokens.push_back((i * 7919 + 3) % 500);
    const bool same_prefill = grouped->evaluate_all(tokens) == single->evaluate_all(tokens);
    CHECK(same_prefill);  // (a bool: Catch would print both 25-million-float vectors)

    constexpr int kSeqs = 32, kSteps = 150;
    std::vector<kernels::GpuModel*> models = {grouped->gpu_model(), single->gpu_model(),
                                              one_kernel->gpu_model(), chunked->gpu_model()};
    for (kernels::GpuModel* m : models) {
        REQUIRE(m != nullptr);
        m->reserve_sequences(kSeqs, kSteps);
    }
    const std::size_t vocab = grouped->model().config().vocab_size;
    int differing = 0;
    std::vector<int> positions(kSeqs), seqs(kSeqs);
    std::vector<std::int32_t> step(kSeqs);
    for (int pos = 0; pos < kSteps; ++pos) {
        for (int q = 0; q < kSeqs; ++q) {
            positions[q] = pos;
            seqs[q] = q;
            step[q] = (pos * 31 + q * 17) % 500;
        }
        std::vector<std::vector<float>> logits;
        for (kernels::GpuModel* m : models) {
            const float* l =
                m->forward_sequences(step.data(), positions.data(), seqs.data(), kSeqs, false);
            logits.emplace_back(l, l + kSeqs * vocab);
        }
        if (logits[0] != logits[1] || logits[0] != logits[2] || logits[0] != logits[3]) ++differing;
    }
    CHECK(differing == 0);
}

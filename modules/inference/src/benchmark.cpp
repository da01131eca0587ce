#include "bitnet/inference/benchmark.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/common/timer.hpp"
#include "bitnet/kernels/memory_bandwidth.hpp"

namespace bitnet::inference {
namespace {

Throughput summarize(std::vector<double> runs) {
    Throughput t;
    t.runs = std::move(runs);
    if (t.runs.empty()) return t;
    for (double r : t.runs) t.mean += r;
    t.mean /= static_cast<double>(t.runs.size());
    double var = 0;
    for (double r : t.runs) var += (r - t.mean) * (r - t.mean);
    t.stddev = t.runs.size() > 1 ? std::sqrt(var / static_cast<double>(t.runs.size() - 1)) : 0.0;
    return t;
}

// Deterministic token ids spread over the vocabulary (content does not matter for speed).
std::vector<std::int32_t> bench_tokens(int n, std::int64_t vocab) {
    std::vector<std::int32_t> t(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        t[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((1 + i * 7919) % vocab);
    return t;
}

// `batch` sequences with different prompts (a prefill each, untimed), then gen_tokens timed
// steps that each run one forward pass over one token of every sequence.
BatchedThroughput batched_result(int batch, const std::vector<double>& runs) {
    BatchedThroughput t;
    t.batch = batch;
    t.aggregate = summarize(runs);
    t.steps_per_s = t.aggregate.mean / batch;
    return t;
}

// The same measurement on the GPU forward pass: `batch` device KV slots, one pass per step.
BatchedThroughput run_batched_gpu(kernels::GpuModel& gpu, const BenchmarkOptions& o, int batch,
                                  std::int64_t prompt, std::int64_t vocab) {
    gpu.reserve_sequences(batch, static_cast<int>(prompt + o.gen_tokens + 1));
    for (int s = 0; s < batch; ++s) {
        auto tokens = bench_tokens(static_cast<int>(prompt) + s, vocab);
        tokens.erase(tokens.begin(), tokens.begin() + s);  // a different prompt per sequence
        std::vector<int> positions(tokens.size()), seqs(tokens.size(), s);
        for (std::size_t i = 0; i < tokens.size(); ++i) positions[i] = static_cast<int>(i);
        gpu.forward_sequences(tokens.data(), positions.data(), seqs.data(),
                              static_cast<int>(tokens.size()), true);
    }
    const auto next = bench_tokens(o.gen_tokens * batch, vocab);
    std::vector<int> positions(static_cast<std::size_t>(batch)), seqs(positions.size());
    // Each step also picks every row's greedy token on the device, as the server's batches do
    // (rather than copying batch x vocab logits out).
    const std::vector<kernels::RowChoice> greedy(static_cast<std::size_t>(batch));
    std::vector<kernels::RowCandidates> chosen;
    std::vector<double> runs;
    for (int rep = 0; rep < o.repeats; ++rep) {
        Timer timer;
        for (int i = 0; i < o.gen_tokens; ++i) {
            for (int s = 0; s < batch; ++s) {
                positions[static_cast<std::size_t>(s)] = static_cast<int>(prompt + i);
                seqs[static_cast<std::size_t>(s)] = s;
            }
            gpu.forward_sequences_top_k(next.data() + static_cast<std::size_t>(i) * batch,
                                        positions.data(), seqs.data(), batch, greedy.data(),
                                        nullptr, chosen);
        }
        runs.push_back(static_cast<double>(o.gen_tokens) * batch / timer.seconds());
    }
    return batched_result(batch, runs);
}

BatchedThroughput run_batched(Engine& engine, const BenchmarkOptions& o, int batch) {
    const auto& model = engine.model();
    const std::int64_t vocab = model.config().vocab_size;
    const std::int64_t prompt = std::max(1, o.depth + o.prompt_tokens);
    std::vector<std::unique_ptr<models::KvCache>> caches;
    std::vector<float> logits;
    if (kernels::GpuModel* gpu = engine.gpu_model(); gpu != nullptr)
        return run_batched_gpu(*gpu, o, batch, prompt, vocab);
    for (int s = 0; s < batch; ++s) {
        caches.push_back(std::make_unique<models::KvCache>(
            model.config(), prompt + o.gen_tokens + 1, models::KvType::F16));
        auto tokens = bench_tokens(static_cast<int>(prompt) + s, vocab);
        tokens.erase(tokens.begin(), tokens.begin() + s);  // a different prompt per sequence
        model.forward(tokens, 0, *caches.back(), engine.backend(), models::LogitsFor::LastPosition,
                      logits);
    }
    const auto next = bench_tokens(o.gen_tokens * batch, vocab);
    std::vector<models::BatchToken> step(static_cast<std::size_t>(batch));
    std::vector<double> runs;
    for (int rep = 0; rep < o.repeats; ++rep) {
        Timer timer;
        for (int i = 0; i < o.gen_tokens; ++i) {
            for (int s = 0; s < batch; ++s)
                step[static_cast<std::size_t>(s)] = {next[static_cast<std::size_t>(i * batch + s)],
                                                     prompt + i,
                                                     caches[static_cast<std::size_t>(s)].get()};
            model.forward_batch(step, engine.backend(), logits);
        }
        runs.push_back(static_cast<double>(o.gen_tokens) * batch / timer.seconds());
    }
    return batched_result(batch, runs);
}

}  // namespace

BenchmarkResult run_benchmark(Engine& engine, const BenchmarkOptions& o) {
    if (o.repeats < 1) fail(ErrorCode::InvalidArgument, "-r must be at least 1");
    if (o.prompt_tokens < 0 || o.gen_tokens < 0 || o.depth < 0)
        fail(ErrorCode::InvalidArgument, "-p, -n and -d must be >= 0");
    if (static_cast<std::int64_t>(o.depth) + o.prompt_tokens + o.gen_tokens + 1 > engine.context())
        fail(ErrorCode::InvalidArgument, "-d + -p + -n exceed the context of " +
                                             std::to_string(engine.context()) +
                                             " tokens; raise -c");
    for (int batch : o.batch_sizes)
        if (batch < 1 || batch > 1024)
            fail(ErrorCode::InvalidArgument,
                 "-b batch sizes must be 1..1024 (got " + std::to_string(batch) + ")");
    const auto& model = engine.model();
    const std::int64_t vocab = model.config().vocab_size;
    BenchmarkResult result;
    // (what greedy tokens read: with a screened head on the CPU, its int8 rows)
    result.weight_bytes_per_token = engine.weight_bytes_per_token(true);
    result.full_weight_bytes_per_token = engine.weight_bytes_per_token(false);
    const int threads = o.threads > 0 ? o.threads : cpu_features().physical_cores;
    kernels::GpuModel* gpu = engine.gpu_model();
    // The floor is the bandwidth of the memory the weights stream from: the GPU's on CUDA.
    auto read_bandwidth = [&] {
        return gpu != nullptr ? gpu->measure_bandwidth_gbs()
                              : kernels::measure_read_bandwidth_gbs(threads);
    };
    const double bytes_per_token = static_cast<double>(result.weight_bytes_per_token);

    models::KvCache cache(model.config(), o.depth + o.prompt_tokens + o.gen_tokens + 1,
                          models::KvType::F16);
    // The greedy token after the last position, as greedy generation chooses it (on the GPU, or
    // through the CPU backend's screened head).
    auto forward = [&](std::span<const std::int32_t> tokens, std::int64_t start) {
        if (gpu == nullptr)
            model.forward_greedy(tokens, start, cache, engine.backend());
        else
            gpu->forward_greedy(tokens.data(), static_cast<int>(tokens.size()),
                                static_cast<int>(start));
    };
    // Warm-up: fault the memory-mapped weights in and settle the caches (on the GPU also the
    // working buffers for the prompt and the captured single-token graph).
    if (gpu != nullptr && o.prompt_tokens > 0) forward(bench_tokens(o.prompt_tokens, vocab), 0);
    const std::int32_t first[1] = {1};
    forward(first, 0);
    if (o.depth > 0) forward(bench_tokens(o.depth, vocab), 0);  // the cache the tests start on

    std::vector<double> pp, tg;
    for (int rep = 0; rep < o.repeats; ++rep) {
        if (o.prompt_tokens > 0) {
            const auto tokens = bench_tokens(o.prompt_tokens, vocab);
            Timer timer;
            forward(tokens, o.depth);
            pp.push_back(o.prompt_tokens / timer.seconds());
        }
        if (o.gen_tokens > 0) {
            // A shared machine's bandwidth moves from minute to minute (the 2-core cloud VMs
            // read 21-38 GB/s within one session): each tg run is held against a read test
            // taken right before it, not only against the start-up one.
            result.bandwidth_runs_gbs.push_back(read_bandwidth());
            const auto tokens = bench_tokens(o.gen_tokens, vocab);
            Timer timer;
            if (gpu != nullptr) {
                // Greedy generation's path on the GPU: bursts of steps, each fed the token the
                // step before chose on the device (the first, the bench's token).
                std::int32_t token = tokens[0];
                std::int32_t chosen[kernels::kGreedyBurst];
                for (int i = 0; i < o.gen_tokens; i += kernels::kGreedyBurst) {
                    const int count = std::min(kernels::kGreedyBurst, o.gen_tokens - i);
                    gpu->decode_greedy(token, static_cast<int>(o.depth + o.prompt_tokens + i),
                                       count, chosen);
                    token = std::max(0, chosen[count - 1]);
                }
            } else {
                for (int i = 0; i < o.gen_tokens; ++i) {
                    const std::int32_t one[1] = {tokens[static_cast<std::size_t>(i)]};
                    forward(one, o.depth + o.prompt_tokens + i);
                }
            }
            tg.push_back(o.gen_tokens / timer.seconds());
        }
    }
    for (int batch : o.batch_sizes) {
        if (batch == 1 || o.gen_tokens == 0) continue;
        result.batched.push_back(run_batched(engine, o, batch));
    }
    result.pp = summarize(pp);
    result.tg = summarize(tg);
    result.bandwidth_gbs = result.bandwidth_runs_gbs.empty()
                               ? read_bandwidth()
                               : summarize(result.bandwidth_runs_gbs).mean;
    const auto full_bytes = static_cast<double>(result.full_weight_bytes_per_token);
    result.floor_tokens_per_s = result.bandwidth_gbs * 1e9 / bytes_per_token;
    result.full_floor_tokens_per_s = result.bandwidth_gbs * 1e9 / full_bytes;
    result.tg_effective_gbs = result.tg.mean * bytes_per_token / 1e9;
    // The mean of each run against its own floor.
    for (std::size_t i = 0; i < tg.size(); ++i) {
        const double share =
            100.0 * tg[i] / (result.bandwidth_runs_gbs[i] * 1e9) / static_cast<double>(tg.size());
        result.tg_percent_of_floor += share * bytes_per_token;
        result.tg_percent_of_full_floor += share * full_bytes;
    }
    for (auto& b : result.batched)
        b.percent_of_floor = result.full_floor_tokens_per_s > 0
                                 ? 100.0 * b.steps_per_s / result.full_floor_tokens_per_s
                                 : 0;
    return result;
}

}  // namespace bitnet::inference

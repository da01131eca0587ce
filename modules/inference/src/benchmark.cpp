#include "bitnet/inference/benchmark.hpp"

#include <cmath>

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

}  // namespace

BenchmarkResult run_benchmark(Engine& engine, const BenchmarkOptions& o) {
    if (o.repeats < 1) fail(ErrorCode::InvalidArgument, "-r must be at least 1");
    if (o.prompt_tokens < 0 || o.gen_tokens < 0)
        fail(ErrorCode::InvalidArgument, "-p and -n must be >= 0");
    if (o.prompt_tokens + o.gen_tokens + 1 > engine.context())
        fail(ErrorCode::InvalidArgument, "-p + -n exceed the context of " +
                                             std::to_string(engine.context()) +
                                             " tokens; raise -c");
    const auto& model = engine.model();
    const std::int64_t vocab = model.config().vocab_size;
    BenchmarkResult result;
    result.weight_bytes_per_token = model.weight_bytes_per_token();
    const int threads = o.threads > 0 ? o.threads : cpu_features().physical_cores;
    result.bandwidth_gbs = kernels::measure_read_bandwidth_gbs(threads);
    result.floor_tokens_per_s =
        result.bandwidth_gbs * 1e9 / static_cast<double>(result.weight_bytes_per_token);

    models::KvCache cache(model.config(), o.prompt_tokens + o.gen_tokens + 1, models::KvType::F16);
    std::vector<float> logits;
    // Warm-up: fault the memory-mapped weights in and settle the caches.
    const std::int32_t first[1] = {1};
    model.forward(first, 0, cache, engine.backend(), models::LogitsFor::LastPosition, logits);

    std::vector<double> pp, tg;
    for (int rep = 0; rep < o.repeats; ++rep) {
        if (o.prompt_tokens > 0) {
            const auto tokens = bench_tokens(o.prompt_tokens, vocab);
            Timer timer;
            model.forward(tokens, 0, cache, engine.backend(), models::LogitsFor::LastPosition,
                          logits);
            pp.push_back(o.prompt_tokens / timer.seconds());
        }
        if (o.gen_tokens > 0) {
            const auto tokens = bench_tokens(o.gen_tokens, vocab);
            Timer timer;
            for (int i = 0; i < o.gen_tokens; ++i) {
                const std::int32_t one[1] = {tokens[static_cast<std::size_t>(i)]};
                model.forward(one, o.prompt_tokens + i, cache, engine.backend(),
                              models::LogitsFor::LastPosition, logits);
            }
            tg.push_back(o.gen_tokens / timer.seconds());
        }
    }
    result.pp = summarize(pp);
    result.tg = summarize(tg);
    result.tg_effective_gbs =
        result.tg.mean * static_cast<double>(result.weight_bytes_per_token) / 1e9;
    result.tg_percent_of_floor =
        result.floor_tokens_per_s > 0 ? 100.0 * result.tg.mean / result.floor_tokens_per_s : 0;
    return result;
}

}  // namespace bitnet::inference

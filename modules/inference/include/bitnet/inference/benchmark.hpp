// A llama-bench-like measurement of an engine: prompt processing (pp) and text generation (tg)
// throughput over repeated runs, with the weight bytes streamed per generated token and the
// share of the memory-bandwidth floor that represents.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bitnet/inference/engine.hpp"

namespace bitnet::inference {

struct BenchmarkOptions {
    int prompt_tokens = 128;  // pp size (0: skip)
    int gen_tokens = 128;     // tg size (0: skip)
    // Tokens already in the KV cache when each test starts (llama-bench's -d): filled once,
    // untimed; pp then runs at positions depth.., tg after depth + the prompt. Long-context
    // speed is what it measures (attention reads the whole cache every token).
    int depth = 0;
    int repeats = 5;
    int threads = 0;  // for the bandwidth test
    // Batched decode (-b): for each size > 1, that many sequences decoded together, one
    // forward pass per step (tg of gen_tokens steps each); 1 is the tg test itself.
    std::vector<int> batch_sizes = {1};
};

struct Throughput {
    double mean = 0, stddev = 0;  // tokens per second
    std::vector<double> runs;
};

struct BatchedThroughput {
    int batch = 1;
    Throughput aggregate;         // tokens per second summed over the sequences
    double steps_per_s = 0;       // forward passes per second (weights streamed once each)
    double percent_of_floor = 0;  // steps_per_s against the full single-token floor
};

struct BenchmarkResult {
    Throughput pp, tg;
    std::vector<BatchedThroughput> batched;
    // Measured memory read bandwidth: the mean of bandwidth_runs_gbs (a read test right before
    // each tg run), or the start-up read test when there is no tg run.
    double bandwidth_gbs = 0;
    std::vector<double> bandwidth_runs_gbs;
    // Bytes a greedy token reads (pp and tg choose greedy tokens): with the CPU's screened head
    // its int8 rows instead of the F16 matrix. full_: every weight as stored, what a token
    // with all logits reads (sampling, the batched steps).
    std::uint64_t weight_bytes_per_token = 0, full_weight_bytes_per_token = 0;
    double floor_tokens_per_s = 0;  // bandwidth_gbs / bytes per token
    double full_floor_tokens_per_s = 0;
    double tg_effective_gbs = 0;          // bytes per token * tg tok/s
    double tg_percent_of_floor = 0;       // mean over the tg runs of each against its own read test
    double tg_percent_of_full_floor = 0;  // the same against the full bytes
};

BenchmarkResult run_benchmark(Engine& engine, const BenchmarkOptions& options);

}  // namespace bitnet::inference

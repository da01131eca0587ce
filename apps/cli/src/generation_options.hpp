// Options shared by `bitnet run` and `bitnet chat`: model selection, engine settings and
// sampling, with their CLI flags, plus the timing summary both print.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "bitnet/inference/engine.hpp"

namespace bitnet::cli {

struct GenerationOptions {
    std::string model;
    std::string tokenizer;
    int n_predict = 128;
    int threads = 0;
    std::int64_t context = 0;
    std::string kv_type = "f16";
    std::string kernel = "auto";
    std::string head = "auto";
    std::string device;
    bool flash_attn = false;
    bool mmap = false;  // keep the weights in the file's mapping (CPU copies them to huge pages)
    bool context_shift = false;
    float temperature = 0.8f;
    int top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.1f;
    int repeat_last_n = 64;
    std::int64_t seed = -1;
    bool greedy = false;
    std::vector<std::string> stop;
    std::string chat_format;
    std::string metrics_json;
};

void add_generation_options(CLI::App* cmd, GenerationOptions& o);

// Resolves the model (-m, BITNET_GGUF, the built-in demo model), says on stderr which one and
// why, and loads the engine.
std::unique_ptr<inference::Engine> load_engine(const GenerationOptions& o);

// The sampling parameters, with the seed from --seed, BITNET_SEED or a random one.
inference::SamplingParams sampling_params(const GenerationOptions& o);

// One-line timing summary on stderr, and the metrics JSON file when --metrics-json is given.
void report_metrics(const GenerationOptions& o, const inference::GenerationResult& result,
                    std::uint64_t seed);

}  // namespace bitnet::cli

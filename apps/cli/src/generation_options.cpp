#include "generation_options.hpp"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "bitnet/common/atomic_file.hpp"
#include "bitnet/common/env.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/common/progress.hpp"
#include "model_discovery.hpp"

namespace bitnet::cli {

void add_generation_options(CLI::App* cmd, GenerationOptions& o) {
    cmd->add_option(
        "-m,--model", o.model,
        "GGUF model (default: BITNET_GGUF, else models/**/*.gguf, else the built-in demo model)");
    cmd->add_option("--tokenizer", o.tokenizer, "Use this tokenizer.json instead of the model's");
    cmd->add_option("-n,--n-predict", o.n_predict,
                    "Tokens to generate (-1: until the context is full)")
        ->capture_default_str();
    cmd->add_option("-t,--threads", o.threads,
                    "CPU threads (default: BITNET_THREADS, else physical cores)");
    cmd->add_option("-c,--ctx-size", o.context,
                    "Context size in tokens (default: the model's, at most 4096)");
    cmd->add_option("--kv-type", o.kv_type, "KV cache type")
        ->check(CLI::IsMember({"f16", "f32"}))
        ->capture_default_str();
    cmd->add_option("--kernel", o.kernel, "auto | i2s | tl1 | tl2 | ref")->capture_default_str();
    cmd->add_option(
           "--head", o.head,
           "Output head: auto (CPU: F16 as stored, greedy and top-k tokens screened by an int8 "
           "copy — the same tokens, fewer bytes per token) | f16 (as stored) | q8_0 (re-quantized "
           "at load: "
           "half the bytes per token)")
        ->check(CLI::IsMember({"auto", "f16", "q8_0"}))
        ->capture_default_str();
    cmd->add_option("--device", o.device,
                    "auto | cpu | cuda[:N] (default: BITNET_DEVICE, else auto)");
    cmd->add_flag("--mmap", o.mmap,
                  "CPU: read the weights in place from the file's mapping (no copy into huge "
                  "pages; pages shared with other processes, decode a few % slower)");
    cmd->add_flag("--flash-attn,-f", o.flash_attn,
                  "llama.cpp's flash-attention numerics (F16 accumulation)");
    cmd->add_flag("--context-shift", o.context_shift,
                  "When the context is full, drop the older half and go on");
    cmd->add_option("--temp", o.temperature, "Temperature (0 = greedy)")->capture_default_str();
    cmd->add_option("--top-k", o.top_k, "Top-k (<= 0: off)")->capture_default_str();
    cmd->add_option("--top-p", o.top_p, "Top-p in (0, 1]")->capture_default_str();
    cmd->add_option("--min-p", o.min_p, "Min-p in [0, 1]")->capture_default_str();
    cmd->add_option("--repeat-penalty", o.repeat_penalty, "Repetition penalty (1 = off)")
        ->capture_default_str();
    cmd->add_option("--repeat-last-n", o.repeat_last_n, "Tokens the penalty looks back over")
        ->capture_default_str();
    cmd->add_option("--seed", o.seed,
                    "Random seed (default: BITNET_SEED, else random; printed in the summary)");
    cmd->add_flag("--greedy", o.greedy,
                  "Always take the most likely token (no sampling, no penalty)");
    cmd->add_option("--stop", o.stop, "Stop when this text is generated (repeatable)");
    cmd->add_option("--chat-format", o.chat_format,
                    "bitnet | llama3 (default: from the model's chat template)")
        ->check(CLI::IsMember({"bitnet", "llama3"}));
    cmd->add_option("--metrics-json", o.metrics_json,
                    "Write load/prefill/decode metrics as JSON to this file");
}

std::unique_ptr<inference::Engine> load_engine(const GenerationOptions& o) {
    const EnvConfig& env = env_config();
    inference::EngineOptions e;
    const ModelChoice model = discover_model(o.model);
    if (!model.reason.empty()) std::fprintf(stderr, "%s\n", model.reason.c_str());
    e.model_path = model.path;
    e.tokenizer_path = o.tokenizer.empty() ? env.tokenizer.value_or("") : o.tokenizer;
    e.threads = o.threads;
    e.context = o.context;
    e.kv_type = o.kv_type == "f32" ? models::KvType::F32 : models::KvType::F16;
    e.kernel = o.kernel;
    e.head = o.head;
    e.device = !o.device.empty() ? o.device : env.device.value_or("auto");
    e.flash_attention = o.flash_attn;
    e.keep_mapped = o.mmap;
    e.context_shift = o.context_shift;
    return inference::Engine::load(e);
}

inference::SamplingParams sampling_params(const GenerationOptions& o) {
    inference::SamplingParams p;
    p.temperature = o.temperature;
    p.top_k = o.top_k;
    p.top_p = o.top_p;
    p.min_p = o.min_p;
    p.repeat_penalty = o.repeat_penalty;
    p.repeat_last_n = o.repeat_last_n;
    p.greedy = o.greedy;
    if (o.seed >= 0) {
        p.seed = static_cast<std::uint64_t>(o.seed);
    } else if (env_config().seed) {
        p.seed = *env_config().seed;
    } else {
        p.seed =
            (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
    }
    p.validate();
    return p;
}

void report_metrics(const GenerationOptions& o, const inference::GenerationResult& r,
                    std::uint64_t seed) {
    const auto& m = r.metrics;
    std::fprintf(stderr,
                 "\n[load %.0f ms | prompt %lld tok, %.1f tok/s | generated %lld tok, %.1f tok/s | "
                 "first token %.0f ms | "
                 "peak RSS %s | %s | seed %llu | stop: %s]\n",
                 m.load_ms, static_cast<long long>(m.prompt_tokens), m.prefill_tokens_per_s,
                 static_cast<long long>(m.generated_tokens), m.decode_tokens_per_s,
                 m.time_to_first_token_ms, format_bytes(m.peak_rss_bytes).c_str(),
                 m.backend.c_str(), static_cast<unsigned long long>(seed),
                 std::string(inference::stop_reason_name(r.stop_reason)).c_str());
    if (r.stop_reason == inference::StopReason::ContextFull)
        std::fprintf(stderr,
                     "error: the context is full (%lld tokens); raise -c or pass --context-shift\n",
                     static_cast<long long>(m.prompt_tokens + m.generated_tokens));
    if (o.metrics_json.empty()) return;
    nlohmann::json j = {{"load_ms", m.load_ms},
                        {"tokenize_ms", m.tokenize_ms},
                        {"prompt_tokens", m.prompt_tokens},
                        {"prefilled_tokens", m.prefilled_tokens},
                        {"prefill_ms", m.prefill_ms},
                        {"prefill_tokens_per_s", m.prefill_tokens_per_s},
                        {"generated_tokens", m.generated_tokens},
                        {"decode_ms", m.decode_ms},
                        {"decode_tokens_per_s", m.decode_tokens_per_s},
                        {"time_to_first_token_ms", m.time_to_first_token_ms},
                        {"peak_rss_bytes", m.peak_rss_bytes},
                        {"weight_bytes_per_token", m.weight_bytes_per_token},
                        {"backend", m.backend},
                        {"kernels", m.kernels},
                        {"seed", seed},
                        {"stop_reason", std::string(inference::stop_reason_name(r.stop_reason))}};
    AtomicFileWriter file(o.metrics_json);
    const std::string text = j.dump(2) + "\n";
    file.write(text.data(), text.size());
    file.commit();
}

}  // namespace bitnet::cli

// Engine — loads a model and generates text: tokenize, prefill the whole prompt in one batched
// forward pass, then sample token by token through the KV cache, streaming text as it becomes
// complete. Keeps the KV cache between calls and reuses the longest common token prefix, so a
// chat that re-renders its whole conversation each turn only pays for the new tokens.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/inference/sampler.hpp"
#include "bitnet/kernels/backend.hpp"
#include "bitnet/kernels/gpu_model.hpp"
#include "bitnet/models/transformer.hpp"
#include "bitnet/tokenizers/tokenizer.hpp"

namespace bitnet::inference {

struct EngineOptions {
    std::string model_path;
    std::string tokenizer_path;  // optional: tokenizer.json instead of the model's own
    int threads = 0;             // 0: BITNET_THREADS, else physical cores
    std::int64_t context = 0;    // 0: the model's context length, at most 4096
    models::KvType kv_type = models::KvType::F16;
    std::string kernel = "auto";  // auto | i2s | tl1 | tl2 | ref
    std::string device = "auto";  // auto | cpu | cuda[:N]
    bool flash_attention = false;
    bool context_shift = false;  // when the context fills: drop the older half instead of stopping
    // auto: an F16 head as stored, on the CPU with an int8 screening copy for greedy and top-k
    // tokens (the same tokens, ~half the head's bytes per token) | f16: as stored, no copy | q8_0:
    // re-quantize an F16 head at load
    std::string head = "auto";
    // CPU runs copy the weights into transparent huge pages (faster streaming); true keeps them
    // in the file's mapping (no copy, pages shared with other processes).
    bool keep_mapped = false;
};

struct GenerationRequest {
    std::string prompt;
    int n_predict = 128;  // > 0, or -1: until the context is full or end of generation
    SamplingParams sampling;
    std::vector<std::string> stop;  // stop strings (not included in the output)
    bool add_bos = true;
    bool parse_special = false;  // true for chat-rendered prompts
};

enum class StopReason { Length, EndOfGeneration, StopString, ContextFull, Cancelled };
std::string_view stop_reason_name(StopReason reason);

struct Metrics {
    double load_ms = 0, tokenize_ms = 0, prefill_ms = 0, decode_ms = 0, time_to_first_token_ms = 0;
    std::int64_t prompt_tokens = 0, prefilled_tokens = 0, generated_tokens = 0;
    double prefill_tokens_per_s = 0, decode_tokens_per_s = 0;
    std::uint64_t peak_rss_bytes = 0;
    std::uint64_t weight_bytes_per_token = 0;
    std::string backend;
    std::vector<std::string> kernels;
};

struct GenerationResult {
    std::string text;
    std::vector<std::int32_t> prompt_tokens;
    std::vector<std::int32_t> tokens;  // generated
    StopReason stop_reason = StopReason::Length;
    Metrics metrics;
};

using TextCallback = std::function<void(std::string_view text)>;

class Engine {
  public:
    // Throws bitnet::Error with a clear message for a missing/corrupt model, an unknown device
    // or kernel, a tokenizer that does not fit the model, and (BITNET_STRICT_MODE=1) any fallback.
    static std::unique_ptr<Engine> load(const EngineOptions& options);

    GenerationResult generate(const GenerationRequest& request, const TextCallback& on_text = {},
                              const std::atomic<bool>* cancel = nullptr);

    // Logits of every position of `tokens` from an empty cache (crossval and tests).
    std::vector<float> evaluate_all(const std::vector<std::int32_t>& tokens);

    void reset();  // forget the cached conversation
    const tokenizers::Tokenizer& tokenizer() const { return *tokenizer_; }
    const models::Transformer& model() const { return *model_; }
    const kernels::Backend& backend() const { return *backend_; }
    std::int64_t context() const { return cache_->context(); }
    double load_ms() const { return load_ms_; }
    const EngineOptions& options() const { return options_; }
    // Bytes of weights read per token: every projection and the output head, or for tokens
    // chosen with the forward pass (`chosen`: greedy, top-k) through a screened head its int8
    // rows instead of the F16 ones.
    std::uint64_t weight_bytes_per_token(bool chosen) const;
    // The device-resident GPU forward pass, when the engine runs on CUDA and the model fits it
    // (else null: products still run on the GPU through the CUDA backend).
    kernels::GpuModel* gpu_model() const { return gpu_.get(); }
    // The prompt's tokens; throws InvalidArgument when it is empty or does not fit the context.
    // Thread-safe (the server tokenizes on its request threads).
    std::vector<std::int32_t> tokenize_prompt(const GenerationRequest& request) const;

  private:
    Engine() = default;
    // Brings the cache to exactly `tokens` (reusing the common prefix): `run` gets the tokens
    // the cache lacks (at least the last one) and their first position. Returns how many ran.
    using RunFresh = std::function<void(std::span<const std::int32_t>, std::int64_t)>;
    std::int64_t sync_cache(const std::vector<std::int32_t>& tokens, const RunFresh& run);
    // Runs tokens at positions start.. on the GPU path or the CPU transformer.
    void run(std::span<const std::int32_t> tokens, std::int64_t start, models::LogitsFor which,
             std::vector<float>& logits);
    // run() for the last position's logits only, valid until the next run: on the GPU path they
    // stay in the page-locked buffer the device copied them into (no host copy per token).
    std::span<const float> run_last(std::span<const std::int32_t> tokens, std::int64_t start);
    // The CPU's screening copy of the head (EngineOptions::head auto).
    void screen_head();
    // Gives the screened head's F16 pages back every few tokens (see engine.cpp).
    void release_screened_rows();
    // The greedy choice after the last position: on the GPU, or the CPU backend's
    // matmul_argmax over the head (screened where screen_head made a copy).
    std::int32_t run_greedy(std::span<const std::int32_t> tokens, std::int64_t start);
    // A device's greedy choice, or an error when it found no finite logit (-1).
    static std::int32_t take_greedy(std::int32_t token);
    // The sampler's top-k candidates after the last position, selected on the GPU or by the
    // CPU backend's matmul_top_k.
    void run_top_k(std::span<const std::int32_t> tokens, std::int64_t start,
                   const SamplingParams& sampling, std::span<const std::int32_t> penalized_ids,
                   std::vector<Sampler::Candidate>& candidates);

    std::shared_ptr<const models::GgufFile> file_;
    std::unique_ptr<models::Transformer> model_;
    std::unique_ptr<tokenizers::Tokenizer> tokenizer_;
    std::unique_ptr<kernels::Backend> backend_;
    std::unique_ptr<models::KvCache> cache_;
    std::unique_ptr<kernels::GpuModel> gpu_;      // with it, the KV cache lives on the GPU
    std::vector<std::int32_t> cached_tokens_;     // what the KV cache holds, in order
    std::vector<float> last_logits_;              // run_last() on the CPU
    std::vector<std::uint8_t> requantized_head_;  // --head q8_0: the output matrix as Q8_0
    std::uint64_t screened_head_bytes_ = 0;       // the backend's int8 screening copy, if any
    const models::GgufTensorInfo* screened_tensor_ = nullptr;  // its F16 matrix in the file
    int screened_steps_ = 0;
    EngineOptions options_;
    double load_ms_ = 0;
};

}  // namespace bitnet::inference

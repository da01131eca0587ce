// Transformer — the BitNet b1.58 forward pass (BITNET_MODEL.md) over weights that stay in the
// memory-mapped GGUF file. It composes kernels::Backend primitives; which backend runs is the
// caller's choice (reference, cpu, ...), so the same code is the oracle and the fast path.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "bitnet/kernels/backend.hpp"
#include "bitnet/kernels/gpu_model.hpp"
#include "bitnet/kernels/weight_view.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/kv_cache.hpp"
#include "bitnet/models/model_config.hpp"

namespace bitnet::models {

struct LayerWeights {
    const float* attn_norm;
    const float* attn_sub_norm;
    const float* ffn_norm;
    const float* ffn_sub_norm;
    kernels::WeightView wq, wk, wv, wo, gate, up, down;
    // `bitnet` files may carry one-element scales multiplied onto each projection's output.
    float scale_q = 1, scale_k = 1, scale_v = 1, scale_o = 1, scale_gate = 1, scale_up = 1,
          scale_down = 1;
};

enum class LogitsFor { LastPosition, AllPositions };

// One token of a batch: its id, its position in its sequence and that sequence's KV cache.
struct BatchToken {
    std::int32_t token;
    std::int64_t position;
    KvCache* cache;
};

// One job of attention over an F16 cache: `heads` query heads from `first_head` on, all sharing
// one KV head, for token `token` of the batch.
struct HeadGroupJob {
    std::int64_t token, first_head, heads;
};
// How attention's work is cut for `threads` threads (every query head of every token in exactly
// one job; see transformer.cpp).
void plan_head_groups(std::int64_t n_tokens, std::int64_t n_kv, std::int64_t group, int threads,
                      std::vector<HeadGroupJob>& jobs);

// How attention is computed (see transformer.cpp): Standard = ggml's default path,
// Flash = llama.cpp's flash-attention numerics (-fa; F16 accumulation with an F16 cache).
enum class AttentionMode { Standard, Flash };

class Transformer {
  public:
    // Maps the weights of `file` (which must outlive the transformer). Checks the config, tensor
    // types the forward pass can use, and that every per-tensor scale is finite.
    explicit Transformer(std::shared_ptr<const GgufFile> file);

    const ModelConfig& config() const { return config_; }
    void set_attention_mode(AttentionMode mode) { attention_mode_ = mode; }
    AttentionMode attention_mode() const { return attention_mode_; }
    const GgufFile& file() const { return *file_; }
    const kernels::WeightView& output_weight() const { return output_; }
    // Replaces the output projection (e.g. a Q8_0 re-quantization of the tied head); the
    // caller keeps the bytes alive.
    void set_output_weight(const kernels::WeightView& w) { output_ = w; }
    // The weights and shapes for the device-resident GPU forward pass (kernels::GpuModel).
    kernels::GpuModelDesc gpu_description() const;
    // Every layer's projection matrices (Q, K, V, output, gate, up, down), in order.
    std::vector<const kernels::WeightView*> projection_weights() const;
    // Bytes of weights read per generated token (all projections + output matrix).
    std::uint64_t weight_bytes_per_token() const;

    // Runs `tokens` at positions start .. start + n - 1, appending their keys/values to `cache`,
    // and writes vocab-sized logits for the last position (or every position) into `logits`.
    // Working memory is kept between calls (no allocation once sizes have been seen), so one
    // Transformer runs one forward pass at a time.
    void forward(std::span<const std::int32_t> tokens, std::int64_t start, KvCache& cache,
                 const kernels::Backend& backend, LogitsFor which,
                 std::vector<float>& logits) const;

    // forward() for greedy decoding: the first index of the largest logit after the last
    // position (backend.matmul_argmax: a backend that screens the head reads fewer bytes and
    // gets the same index), or -1 when every logit is NaN.
    std::int32_t forward_greedy(std::span<const std::int32_t> tokens, std::int64_t start,
                                KvCache& cache, const kernels::Backend& backend) const;

    // forward() for top-k sampling: the rows `rule` chooses from the last position's logits
    // (backend.matmul_top_k), as (value after the penalty, token) in any order.
    void forward_top_k(std::span<const std::int32_t> tokens, std::int64_t start, KvCache& cache,
                       const kernels::Backend& backend, const kernels::TopKRule& rule,
                       std::vector<kernels::ScoredRow>& out) const;

    // Batched decode: one forward pass over tokens of several sequences (each token attends to
    // its own cache up to its position), so the weights are streamed once for all of them.
    // Writes vocab-sized logits for every entry, in order. A sequence may appear several times
    // (consecutive positions) as in prefill.
    void forward_batch(std::span<const BatchToken> batch, const kernels::Backend& backend,
                       std::vector<float>& logits) const;

  private:
    // The tokens of one sequence at positions start.. as a batch (in scratch_), checked against
    // the cache's context.
    std::span<const BatchToken> sequence_batch(std::span<const std::int32_t> tokens,
                                               std::int64_t start, KvCache& cache) const;
    // Every layer over the batch, then the final norm of rows first_normed.. (returned: rows of
    // `hidden` floats in scratch_).
    const float* run_layers(std::span<const BatchToken> batch, const kernels::Backend& backend,
                            std::int64_t first_normed) const;
    // run_layers, then the output head's logits of rows first_logits...
    void run(std::span<const BatchToken> batch, const kernels::Backend& backend,
             std::int64_t first_logits, std::vector<float>& logits) const;
    void attention(std::int64_t layer, const float* q, std::span<const BatchToken> batch,
                   AttentionMode mode, float* out) const;
    void attention_by_head_group(std::int64_t layer, const float* q,
                                 std::span<const BatchToken> batch, float* out) const;

    std::shared_ptr<const GgufFile> file_;
    ModelConfig config_;
    kernels::WeightView token_embd_;
    kernels::WeightView output_;
    const float* output_norm_ = nullptr;
    std::vector<LayerWeights> layers_;
    AttentionMode attention_mode_ = AttentionMode::Standard;

    struct Scratch {
        std::vector<float> x, xn, q, k, v, att, proj, g, u, rope_cos, rope_sin;
        std::vector<BatchToken> batch;
        std::vector<HeadGroupJob> head_groups;
        // Attention's scores and rounded queries, one pair per OpenMP thread (by thread number),
        // sized before the parallel loop: a thread's first job must not allocate, whichever
        // thread the dynamic schedule hands it to.
        std::vector<std::vector<float>> thread_scores, thread_q;
    };
    // Every thread's attention buffers hold the scores and queries of `heads` heads over the
    // batch's longest context (serial; grows only).
    void reserve_attention_scratch(std::span<const BatchToken> batch, std::int64_t heads) const;
    mutable Scratch scratch_;
};

}  // namespace bitnet::models

// GpuModel — the whole BitNet b1.58 forward pass resident on an NVIDIA GPU (gpu preset):
// weights uploaded once (ternary 2-bit), the KV cache (F16) on the device, every step of the
// forward pass a device kernel, one host copy of the logits per call. The layer description
// comes from models::Transformer (plain pointers and shapes; no CUDA type crosses this header).
// forward() runs the model's own sequence; reserve_sequences() + forward_sequences() decode many
// independent sequences together (continuous batching), each with its own device KV cache slot.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bitnet/kernels/weight_view.hpp"

namespace bitnet::kernels {

struct GpuLayer {
    WeightView wq, wk, wv, wo, gate, up, down;
    const float* attn_norm;
    const float* attn_sub_norm;
    const float* ffn_norm;
    const float* ffn_sub_norm;
};

struct GpuModelDesc {
    int hidden = 0, ffn = 0, heads = 0, kv_heads = 0, head_dim = 0, rope_dim = 0;
    float rope_base = 10000.0f, rms_eps = 1e-5f;
    WeightView embedding;  // F16, rows = vocabulary
    WeightView output;     // F16 head (the embedding when tied) or Q8_0 (--head q8_0)
    const float* output_norm = nullptr;
    std::vector<GpuLayer> layers;
    bool extra_scales = false;  // per-projection scale tensors != 1 (not on the GPU path yet)
};

// A logit and its token id (forward_top_k's answer).
struct LogitCandidate {
    float logit;
    std::int32_t id;
};
constexpr int kMaxGpuTopK = 256;  // the largest top_k chosen on the device

// What the device keeps of one row of logits: the repetition penalty on the row's ids
// penalized_ids[penalized_begin .. penalized_end) (distinct, in range: x > 0 ? x / penalty :
// x * penalty), then the top_k best logits that are not NaN (larger first, then lower id;
// fewer when fewer are not NaN). Greedy decoding is top_k 1 without a penalty.
struct RowChoice {
    int top_k = 1;  // 1 .. kMaxGpuTopK
    float repeat_penalty = 1.0f;
    int penalized_begin = 0, penalized_end = 0;
};
// A row's chosen candidates, in any order, in page-locked memory valid until the next call.
struct RowCandidates {
    const LogitCandidate* candidates = nullptr;
    int count = 0;
};

// decode_greedy's steps in one call at most, and how many generation and `bitnet bench` ask for
// at a time (the host's share then falls to ~3 us per token, and a streamed reply arrives in
// pieces of ~16 ms).
inline constexpr int kMaxGreedySteps = 64;
inline constexpr int kGreedyBurst = 16;

class GpuModel {
  public:
    virtual ~GpuModel() = default;
    // Runs tokens at positions start .. start + n - 1 and writes vocab-sized logits of the last
    // position (or of every position) to host memory.
    virtual void forward(const std::int32_t* tokens, int n, int start, bool all_logits,
                         float* logits) = 0;
    // Runs tokens at positions start .. start + n - 1 and returns the vocab-sized logits of the
    // last one in page-locked host memory the GPU copies into directly, valid until the next
    // call: a decode step then has no second host copy of its 0.5 MB of logits.
    virtual const float* forward_last(const std::int32_t* tokens, int n, int start) = 0;
    // forward_last() then the index of the largest logit, found on the device (greedy_token's
    // rule: NaN skipped, the lowest index of equal maxima; -1 when every logit is NaN): 4 bytes
    // come back instead of the logits.
    virtual std::int32_t forward_greedy(const std::int32_t* tokens, int n, int start) = 0;
    // `count` (1..kMaxGreedySteps) greedy steps: `token` at position `start`, then each step's
    // choice at the next position; out[i] gets step i's choice (forward_greedy's rule; after a
    // -1 the rest is not meaningful). Where the fused decode step takes them all it is one
    // graph of its launches, each reading the token the one before chose on the device (no
    // host round trip per token: ~45 us each on an H100); otherwise forward_greedy step by
    // step. Every step's input is in the KV cache afterwards, whatever the caller keeps.
    virtual void decode_greedy(std::int32_t token, int start, int count, std::int32_t* out) = 0;
    // forward_last() then the sampler's candidates, chosen on the device (see RowChoice): a few
    // hundred bytes come back instead of the logits.
    virtual RowCandidates forward_top_k(const std::int32_t* tokens, int n, int start,
                                        const RowChoice& choice,
                                        const std::int32_t* penalized_ids) = 0;
    // Device KV caches for `count` further sequences of `context` positions each (replacing
    // any earlier reservation; their contents are lost).
    virtual void reserve_sequences(int count, int context) = 0;
    // Row i: token tokens[i] at position positions[i] of reserved sequence seqs[i]. Rows of one
    // sequence in one call must be consecutive positions in order (a prompt); a row attends to
    // positions 0..positions[i] of its sequence. Returns vocab-sized logits of every row, or of
    // the last row only when `last_row_only`, in page-locked host memory the GPU copies into
    // directly (valid until the next call; no second copy of a batch's 16 MB of logits).
    virtual const float* forward_sequences(const std::int32_t* tokens, const int* positions,
                                           const int* seqs, int n, bool last_row_only) = 0;
    // forward_sequences() for every row, then each row's candidates chosen on the device
    // (`choices[i]` for row i): `rows` gets n answers instead of n rows of logits.
    virtual void forward_sequences_top_k(const std::int32_t* tokens, const int* positions,
                                         const int* seqs, int n, const RowChoice* choices,
                                         const std::int32_t* penalized_ids,
                                         std::vector<RowCandidates>& rows) = 0;
    virtual int context() const = 0;
    virtual std::uint64_t device_bytes() const = 0;  // weights + KV cache + working memory
    // Device memory bandwidth (GB/s, bytes read + written by a large device-to-device copy):
    // the floor `bitnet bench --device cuda` compares with.
    virtual double measure_bandwidth_gbs() = 0;
};

// Whether `desc` can run on the GPU path (I2_S projections, F16 embedding/head, shapes the
// kernels take); `why` says what does not fit.
bool gpu_model_supported(const GpuModelDesc& desc, std::string& why);
// Throws bitnet::Error (Unsupported without CUDA or device, OutOfMemory with the sizes).
std::unique_ptr<GpuModel> make_gpu_model(const GpuModelDesc& desc, int device, int context);

}  // namespace bitnet::kernels

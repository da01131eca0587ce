// The fused decode step: all layers of one token's forward pass in a single persistent kernel
// (one block per SM, grid-wide barriers between the phases), for batch-1 decode, which is
// otherwise bound by the ~300 dependent launches of a step (docs/performance.md).
//
// The step embeds its token itself (the first norm reads the F16 row). Per layer, five phases
// separated by grid barriers:
//   Q|K|V product -> RoPE + KV write + attention -> output projection (+= residual) ->
//   gate|up with relu(gate)^2 * up -> down projection (+= residual);
// (attention: a block per query head below `long_from` positions; from there a block per KV
// head and range of positions, the blocks of a KV head exchanging maxima, sums and partial V
// sums through `mailbox`, so a long context's cache streams through many SMs at once)
// then the final norm rounded to F16 for the head (launched after it as its own kernel). Every
// block computes the rmsnorm + int8 quantization of a product's input itself, into shared
// memory, instead of a separate norm kernel and barrier; each block's first weight loads of a
// product are issued before it waits at the barrier. The arithmetic is that of the per-kernel
// path (same integer products, same float rules, attention in the CPU's order), so both paths
// give the same numbers; tests/gpu compares them and the CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "gpu_layer_kernels.hpp"

namespace bitnet::kernels::cuda {

// A packed matrix on the device (pack_mma_*): 16-row blocks of padded_cols columns.
struct DecodeMatrix {
    const unsigned* words = nullptr;
    int blocks = 0, padded_cols = 0;
};

// One layer's device weights (gpu_model.cu fills these).
struct DecodeLayer {
    DecodeMatrix qkv, wo, gate_up, down;
    int q_first = 0, k_first = 0, v_first = 0;  // first block of each part of qkv
    float scale_q = 1, scale_k = 1, scale_v = 1, scale_o = 1, scale_gate = 1, scale_up = 1,
          scale_down = 1;
    const float* attn_norm = nullptr;
    const float* attn_sub_norm = nullptr;
    const float* ffn_norm = nullptr;
    const float* ffn_sub_norm = nullptr;
};

struct DecodeStep {
    const DecodeLayer* layers = nullptr;  // device array
    int n_layers = 0;
    int hidden = 0, ffn = 0;
    HeadShape shape;
    float eps = 1e-5f;
    const int* row = nullptr;                  // device: token, position, KV slot of the step's row
    const std::uint16_t* embedding = nullptr;  // F16 rows (the step embeds its token itself)
    std::uint16_t* k_cache = nullptr;          // layer 0, slot 0 (F16)
    std::uint16_t* v_cache = nullptr;
    std::size_t layer_stride = 0;  // elements per layer
    std::size_t seq_stride = 0;    // elements per slot
    const float* cos_table = nullptr;
    const float* sin_table = nullptr;
    float *x = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr, *g = nullptr;
    const float* output_norm = nullptr;
    std::uint16_t* out_half = nullptr;  // the final norm, F16: the head's input
    // The F16 head inside the step (nullptr: it runs as a kernel of its own after the step, which
    // then writes out_half): vocab rows of hidden F16 weights, logits[vocab] out, and the greedy
    // token (launch_argmax's rule) in *greedy; greedy_work: step_head_work_ints() ints, zero at
    // first (the step leaves them so).
    const std::uint16_t* head = nullptr;
    int vocab = 0;
    float* logits = nullptr;
    int* greedy = nullptr;
    int* greedy_work = nullptr;
    // Launch k of a burst of greedy steps (the head in the step): k > 0 runs at position
    // row[1] + k on the token launch k - 1 left in *greedy; tokens_out[k] gets its choice too
    // (nullptr: only *greedy).
    int step = 0;
    int* tokens_out = nullptr;
    // The int8 screening head (head_screen.hpp; greedy steps only, `logits` then holds no
    // logits): codes (vocab x hidden), per-row scale and slack. nullptr: the whole F16 head.
    const std::int8_t* head_codes = nullptr;
    const float* head_scale = nullptr;
    const float* head_slack = nullptr;
    unsigned long long* barrier = nullptr;  // the grid barrier's counter, zero at first
    // Attention from `long_from` positions on, split over ranges of positions (decode_step.cu).
    int long_from = 0;
    int long_ranges = 0;  // ranges per KV head at most (0: the grid's share; tests lower it)
    int max_chunks = 0;   // kValueChunk chunks of the context
    // Where its blocks post values for each other (long_attention_sizes), zero at first and
    // zeroed with `barrier` every stamp_period steps.
    unsigned long long* mailbox = nullptr;
    // Profiling (BITNET_CUDA_STEP_PROFILE=1): [0] start, then per grid barrier (unused) and the
    // time block 0 left it, the marks inside the phases and every block's arrivals; nullptr: off.
    unsigned long long* stamps = nullptr;
};

// How the fused step runs for a shape and context: its grid (blocks that fit at once; 0: it
// does not fit) and from which position attention takes the long-context split.
struct StepPlan {
    int grid = 0;
    int long_from = 0;    // INT_MAX: never (the shape does not allow it)
    int long_ranges = 0;  // DecodeStep::long_ranges
    int positions = 0;    // the context
};
struct LongAttentionSizes {
    int max_chunks = 0;
    std::size_t mailbox_words = 0;
};

// Whether the fused step takes this shape with `positions` of context; `why` if not.
bool decode_step_fits(int hidden, int ffn, const HeadShape& shape, int positions, std::string& why);
// Sets the kernel's shared memory for the plan it returns. The environment's values, or nullptr
// for the defaults: `long_from_env` (BITNET_CUDA_LONG_ATTENTION) moves the long path's start,
// `long_ranges_env` (BITNET_CUDA_LONG_RANGES) caps the ranges per KV head.
StepPlan prepare_decode_step(const HeadShape& shape, int positions, const char* long_from_env,
                             const char* long_ranges_env);
LongAttentionSizes long_attention_sizes(const HeadShape& shape, const StepPlan& plan);
// Steps after which the barrier's counter and the mailbox must be zeroed again (the mailbox
// stamps are the counter's low 32 bits).
long long stamp_period(int layers, const StepPlan& plan);
void launch_decode_step(const DecodeStep& step, const StepPlan& plan, void* stream);
// DecodeStep::greedy_work's size: an answer per block, a ticket and the screening maximum.
inline int step_head_work_ints(const StepPlan& plan) {
    return 2 * plan.grid + 2;
}

}  // namespace bitnet::kernels::cuda

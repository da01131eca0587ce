// Attention of token rows over their sequences' KV caches, in the CPU's order of operations
// (scores: 8 lanes per key reduced pairwise; softmax with the sum in double; V accumulated in
// chunks of kValueChunk positions, see below), so the GPU follows the CPU backend's numbers.
//
// Two shapes, the same arithmetic (bit for bit):
//  - few rows (decode, batched decode): split, "flash-decoding" style — one kernel computes the
//    scores with a block per 128 positions of a row (every key read once, by many blocks at
//    once), a second does softmax and V with a block per (head group, row, slice of the head's
//    dimensions). Long contexts and batches are bound by the cache reads; this keeps enough of
//    them in flight. Over long spans (AttentionPlan::chunked_from) the values take three kernels
//    instead: softmax, a block per (head group, row, chunk of kValueChunk positions), and the
//    chunks' sums added in chunk order;
//  - many rows (prefill): one kernel per (head group, row) doing all three, with scores in
//    shared memory.
// A head group is the query heads that share a KV head (grouped-query attention: 4 in 2b4t), so
// each key and value is read once for all of them.
#pragma once

#include <cstddef>

#include "bitnet/kernels/attention_order.hpp"
#include "gpu_layer_kernels.hpp"

namespace bitnet::kernels::cuda {

// The order of every V sum: attention_order.hpp (the same on the CPU).
constexpr int kValueChunk = kAttentionValueChunk;

struct AttentionPlan {
    int group = 0;   // query heads per block, at most (launches with few rows may use fewer)
    int stride = 0;  // score row length: the context rounded up to 4
    int multiprocessors = 0;
    std::size_t max_smem = 0;  // dynamic shared memory a block may use
    int split_rows = 0;        // launches of up to this many rows use the split shape
    int chunked_from = 0;      // split launches over spans this long sum V a chunk per block
};

// Picks the plan for `max_positions` on the current device (groups of at most `max_group` heads
// when it is >= 1; split_rows = 0 turns the split shape off; split launches over spans of
// `chunked_from` positions or more sum the values a chunk per block) and lets the kernels use the
// shared memory they need. Fails with advice when even one head's scores do not fit.
AttentionPlan prepare_attention(int max_positions, const HeadShape& shape, int max_group,
                                int split_rows, int chunked_from);
// Floats of score buffer the split shape needs for `rows` rows (0 when the plan does not split):
// the scores, then the chunked values' partial sums.
std::size_t attention_score_floats(const AttentionPlan& plan, const HeadShape& shape, int rows);
// out[t] = attention of row t's query heads over positions 0..position of its sequence; every
// row's position is below `span` (<= the plan's context), which sizes the shared memory.
// `scores`: attention_score_floats(plan, shape, n) floats when n <= plan.split_rows.
void launch_attention(const float* q, int n, RowPlaces rows, const HeadShape& shape, KvLayer kv,
                      const AttentionPlan& plan, int span, float* scores, float* out, void* stream);

}  // namespace bitnet::kernels::cuda

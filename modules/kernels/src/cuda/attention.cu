// Kernels of attention.hpp. Every kernel computes a score, a softmax and a V sum with the same
// device functions below, so the split and the one-kernel shapes (and group sizes) agree bit for
// bit; the fused decode step (decode_step.cu) follows the same order.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "async_copy.cuh"
#include "attention.hpp"
#include "bitnet/common/error.hpp"
#include "block_reduce.cuh"
#include "cuda_memory.hpp"
#include "launch_control.cuh"

namespace bitnet::kernels::cuda {
namespace {

constexpr int kThreads = 256;        // softmax and V blocks (fixes the double sums' partition)
constexpr int kScoreThreads = 128;   // positions per block of the split scores kernel
constexpr int kVStages = 4;          // V tiles in shared memory: one summed, the rest in flight
constexpr int kVStageBytes = 16384;  // per tile: 64 positions of a 128-wide head
// Wider tiles where few blocks share the GPU (a single sequence, 8 rows): more bytes in flight
// per block; with many blocks the narrower ring leaves room for more of them per SM (H100,
// 2b4t after 512 tokens: x8 2843 -> 3084 tok/s, x32 8421 -> 8095 with 24 KB for all).
constexpr int kWideStageBytes = 24576;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxOutputs = 4;  // (head, dimension) outputs per thread: group * hd <= 4 * kThreads

// The queries as F16-rounded floats (as ggml: the query meets F16 keys as F16).
__device__ __forceinline__ void load_queries(const float* qs, int count, float* qh) {
    for (int i = threadIdx.x; i < count; i += blockDim.x)
        qh[i] = __half2float(__float2half_rn(qs[i]));
}

// All of a key's 16-byte loads issued before any is used.
template <int MAXHD>
__device__ __forceinline__ void load_key(const __half* key, int vectors, uint4 (&raw)[MAXHD / 8]) {
    const uint4* kp = reinterpret_cast<const uint4*>(key);
#pragma unroll
    for (int v = 0; v < MAXHD / 8; ++v)
        if (v < vectors) raw[v] = __ldg(kp + v);
}

// q . k * scale as the CPU computes it: 8 lanes, reduced pairwise.
template <int MAXHD>
__device__ __forceinline__ float key_score(const uint4 (&raw)[MAXHD / 8], const float* qv,
                                           int vectors, float scale) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
    for (int v = 0; v < MAXHD / 8; ++v) {
        if (v >= vectors) break;
        const __half* k8 = reinterpret_cast<const __half*>(&raw[v]);
#pragma unroll
        for (int j = 0; j < 8; ++j)
            lanes[j] = __fadd_rn(lanes[j], __fmul_rn(__half2float(k8[j]), qv[v * 8 + j]));
    }
    const float dot =
        __fadd_rn(__fadd_rn(__fadd_rn(lanes[0], lanes[1]), __fadd_rn(lanes[2], lanes[3])),
                  __fadd_rn(__fadd_rn(lanes[4], lanes[5]), __fadd_rn(lanes[6], lanes[7])));
    return __fmul_rn(dot, scale);
}

// Softmax in place over scores[h * stride + p], p < n_pos, for the group's heads; thread i owns
// positions i, i + blockDim.x, ... (the partition of the double sums).
__device__ void softmax_rows(float* scores, int group, int stride, int n_pos, float* reduce,
                             double* dshared) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int h = 0; h < group; ++h) {
        float* sc = scores + h * stride;
        float m = -INFINITY;
        for (int p = threadIdx.x; p < n_pos; p += blockDim.x) m = fmaxf(m, sc[p]);
        for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
        if (lane == 0) reduce[warp] = m;
        __syncthreads();
        m = reduce[0];
        for (int w = 1; w < warps; ++w) m = fmaxf(m, reduce[w]);
        double sum = 0;
        for (int p = threadIdx.x; p < n_pos; p += blockDim.x) {
            const float e = static_cast<float>(exp(static_cast<double>(__fsub_rn(sc[p], m))));
            sc[p] = e;
            sum += e;
        }
        const double total = block_sum(sum, dshared);  // (its syncs also free `reduce`)
        const float inv = static_cast<float>(1.0 / total);
        for (int p = threadIdx.x; p < n_pos; p += blockDim.x) sc[p] = __fmul_rn(sc[p], inv);
    }
}

// V summed into J outputs of a thread over positions p0 .. p0 + count - 1, in the order of
// kValueChunk (attention.hpp): each chunk's products added position by position into `chunk`,
// which is added to `total` where a chunk ends (the J chains are independent, and 16 positions'
// loads are issued before their additions: the chain of adds, not the shared-memory latency,
// sets the pace). first[j]: head * slice + dimension within the slice.
template <int J>
__device__ __forceinline__ void accumulate_values(
    float (&chunk)[kMaxOutputs], float (&total)[kMaxOutputs], const float* const (&sc)[kMaxOutputs],
    const int (&first)[kMaxOutputs], const __half* v_tile, int slice, int p0, int count) {
    int d[J];
#pragma unroll
    for (int j = 0; j < J; ++j) d[j] = first[j] % slice;
    auto add = [&](int q) {
#pragma unroll
        for (int j = 0; j < J; ++j)
            chunk[j] =
                __fadd_rn(chunk[j], __fmul_rn(sc[j][q], __half2float(v_tile[q * slice + d[j]])));
    };
    auto fold = [&] {
#pragma unroll
        for (int j = 0; j < J; ++j) {
            total[j] = __fadd_rn(total[j], chunk[j]);
            chunk[j] = 0.0f;
        }
    };
    if (p0 % kValueChunk + count <= kValueChunk) {  // the tile within one chunk (prefill's)
#pragma unroll 16
        for (int q = 0; q < count; ++q) add(q);
        if ((p0 + count) % kValueChunk == 0) fold();
        return;
    }
    for (int p = 0; p < count;) {
        const int end = min(count, p + kValueChunk - (p0 + p) % kValueChunk);
#pragma unroll 16
        for (int q = p; q < end; ++q) add(q);
        if ((p0 + end) % kValueChunk == 0) fold();
        p = end;
    }
}

// The block's V outputs: the group's heads x dimensions d0 .. d0 + slice - 1 (output o: head
// o / slice), out[h * hd + d] for the group's first head. Values stream through `ring` (shared
// memory): kVStages tiles of `stage_bytes`, the next kVStages - 1 requested
// with cp.async while one is summed — a long context is many tiles, and one in flight at a time
// would leave the block waiting a memory latency per tile.
__device__ void value_phase(const __half* values, int kv_dim, int n_pos, const float* scores,
                            int stride, int group, int d0, int slice, int hd, int stage_bytes,
                            __half* ring, float* out) {
    const int vectors = slice / 8;  // 16-byte pieces per position
    const int tile_positions = stage_bytes / (slice * 2);
    const int tile_halves = tile_positions * slice;
    auto request = [&](int tile) {
        const int p0 = tile * tile_positions;
        if (p0 < n_pos) {
            const int count = min(tile_positions, n_pos - p0);
            __half* to = ring + (tile % kVStages) * tile_halves;
            for (int e = threadIdx.x; e < count * vectors; e += blockDim.x)
                copy_async16(to + e * 8, values +
                                             static_cast<std::size_t>(p0 + e / vectors) * kv_dim +
                                             d0 + (e % vectors) * 8);
        }
        commit_async();  // (an empty group past the end keeps the counting uniform)
    };
    const int outputs = group * slice;
    const int mine =
        min(kMaxOutputs, (outputs - static_cast<int>(threadIdx.x) + kThreads - 1) / kThreads);
    int first[kMaxOutputs];
#pragma unroll
    for (int j = 0; j < kMaxOutputs; ++j)
        first[j] = min(static_cast<int>(threadIdx.x) + j * kThreads, outputs - 1);
    float chunk[kMaxOutputs] = {0, 0, 0, 0}, total[kMaxOutputs] = {0, 0, 0, 0};
    const int tiles = (n_pos + tile_positions - 1) / tile_positions;
    for (int i = 0; i < kVStages - 1; ++i) request(i);
    for (int i = 0; i < tiles; ++i) {
        wait_async_groups<kVStages - 2>();  // this thread's part of tile i has landed
        __syncthreads();            // everyone's part (and the scores); tile i - 1 consumed by all
        request(i + kVStages - 1);  // into the stage tile i - 1 used
        const int p0 = i * tile_positions;
        const int count = min(tile_positions, n_pos - p0);
        const __half* v_tile = ring + (i % kVStages) * tile_halves;
        const float* sc[kMaxOutputs];
#pragma unroll
        for (int j = 0; j < kMaxOutputs; ++j) sc[j] = scores + (first[j] / slice) * stride + p0;
        switch (mine) {  // (a compile-time count: the chains interleave)
            case 1:
                accumulate_values<1>(chunk, total, sc, first, v_tile, slice, p0, count);
                break;
            case 2:
                accumulate_values<2>(chunk, total, sc, first, v_tile, slice, p0, count);
                break;
            case 3:
                accumulate_values<3>(chunk, total, sc, first, v_tile, slice, p0, count);
                break;
            case 4:
                accumulate_values<4>(chunk, total, sc, first, v_tile, slice, p0, count);
                break;
            default:
                break;
        }
    }
    wait_async();  // (the trailing empty groups)
#pragma unroll
    for (int j = 0; j < kMaxOutputs; ++j) {
        const int o = threadIdx.x + j * kThreads;
        if (o >= outputs) break;
        // (the last chunk when it is partial; adding the 0.0f of a finished one changes nothing)
        out[(o / slice) * hd + d0 + o % slice] = __fadd_rn(total[j], chunk[j]);
    }
}

// Where a block's row and head group read and write.
struct RowHeads {
    int h0, t, n_pos, hd, kv_dim;
    const __half* keys;
    const __half* values;
};

__device__ __forceinline__ RowHeads row_heads(RowPlaces rows, const HeadShape& shape, int group,
                                              KvLayer kv) {
    RowHeads r;
    r.h0 = blockIdx.x * group;
    r.t = blockIdx.y;
    r.n_pos = rows.positions[r.t] + 1;
    r.hd = shape.head_dim;
    r.kv_dim = shape.kv_heads * r.hd;
    const int kvh = r.h0 / (shape.heads / shape.kv_heads);
    const std::size_t base = static_cast<std::size_t>(rows.seqs[r.t]) * kv.seq_stride + kvh * r.hd;
    r.keys = reinterpret_cast<const __half*>(kv.k) + base;
    r.values = reinterpret_cast<const __half*>(kv.v) + base;
    return r;
}

// One kernel per (head group, row): scores for every position in shared memory, softmax, V.
template <int MAXHD>
__global__ void __launch_bounds__(kThreads)
    attention_rows(const float* q, RowPlaces rows, HeadShape shape, int group, int stride,
                   KvLayer kv, float* out) {
    pdl_wait();
    pdl_trigger();
    // group * head_dim (queries), group * stride (scores), the value ring
    extern __shared__ __align__(16) float smem[];
    __shared__ float reduce[32];
    __shared__ double dshared[32];
    const RowHeads r = row_heads(rows, shape, group, kv);
    float* qh = smem;
    float* scores = smem + group * r.hd;
    const std::size_t row_base = (static_cast<std::size_t>(r.t) * shape.heads + r.h0) * r.hd;
    load_queries(q + row_base, group * r.hd, qh);
    __syncthreads();
    const int vectors = r.hd / 8;
    for (int p = threadIdx.x; p < r.n_pos; p += blockDim.x) {
        uint4 raw[MAXHD / 8];
        load_key<MAXHD>(r.keys + static_cast<std::size_t>(p) * r.kv_dim, vectors, raw);
        for (int h = 0; h < group; ++h)
            scores[h * stride + p] = key_score<MAXHD>(raw, qh + h * r.hd, vectors, shape.scale);
    }
    __syncthreads();
    softmax_rows(scores, group, stride, r.n_pos, reduce, dshared);
    value_phase(r.values, r.kv_dim, r.n_pos, scores, stride, group, 0, r.hd, r.hd, kVStageBytes,
                reinterpret_cast<__half*>(scores + group * stride), out + row_base);
}

// Split shape, first kernel: the scores of kScoreThreads positions of a row (blockIdx.z) for a
// head group, into all_scores[(row * heads + head) * stride + position].
template <int MAXHD>
__global__ void __launch_bounds__(kScoreThreads)
    attention_scores(const float* q, RowPlaces rows, HeadShape shape, int group, int stride,
                     KvLayer kv, float* all_scores) {
    pdl_wait();
    pdl_trigger();
    __shared__ float qh[kMaxOutputs * kThreads];
    const RowHeads r = row_heads(rows, shape, group, kv);
    const int p = static_cast<int>(blockIdx.z) * kScoreThreads + threadIdx.x;
    if (static_cast<int>(blockIdx.z) * kScoreThreads >= r.n_pos) return;
    const std::size_t row_base = (static_cast<std::size_t>(r.t) * shape.heads + r.h0);
    load_queries(q + row_base * r.hd, group * r.hd, qh);
    __syncthreads();
    if (p >= r.n_pos) return;
    const int vectors = r.hd / 8;
    uint4 raw[MAXHD / 8];
    load_key<MAXHD>(r.keys + static_cast<std::size_t>(p) * r.kv_dim, vectors, raw);
    for (int h = 0; h < group; ++h)
        all_scores[(row_base + h) * stride + p] =
            key_score<MAXHD>(raw, qh + h * r.hd, vectors, shape.scale);
}

// Split shape, second kernel: softmax of the group's score rows, then V for the dimensions
// blockIdx.z * slice .. + slice - 1 of each head.
__global__ void __launch_bounds__(kThreads)
    attention_values(RowPlaces rows, HeadShape shape, int group, int stride, int slice,
                     int stage_bytes, KvLayer kv, const float* all_scores, float* out) {
    pdl_wait();
    pdl_trigger();
    extern __shared__ __align__(16) float scores[];  // group * stride, then the value ring
    __shared__ float reduce[32];
    __shared__ double dshared[32];
    const RowHeads r = row_heads(rows, shape, group, kv);
    const std::size_t row_base = static_cast<std::size_t>(r.t) * shape.heads + r.h0;
    for (int h = 0; h < group; ++h)
        for (int p = threadIdx.x; p < r.n_pos; p += blockDim.x)
            scores[h * stride + p] = all_scores[(row_base + h) * stride + p];
    __syncthreads();
    softmax_rows(scores, group, stride, r.n_pos, reduce, dshared);
    value_phase(r.values, r.kv_dim, r.n_pos, scores, stride, group,
                static_cast<int>(blockIdx.z) * slice, slice, r.hd, stage_bytes,
                reinterpret_cast<__half*>(scores + group * stride), out + row_base * r.hd);
}

// Split shape at long spans (AttentionPlan::chunked_from), the values in three kernels instead of
// one, so a row's long context is summed by many blocks at once (one block per head and V slice
// would add up the whole context in one dependent chain per output) and each KV head's values are
// read once for its whole group of query heads:
//  - attention_softmax: softmax of each (row, head) score row in place (softmax_rows' arithmetic,
//    kThreads threads: the bits of the other shapes);
//  - attention_chunk_values: a block per (head group, row, chunk of kValueChunk positions): the
//    chunk's V sums for every output of the group into parts[row][head][chunk][dimension];
//  - attention_combine: each output's chunk sums added in chunk order (attention_order.hpp).
__global__ void __launch_bounds__(kThreads)
    attention_softmax(RowPlaces rows, HeadShape shape, int stride, float* all_scores) {
    pdl_wait();
    pdl_trigger();
    __shared__ float reduce[32];
    __shared__ double dshared[32];
    const int t = blockIdx.y, n_pos = rows.positions[t] + 1;
    float* row = all_scores + (static_cast<std::size_t>(t) * shape.heads + blockIdx.x) * stride;
    softmax_rows(row, 1, stride, n_pos, reduce, dshared);
}

__global__ void __launch_bounds__(kThreads)
    attention_chunk_values(RowPlaces rows, HeadShape shape, int group, int stride, KvLayer kv,
                           const float* weights, int max_chunks, float* parts) {
    pdl_wait();
    pdl_trigger();
    __shared__ __align__(16) __half v_chunk[kValueChunk * kMaxHeadDim / 2];  // hd <= 128 here
    const RowHeads r = row_heads(rows, shape, group, kv);
    const int c = blockIdx.z, p0 = c * kValueChunk;
    if (p0 >= r.n_pos) return;
    const int count = min(kValueChunk, r.n_pos - p0), vectors = r.hd / 8;
    for (int e = threadIdx.x; e < count * vectors; e += blockDim.x)
        copy_async16(
            v_chunk + e * 8,
            r.values + static_cast<std::size_t>(p0 + e / vectors) * r.kv_dim + e % vectors * 8);
    commit_async();
    wait_async();
    __syncthreads();
    const std::size_t row_base = static_cast<std::size_t>(r.t) * shape.heads + r.h0;
    for (int o = threadIdx.x; o < group * r.hd; o += blockDim.x) {
        const int h = o / r.hd, d = o % r.hd;
        const float* w = weights + (row_base + h) * stride + p0;
        float acc = 0.0f;
#pragma unroll 8
        for (int q = 0; q < count; ++q)
            acc = __fadd_rn(acc, __fmul_rn(w[q], __half2float(v_chunk[q * r.hd + d])));
        parts[((row_base + h) * max_chunks + c) * r.hd + d] = acc;
    }
}

__global__ void __launch_bounds__(kThreads)
    attention_combine(RowPlaces rows, HeadShape shape, const float* parts, int max_chunks,
                      float* out) {
    pdl_wait();
    pdl_trigger();
    const int t = blockIdx.y, width = shape.heads * shape.head_dim;
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= width) return;
    const int chunks = (rows.positions[t] + kValueChunk) / kValueChunk;
    const int h = o / shape.head_dim, d = o % shape.head_dim;
    const float* part =
        parts + (static_cast<std::size_t>(t) * shape.heads + h) * max_chunks * shape.head_dim + d;
    float total = 0.0f;
    for (int c = 0; c < chunks; ++c) total = __fadd_rn(total, part[c * shape.head_dim]);
    out[static_cast<std::size_t>(t) * width + o] = total;
}

constexpr std::size_t kValueRingBytes = static_cast<std::size_t>(kVStages) * kVStageBytes;

std::size_t rows_smem(int group, int stride, int head_dim) {
    return static_cast<std::size_t>(group) * (head_dim + stride) * sizeof(float) + kValueRingBytes;
}
std::size_t values_smem(int group, int stride, int stage_bytes) {
    return static_cast<std::size_t>(group) * stride * sizeof(float) +
           static_cast<std::size_t>(kVStages) * stage_bytes;
}

// The largest divisor of `group` (at most `group`) that still gives `blocks(g)` >= the
// multiprocessors: few rows or heads keep more loads in flight with smaller groups.
template <typename Blocks>
int fitting_group(int group, int multiprocessors, Blocks blocks) {
    int g = group;
    while (g > 1 && (group % g != 0 || blocks(g) < multiprocessors)) --g;
    return g;
}

// Dimensions per block of the values kernel: the head split until one output per thread.
int value_slice(int group, int head_dim) {
    int slice = head_dim;
    while (group * slice > kThreads && slice % 16 == 0) slice /= 2;
    return slice;
}

template <int MAXHD>
void launch_for(const float* q, int n, RowPlaces rows, const HeadShape& shape, KvLayer kv,
                const AttentionPlan& plan, int span, float* scores, float* out, void* stream) {
    const int heads = shape.heads, hd = shape.head_dim;
    // Score rows as long as this launch needs (the plan's stride is the whole context).
    const int stride = std::min((span + 3) / 4 * 4, plan.stride);
    if (n <= plan.split_rows && scores != nullptr) {
        const int chunks = (stride + kScoreThreads - 1) / kScoreThreads;
        launch(attention_scores<MAXHD>, dim3(heads / plan.group, n, chunks), kScoreThreads, 0,
               stream, q, rows, shape, plan.group, stride, kv, scores);
        if (span >= plan.chunked_from && hd <= 128) {
            const int chunks = (span + kValueChunk - 1) / kValueChunk;
            const int max_chunks = (plan.stride + kValueChunk - 1) / kValueChunk;
            float* parts = scores + static_cast<std::size_t>(n) * heads * plan.stride;
            launch(attention_softmax, dim3(heads, n), kThreads, 0, stream, rows, shape, stride,
                   scores);
            launch(attention_chunk_values, dim3(heads / plan.group, n, chunks), kThreads, 0, stream,
                   rows, shape, plan.group, stride, kv, static_cast<const float*>(scores),
                   max_chunks, parts);
            launch(attention_combine, dim3((heads * hd + kThreads - 1) / kThreads, n), kThreads, 0,
                   stream, rows, shape, static_cast<const float*>(parts), max_chunks, out);
            return;
        }
        const int group = fitting_group(plan.group, plan.multiprocessors, [&](int g) {
            return heads / g * n * (hd / value_slice(g, hd));
        });
        // Few rows (a single sequence): narrower slices until there is a block per SM, so a
        // long context's values stream through many blocks at once (each block repeats the
        // cheap softmax; 16 dimensions = 32-byte pieces keep the reads whole sectors).
        int slice = value_slice(group, hd);
        while (heads / group * n * (hd / slice) < plan.multiprocessors && slice % 32 == 0)
            slice /= 2;
        const int blocks = heads / group * n * (hd / slice);
        const int stage = blocks < 2 * plan.multiprocessors &&
                                  values_smem(group, stride, kWideStageBytes) <= plan.max_smem
                              ? kWideStageBytes
                              : kVStageBytes;
        launch(attention_values, dim3(heads / group, n, hd / slice), kThreads,
               values_smem(group, stride, stage), stream, rows, shape, group, stride, slice, stage,
               kv, static_cast<const float*>(scores), out);
        return;
    }
    const int group =
        fitting_group(plan.group, plan.multiprocessors, [&](int g) { return heads / g * n; });
    launch(attention_rows<MAXHD>, dim3(heads / group, n), kThreads, rows_smem(group, stride, hd),
           stream, q, rows, shape, group, stride, kv, out);
}

// The dynamic shared memory limit is per kernel function, shared by every model in the
// process: set to all the device allows, so a model with a shorter context does not lower it
// under a longer one.
template <typename Kernel>
void allow_shared_memory(Kernel kernel, int optin) {
    cudaFuncAttributes attributes{};
    BITNET_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
    BITNET_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           optin - static_cast<int>(attributes.sharedSizeBytes)));
}

template <int MAXHD>
void allow_all(int optin) {
    allow_shared_memory(attention_rows<MAXHD>, optin);
}

}  // namespace

AttentionPlan prepare_attention(int max_positions, const HeadShape& shape, int max_group,
                                int split_rows, int chunked_from) {
    int device = 0, optin = 0;
    BITNET_CUDA_CHECK(cudaGetDevice(&device));
    BITNET_CUDA_CHECK(
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    AttentionPlan plan;
    BITNET_CUDA_CHECK(
        cudaDeviceGetAttribute(&plan.multiprocessors, cudaDevAttrMultiProcessorCount, device));
    plan.stride = (max_positions + 3) / 4 * 4;  // score rows start 16-byte aligned
    plan.split_rows = split_rows;
    plan.chunked_from = chunked_from;
    // Room beside the static reduction scratch.
    const std::size_t room = static_cast<std::size_t>(optin) - 1024;
    plan.max_smem = room;
    // The largest group of query heads sharing a KV head whose queries, scores and outputs fit.
    const int heads_per_kv = shape.heads / shape.kv_heads;
    for (int group = heads_per_kv; group >= 1; --group)
        if (heads_per_kv % group == 0 && (max_group < 1 || group <= max_group) &&
            group * shape.head_dim <= kMaxOutputs * kThreads &&
            rows_smem(group, plan.stride, shape.head_dim) <= room) {
            plan.group = group;
            break;
        }
    if (plan.group == 0)
        fail(ErrorCode::Unsupported,
             "attention over " + std::to_string(max_positions) +
                 " positions needs more shared memory than the GPU has per block (" +
                 std::to_string(optin) + " bytes): use a shorter context (-c)");
    allow_all<64>(optin);
    allow_all<128>(optin);
    allow_all<kMaxHeadDim>(optin);
    allow_shared_memory(attention_values, optin);
    return plan;
}

std::size_t attention_score_floats(const AttentionPlan& plan, const HeadShape& shape, int rows) {
    if (plan.split_rows == 0) return 0;
    // Scores, then (long spans) each chunk's V sums.
    const std::size_t max_chunks = (plan.stride + kValueChunk - 1) / kValueChunk;
    return static_cast<std::size_t>(std::min(rows, plan.split_rows)) * shape.heads *
           (plan.stride + max_chunks * shape.head_dim);
}

void launch_attention(const float* q, int n, RowPlaces rows, const HeadShape& shape, KvLayer kv,
                      const AttentionPlan& plan, int span, float* scores, float* out,
                      void* stream) {
    if (shape.head_dim <= 64)
        launch_for<64>(q, n, rows, shape, kv, plan, span, scores, out, stream);
    else if (shape.head_dim <= 128)
        launch_for<128>(q, n, rows, shape, kv, plan, span, scores, out, stream);
    else
        launch_for<kMaxHeadDim>(q, n, rows, shape, kv, plan, span, scores, out, stream);
}

}  // namespace bitnet::kernels::cuda

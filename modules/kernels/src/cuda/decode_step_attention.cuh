// The fused decode step's attention phases (part of decode_step.cu, included by it after its
// barrier helpers and product phases, whose constants and helpers these use; not a header of its
// own): below DecodeStep::long_from positions a block per query head (attention_phase), from
// there a block per KV head and range of positions (attention_long_phase).
#pragma once

namespace bitnet::kernels::cuda {
namespace {

// NeoX RoPE of element i of a head (rope_and_store's arithmetic).
__device__ __forceinline__ float rotated(const float* h, int i, int half_dim, const float* cs,
                                         const float* sn) {
    if (i < half_dim)
        return __fsub_rn(__fmul_rn(__ldcg(h + i), cs[i]),
                         __fmul_rn(__ldcg(h + i + half_dim), sn[i]));
    if (i < 2 * half_dim) {
        const int j = i - half_dim;
        return __fadd_rn(__fmul_rn(__ldcg(h + j), sn[j]), __fmul_rn(__ldcg(h + i), cs[j]));
    }
    return __ldcg(h + i);
}

// Attention of the step's row below DecodeStep::long_from positions (attention_long_phase
// below takes longer contexts), one block per query head (the others go on to the barrier). The
// row's own key and value are rotated / rounded here; the first head of each KV group stores
// them in the cache, and every head uses its own copy for the last position (no other block
// reads the cache row being written). The cached keys and values (positions before this one)
// do not change during the step: a block's first key and first V tile are requested before
// the barrier that ends the Q|K|V phase.
constexpr int kKeyPieces = kMaxHeadDim / 8;  // 16-byte pieces of a key
constexpr int kVPieces = (kVTile * kMaxHeadDim / 8 + kThreads - 1) / kThreads;
constexpr int kKeyStage = 2 * kThreads;  // keys requested before the barrier (positions)
constexpr int kVStage = 2 * kVTile;      // values requested before the barrier (positions)
constexpr int kSlicedPositions = 384;    // attention split over V dimensions from here on
static_assert(kVTile % kValueChunk == 0 && kVStage % kVTile == 0,
              "V tiles start at multiples of the V sums' chunk");

__device__ __forceinline__ void load_key(const __half* keys, int q, int kv_dim, int vectors,
                                         uint4 (&raw)[kKeyPieces]) {
    const uint4* kp = reinterpret_cast<const uint4*>(keys + static_cast<std::size_t>(q) * kv_dim);
#pragma unroll
    for (int v = 0; v < kKeyPieces; ++v)
        if (v < vectors) raw[v] = __ldcg(kp + v);
}

// V tile of positions p0 .. min(p0 + tile, pos) - 1 (`vectors` pieces each, tile * vectors <=
// kVTile * kMaxHeadDim / 8), kVPieces 16-byte pieces per thread.
__device__ __forceinline__ void load_v_tile(const __half* values, int p0, int pos, int tile,
                                            int kv_dim, int vectors, uint4 (&staged)[kVPieces]) {
    const int count = min(tile, pos - p0);
#pragma unroll
    for (int j = 0; j < kVPieces; ++j) {
        const int e = threadIdx.x + j * kThreads;
        if (e < count * vectors)
            staged[j] = __ldcg(reinterpret_cast<const uint4*>(
                                   values + static_cast<std::size_t>(p0 + e / vectors) * kv_dim) +
                               e % vectors);
    }
}

// Scores of positions 0..pos whose keys are all staged (swizzled as in attention_phase), with
// 8 / L threads per position, each adding L of the 8 lanes of q . k * scale: the same products
// and the same order of additions as one thread holding all 8 (attention.cu's rule: lane j sums
// its elements in order, then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))), the last levels
// of that tree by shuffles. At a few dozen positions one warp doing whole dots was the phase's
// longest step (1.7 of ~4.9 µs); the loop is kept rolled so its code stays small (the phase runs
// once per layer, its instructions fetched again each time).
template <int L>
__device__ __forceinline__ void staged_scores(const __half* key_stage, const float* qh, int hd,
                                              int vectors, int swizzle, int pos, float scale,
                                              float* scores) {
    constexpr int kPerPosition = 8 / L;
    const int sub = static_cast<int>(threadIdx.x) % kPerPosition;
    // Every thread runs every round (the shuffles need whole warps); past pos it computes a
    // clamped position's dot and writes nothing.
    for (int base = 0; base <= pos; base += kThreads / kPerPosition) {
        const int q = base + static_cast<int>(threadIdx.x) / kPerPosition;
        const int qc = min(q, pos);
        const __half* key = key_stage + qc * hd + sub * L;
        const float* qv = qh + sub * L;
        float lanes[L];
#pragma unroll
        for (int j = 0; j < L; ++j) lanes[j] = 0.0f;
#pragma unroll 2
        for (int v = 0; v < vectors; ++v) {
            const __half* k = key + (v ^ (qc & swizzle)) * 8;
            float kf[L], qf[L];
            if constexpr (L == 1) {
                kf[0] = __half2float(*k);
                qf[0] = qv[v * 8];
            } else {
#pragma unroll
                for (int j = 0; j < L; j += 2) {
                    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(k + j));
                    kf[j] = f.x;
                    kf[j + 1] = f.y;
                    const float2 g = *reinterpret_cast<const float2*>(qv + v * 8 + j);
                    qf[j] = g.x;
                    qf[j + 1] = g.y;
                }
            }
#pragma unroll
            for (int j = 0; j < L; ++j) lanes[j] = __fadd_rn(lanes[j], __fmul_rn(kf[j], qf[j]));
        }
        float dot;
        if constexpr (L == 8)
            dot =
                __fadd_rn(__fadd_rn(__fadd_rn(lanes[0], lanes[1]), __fadd_rn(lanes[2], lanes[3])),
                          __fadd_rn(__fadd_rn(lanes[4], lanes[5]), __fadd_rn(lanes[6], lanes[7])));
        else if constexpr (L == 4)
            dot = __fadd_rn(__fadd_rn(lanes[0], lanes[1]), __fadd_rn(lanes[2], lanes[3]));
        else if constexpr (L == 2)
            dot = __fadd_rn(lanes[0], lanes[1]);
        else
            dot = lanes[0];
            // (IEEE addition is commutative: both partners get the same sum)
#pragma unroll
        for (int off = 1; off < kPerPosition; off *= 2)
            dot = __fadd_rn(dot, __shfl_xor_sync(0xffffffffu, dot, off));
        if (sub == 0 && q <= pos) scores[q] = __fmul_rn(dot, scale);
    }
}

__device__ __forceinline__ void attention_phase(const DecodeStep& p, int layer, int pos, int seq,
                                                float* dyn, int positions, Scratch& s) {
    const HeadShape& sh = p.shape;
    const int hd = sh.head_dim, half_dim = sh.rope_dim / 2, group = sh.heads / sh.kv_heads;
    const int kv_dim = sh.kv_heads * hd, vectors = hd / 8;
    // Staged key pieces are stored XOR-swizzled (piece v of key q at v ^ (q % vectors)): threads
    // read different keys at once, and unswizzled the same piece of every key is one bank.
    const int swizzle = (vectors & (vectors - 1)) == 0 ? vectors - 1 : 0;
    float* qh = dyn;  // (regions sized for kMaxHeadDim: attention_smem)
    float* kcur = qh + kMaxHeadDim;
    float* vcur = kcur + kMaxHeadDim;
    float* scores = vcur + kMaxHeadDim;
    auto* v_tile = reinterpret_cast<__half*>(scores + (positions + 3) / 4 * 4);
    __half* key_stage = v_tile + kVStage * kMaxHeadDim;  // key q at q * hd
    const float* cs = p.cos_table + static_cast<std::size_t>(pos) * half_dim;
    const float* sn = p.sin_table + static_cast<std::size_t>(pos) * half_dim;
    auto cache_base = [&](int h) {
        return static_cast<std::size_t>(layer) * p.layer_stride +
               static_cast<std::size_t>(seq) * p.seq_stride + (h / group) * hd;
    };
    // From kSlicedPositions on, a head's V outputs are split into `slices` blocks of `width`
    // dimensions (a block per SM at most): each block computes the head's scores and softmax and
    // sums its dimensions, so a long context's values stream through several blocks. (Shorter
    // contexts lose more to the repeated scores than they gain: H100, 2b4t, 635 -> 613 tok/s
    // after 16 positions, 491 -> 514 after 512.) Tiles keep their byte size: a narrower slice
    // holds more positions.
    int slices = 1;
    while (pos >= kSlicedPositions && sh.heads * 2 * slices <= static_cast<int>(gridDim.x) &&
           hd / (2 * slices) >= 16 && hd % (16 * slices) == 0)
        slices *= 2;
    const int width = hd / slices, slice_vectors = width / 8, units = sh.heads * slices;
    const int tile_positions = kVTile * slices, stage_positions = kVStage * slices;
    grid_arrive(p.barrier, p.stamps, s);
    if (static_cast<int>(blockIdx.x) < units) {
        const int d0 = static_cast<int>(blockIdx.x) % slices * width;
        const std::size_t base = cache_base(static_cast<int>(blockIdx.x) / slices);
        const __half* keys = reinterpret_cast<const __half*>(p.k_cache) + base;
        const __half* values = reinterpret_cast<const __half*>(p.v_cache) + base + d0;
        // (not warp 0: its thread 0 polls the barrier, and its load would queue behind these)
        const int helper = static_cast<int>(threadIdx.x) - kWarp, helpers = kThreads - kWarp;
        for (int q = helper; helper >= 0 && q < min(pos, kKeyStage); q += helpers)
            for (int v = 0; v < vectors; ++v)
                copy_async16(key_stage + q * hd + (v ^ (q & swizzle)) * 8,
                             keys + static_cast<std::size_t>(q) * kv_dim + v * 8);
        const int count = min(stage_positions, pos);
        for (int e = helper; helper >= 0 && e < count * slice_vectors; e += helpers)
            copy_async16(v_tile + e * 8, values +
                                             static_cast<std::size_t>(e / slice_vectors) * kv_dim +
                                             e % slice_vectors * 8);
    }
    grid_wait(p.barrier, p.stamps, s);
    wait_async();
    uint4 raw[kKeyPieces];
    uint4 staged[kVPieces];
    for (int u = blockIdx.x; u < units; u += gridDim.x) {
        const bool first = u == static_cast<int>(blockIdx.x);
        const int h = u / slices, slice = u % slices, d0 = slice * width;
        const int kvh = h / group;
        const std::size_t base = cache_base(h);
        const __half* keys = reinterpret_cast<const __half*>(p.k_cache) + base;
        const __half* values = reinterpret_cast<const __half*>(p.v_cache) + base + d0;
        // The row's own key also goes with the staged ones where they fit: a thread taking it
        // from kcur instead ran a second path in the scores' one busy warp (same products: kcur
        // holds the same F16 values).
        const bool own_staged = first && pos < kKeyStage;
        for (int i = threadIdx.x; i < hd; i += kThreads) {
            qh[i] = __half2float(__float2half_rn(rotated(p.q + h * hd, i, half_dim, cs, sn)));
            const __half kh = __float2half_rn(rotated(p.k + kvh * hd, i, half_dim, cs, sn));
            const __half vh = __float2half_rn(__ldcg(p.v + kvh * hd + i));
            kcur[i] = __half2float(kh);
            vcur[i] = __half2float(vh);
            if (own_staged) key_stage[pos * hd + ((i / 8) ^ (pos & swizzle)) * 8 + i % 8] = kh;
            if (h % group == 0 && slice == 0) {
                const std::size_t at = base + static_cast<std::size_t>(pos) * kv_dim + i;
                reinterpret_cast<__half*>(p.k_cache)[at] = kh;
                reinterpret_cast<__half*>(p.v_cache)[at] = vh;
            }
        }
        __syncthreads();
        mark(p.stamps, s, 0, 0);
        // As many threads per position as the block has room for (all keys staged).
        if (own_staged && pos < kThreads / 8)
            staged_scores<1>(key_stage, qh, hd, vectors, swizzle, pos, sh.scale, scores);
        else if (own_staged && pos < kThreads / 4)
            staged_scores<2>(key_stage, qh, hd, vectors, swizzle, pos, sh.scale, scores);
        else if (own_staged && pos < kThreads / 2)
            staged_scores<4>(key_stage, qh, hd, vectors, swizzle, pos, sh.scale, scores);
        else if (own_staged)
            staged_scores<8>(key_stage, qh, hd, vectors, swizzle, pos, sh.scale, scores);
        for (int q = threadIdx.x; !own_staged && q <= pos; q += kThreads) {
            float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (q < pos) {
                if (first && q < kKeyStage) {
                    const auto* staged_key = reinterpret_cast<const uint4*>(key_stage + q * hd);
#pragma unroll
                    for (int v = 0; v < kKeyPieces; ++v)
                        if (v < vectors) raw[v] = staged_key[v ^ (q & swizzle)];
                } else {
                    load_key(keys, q, kv_dim, vectors, raw);
                }
#pragma unroll
                for (int v = 0; v < kKeyPieces; ++v) {
                    if (v >= vectors) break;
                    const __half* k8 = reinterpret_cast<const __half*>(&raw[v]);
#pragma unroll
                    for (int j = 0; j < 8; ++j)
                        lanes[j] =
                            __fadd_rn(lanes[j], __fmul_rn(__half2float(k8[j]), qh[v * 8 + j]));
                }
            } else {
                for (int v = 0; v < vectors; ++v)
#pragma unroll
                    for (int j = 0; j < 8; ++j)
                        lanes[j] = __fadd_rn(lanes[j], __fmul_rn(kcur[v * 8 + j], qh[v * 8 + j]));
            }
            const float dot =
                __fadd_rn(__fadd_rn(__fadd_rn(lanes[0], lanes[1]), __fadd_rn(lanes[2], lanes[3])),
                          __fadd_rn(__fadd_rn(lanes[4], lanes[5]), __fadd_rn(lanes[6], lanes[7])));
            scores[q] = __fmul_rn(dot, sh.scale);
        }
        __syncthreads();
        mark(p.stamps, s, 1, 0);
        float m = -INFINITY;
        for (int q = threadIdx.x; q <= pos; q += kThreads) m = fmaxf(m, scores[q]);
        m = block_max_any(m, s);
        double sum = 0;
        for (int q = threadIdx.x; q <= pos; q += kThreads) {
            const float e = static_cast<float>(exp(static_cast<double>(__fsub_rn(scores[q], m))));
            scores[q] = e;
            sum += e;
        }
        const float inv = static_cast<float>(1.0 / block_sum(sum, s));
        for (int q = threadIdx.x; q <= pos; q += kThreads) scores[q] = __fmul_rn(scores[q], inv);
        mark(p.stamps, s, 2, 0);
        // V over the cached positions 0 .. pos - 1 in tiles (next tile in flight), then the row's
        // own value, in kValueChunk order (attention.hpp): within a chunk position by position,
        // as the CPU adds them; tiles start at multiples of the chunk.
        float chunk = 0, total = 0;
        // The first unit's first stage_positions arrived during the barrier; the rest comes a
        // tile at a time through registers (the next tile in flight while one is summed).
        const int prefetched = first ? min(pos, stage_positions) : 0;
        if (prefetched < pos)
            load_v_tile(values, prefetched, pos, tile_positions, kv_dim, slice_vectors, staged);
        __syncthreads();  // scores final
        for (int p0 = 0; p0 < pos; p0 += tile_positions) {
            const int count = min(tile_positions, pos - p0);
            const __half* tile = v_tile + static_cast<std::size_t>(p0) * width;
            if (p0 + count > prefetched) {
                __syncthreads();  // the previous tile consumed
#pragma unroll
                for (int j = 0; j < kVPieces; ++j) {
                    const int e = threadIdx.x + j * kThreads;
                    if (e < count * slice_vectors) reinterpret_cast<uint4*>(v_tile)[e] = staged[j];
                }
                __syncthreads();
                if (p0 + tile_positions < pos)
                    load_v_tile(values, p0 + tile_positions, pos, tile_positions, kv_dim,
                                slice_vectors, staged);
                tile = v_tile;
            }
            // One dependent add per position; the loads and products are independent of it, so
            // the unrolled loop keeps them ahead of the chain.
            if (static_cast<int>(threadIdx.x) < width) {
                for (int c0 = 0; c0 < count; c0 += kValueChunk) {
                    const int c1 = min(count, c0 + kValueChunk);
#pragma unroll 16
                    for (int q = c0; q < c1; ++q)
                        chunk = __fadd_rn(
                            chunk,
                            __fmul_rn(scores[p0 + q], __half2float(tile[q * width + threadIdx.x])));
                    if (c1 - c0 == kValueChunk) {  // a whole chunk: p0 + c0 is a multiple of it
                        total = __fadd_rn(total, chunk);
                        chunk = 0;
                    }
                }
            }
        }
        __syncthreads();
        mark(p.stamps, s, 3, 0);
        if (static_cast<int>(threadIdx.x) < width) {
            chunk = __fadd_rn(chunk, __fmul_rn(scores[pos], vcur[d0 + threadIdx.x]));
            p.att[h * hd + d0 + threadIdx.x] = __fadd_rn(total, chunk);
        }
        __syncthreads();  // shared memory reused by the block's next head
    }
}

// Long contexts (from DecodeStep::long_from positions on): attention split over ranges of
// whole kValueChunk chunks of positions, a block per (KV head, range) doing all the KV head's
// query heads, so every key and value is read once, by many blocks at once. The softmax stays
// exact (the CPU's: one maximum and one sum over all positions), so the blocks of a KV head
// exchange three times, through stamped words in global memory (post / collect; no grid-wide
// barrier): (1) each range's maxima, (2) each chunk's sum of exponentials, (3) each chunk's V
// sums, which every range block then adds up in chunk order (kValueChunk) for a slice of the
// outputs.
constexpr int kLongMaxOutputs = 4;  // (head, dimension) outputs per thread: group * hd
// Chunks of keys, and of values, in shared memory: one in use, the next one arriving.
constexpr int kLongStages = 2;
// Default start of the long path (BITNET_CUDA_LONG_ATTENTION=N moves it). H100, 2b4t, tg64 in
// tok/s long / one block per head (session 16): after 288 positions 730 / 726, after 320
// 719 / 711, after 384 734 / 698, after 448 720 / 678.
constexpr int kLongAttentionFrom = 288;

struct LongUnit {
    int kvh = 0, r = 0, ranges = 0;  // KV head, range, ranges per KV head
    int c0 = 0, c1 = 0;              // the range's chunks
    int q0 = 0, q1 = 0;              // its positions (q1 <= pos + 1)
};

__device__ __forceinline__ int long_ranges(const DecodeStep& p, int pos) {
    const int chunks = pos / kValueChunk + 1;
    const int most = static_cast<int>(gridDim.x) / p.shape.kv_heads;
    return min(chunks, p.long_ranges > 0 ? min(most, p.long_ranges) : most);
}

__device__ __forceinline__ LongUnit long_unit(const DecodeStep& p, int pos, int unit) {
    LongUnit u;
    const int chunks = pos / kValueChunk + 1;
    u.ranges = long_ranges(p, pos);
    u.kvh = unit / u.ranges;
    u.r = unit % u.ranges;
    u.c0 = u.r * chunks / u.ranges;
    u.c1 = (u.r + 1) * chunks / u.ranges;
    u.q0 = u.c0 * kValueChunk;
    u.q1 = min(u.c1 * kValueChunk, pos + 1);
    return u;
}

// The blocks of a KV head exchange values as 64-bit words: the low 32 bits of the stamp (the
// grid barrier's count after the barrier that starts the phase: the same in every block and new
// at every barrier) above 32 bits of the value, so one single-copy-atomic store publishes a
// value and its validity at once: no fence, no flag, and a reader's one load both waits and
// reads. (The host zeroes the words with the counter before the stamps could wrap:
// DecodeStep::mailbox.)
__device__ __forceinline__ void post(unsigned long long* to, unsigned stamp, unsigned bits) {
    const unsigned long long word = static_cast<unsigned long long>(stamp) << 32 | bits;
    asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(to), "l"(word) : "memory");
}
// The value posted at `from` with `stamp`, once it is there.
__device__ __forceinline__ unsigned collect(const unsigned long long* from, unsigned stamp) {
    unsigned long long word;
    do {
        asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(word) : "l"(from) : "memory");
    } while (static_cast<unsigned>(word >> 32) != stamp);
    return static_cast<unsigned>(word);
}

// Sums a chunk's V into J outputs per thread (output o = threadIdx.x + j * kThreads of the
// group's heads: head o / hd, dimension o % hd): positions q .. q + count - 1 of `tile` (one
// position per hd halves), then the row's own value `own` (vcur) when it is in the chunk.
template <int J>
__device__ __forceinline__ void long_chunk_values(float (&acc)[kLongMaxOutputs],
                                                  const float* weights, int stride,
                                                  const __half* tile, int count, bool own,
                                                  const float* vcur, int hd, int outputs) {
    int h[J], d[J];
#pragma unroll
    for (int j = 0; j < J; ++j) {
        const int o = min(static_cast<int>(threadIdx.x) + j * kThreads, outputs - 1);
        h[j] = o / hd;
        d[j] = o % hd;
        acc[j] = 0.0f;
    }
#pragma unroll 8
    for (int q = 0; q < count; ++q)
#pragma unroll
        for (int j = 0; j < J; ++j)
            acc[j] = __fadd_rn(
                acc[j], __fmul_rn(weights[h[j] * stride + q], __half2float(tile[q * hd + d[j]])));
    if (own)
#pragma unroll
        for (int j = 0; j < J; ++j)
            acc[j] = __fadd_rn(acc[j], __fmul_rn(weights[h[j] * stride + count], vcur[d[j]]));
}

__device__ __forceinline__ void attention_long_phase(const DecodeStep& p, int layer, int pos,
                                                     int seq, float* dyn, Scratch& s) {
    const HeadShape& sh = p.shape;
    const int hd = sh.head_dim, half_dim = sh.rope_dim / 2, group = sh.heads / sh.kv_heads;
    const int kv_dim = sh.kv_heads * hd, vectors = hd / 8, outputs = group * hd;
    const int swizzle = (vectors & (vectors - 1)) == 0 ? vectors - 1 : 0;
    const int units = sh.kv_heads * long_ranges(p, pos);
    const bool mine = static_cast<int>(blockIdx.x) < units;
    const LongUnit u = long_unit(p, pos, mine ? static_cast<int>(blockIdx.x) : 0);
    const int stride = (u.c1 - u.c0) * kValueChunk;  // score row length of a head (range)
    // Shared memory (attention_long_smem): queries, own key and value, scores, the key ring, the
    // V ring.
    float* qh = dyn;
    float* kcur = qh + kLongMaxOutputs * kThreads;
    float* vcur = kcur + kMaxHeadDim;
    float* scores = vcur + kMaxHeadDim;  // group x stride
    auto* key_ring = reinterpret_cast<__half*>(scores + group * stride);
    __half* v_ring = key_ring + kLongStages * kValueChunk * kMaxHeadDim;
    const std::size_t base = static_cast<std::size_t>(layer) * p.layer_stride +
                             static_cast<std::size_t>(seq) * p.seq_stride + u.kvh * hd;
    const __half* keys = reinterpret_cast<const __half*>(p.k_cache) + base;
    const __half* values = reinterpret_cast<const __half*>(p.v_cache) + base;
    const int chunks_here = u.c1 - u.c0;
    const int chunks = pos / kValueChunk + 1;  // of the whole row
    // The keys (`keys_not_values`) or values of the range's chunk i (cached positions only) into
    // stage i % kLongStages of their ring, keys XOR-swizzled (piece v of key q at v ^ q: threads
    // of a warp read different keys). `first`: requested during the barrier, where warp 0's
    // thread 0 polls it.
    auto request = [&](int i, bool keys_not_values, bool first) {
        const int q0 = (u.c0 + i) * kValueChunk, count = min(kValueChunk, pos - q0);
        __half* to =
            (keys_not_values ? key_ring : v_ring) + (i % kLongStages) * kValueChunk * kMaxHeadDim;
        const __half* from = keys_not_values ? keys : values;
        const int helper = static_cast<int>(threadIdx.x) - (first ? kWarp : 0);
        const int helpers = kThreads - (first ? kWarp : 0);
        for (int e = helper; helper >= 0 && e < count * vectors; e += helpers) {
            const int q = e / vectors, v = e % vectors;
            const int piece = keys_not_values ? q * vectors + (v ^ (q & swizzle)) : e;
            copy_async16(to + piece * 8, from + static_cast<std::size_t>(q0 + q) * kv_dim + v * 8);
        }
        commit_async();
    };
    grid_arrive(p.barrier, p.stamps, s);
    if (mine) {
        request(0, true, true);
        request(0, false, true);
    }
    grid_wait(p.barrier, p.stamps, s);
    const unsigned long long stamp = s.target;  // the same in every block, new at every barrier
    if (!mine) return;
    if (chunks_here > 1) {
        request(1, true, false);
        request(1, false, false);
    }
    const float* cs = p.cos_table + static_cast<std::size_t>(pos) * half_dim;
    const float* sn = p.sin_table + static_cast<std::size_t>(pos) * half_dim;
    const bool has_own = u.q1 == pos + 1;  // the last range holds the row's own position
    for (int i = threadIdx.x; i < outputs; i += kThreads)
        qh[i] = __half2float(__float2half_rn(
            rotated(p.q + (u.kvh * group + i / hd) * hd, i % hd, half_dim, cs, sn)));
    if (has_own)
        for (int i = threadIdx.x; i < hd; i += kThreads) {
            const __half kh = __float2half_rn(rotated(p.k + u.kvh * hd, i, half_dim, cs, sn));
            const __half vh = __float2half_rn(__ldcg(p.v + u.kvh * hd + i));
            kcur[i] = __half2float(kh);
            vcur[i] = __half2float(vh);
            const std::size_t at = base + static_cast<std::size_t>(pos) * kv_dim + i;
            reinterpret_cast<__half*>(p.k_cache)[at] = kh;
            reinterpret_cast<__half*>(p.v_cache)[at] = vh;
        }
    __syncthreads();
    mark(p.stamps, s, 0, 0);
    // Scores, a chunk at a time from the key ring: a thread per position and head (keys read
    // from shared memory once per head).
    // (Past the first chunk waiting for every request, not just chunk c's: ranges of more than
    // one chunk are for contexts past kValueChunk x the blocks per KV head, 3328 positions on an
    // H100 for 2b4t.)
    for (int c = 0; c < chunks_here; ++c) {
        // The first chunk's keys are the oldest request: its values (and chunk 1's keys and
        // values) may still be on their way.
        if (c > 0)
            wait_async();
        else if (chunks_here > 1)
            wait_async_groups<3>();
        else
            wait_async_groups<1>();
        __syncthreads();
        const int q0 = (u.c0 + c) * kValueChunk, count = min(kValueChunk, u.q1 - q0);
        const __half* ring = key_ring + (c % kLongStages) * kValueChunk * kMaxHeadDim;
        for (int t = threadIdx.x; t < group * count; t += kThreads) {
            const int h = t / count, i = t % count;
            const float* qv = qh + h * hd;
            float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (q0 + i == pos) {
                for (int v = 0; v < vectors; ++v)
#pragma unroll
                    for (int j = 0; j < 8; ++j)
                        lanes[j] = __fadd_rn(lanes[j], __fmul_rn(kcur[v * 8 + j], qv[v * 8 + j]));
            } else {
                const auto* key = reinterpret_cast<const uint4*>(ring + i * hd);
#pragma unroll 4
                for (int v = 0; v < vectors; ++v) {
                    const uint4 piece = key[v ^ (i & swizzle)];
                    const __half* k8 = reinterpret_cast<const __half*>(&piece);
#pragma unroll
                    for (int j = 0; j < 8; ++j)
                        lanes[j] =
                            __fadd_rn(lanes[j], __fmul_rn(__half2float(k8[j]), qv[v * 8 + j]));
                }
            }
            const float dot =
                __fadd_rn(__fadd_rn(__fadd_rn(lanes[0], lanes[1]), __fadd_rn(lanes[2], lanes[3])),
                          __fadd_rn(__fadd_rn(lanes[4], lanes[5]), __fadd_rn(lanes[6], lanes[7])));
            scores[h * stride + c * kValueChunk + i] = __fmul_rn(dot, sh.scale);
        }
        __syncthreads();  // the stage is free for chunk c + 2
        if (c + 2 < chunks_here) request(c + 2, true, false);
    }
    mark(p.stamps, s, 1, 0);
    // (1) The maximum of each head over all ranges. Here and in (2) a warp per head (group <=
    // kWarps): no block-wide barrier between the heads, and a head's values from the other
    // ranges all requested at once.
    const int n_here = u.q1 - u.q0;
    const int first_head = u.kvh * group;
    const int warp = static_cast<int>(threadIdx.x) / kWarp, lane = threadIdx.x % kWarp;
    const unsigned stamp32 = static_cast<unsigned>(stamp);
    const std::size_t grid = gridDim.x;
    const std::size_t heads = sh.heads, max_chunks = p.max_chunks;
    // The mailbox: [head][range] maxima, [head][chunk][2] sums (double halves), [head][chunk][hd]
    // V sums.
    unsigned long long* maxima = p.mailbox + first_head * grid;
    unsigned long long* sums = p.mailbox + heads * grid + first_head * max_chunks * 2;
    unsigned long long* parts =
        p.mailbox + heads * (grid + max_chunks * 2) + first_head * max_chunks * hd;
    float* head_max = kcur;  // (free once the scores are done) per head: maximum, then 1 / sum
    if (warp < group) {
        float m = -INFINITY;
        for (int i = lane; i < n_here; i += kWarp) m = fmaxf(m, scores[warp * stride + i]);
        for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
        if (lane == 0) post(maxima + warp * grid + u.r, stamp32, __float_as_uint(m));
        for (int j = lane; j < u.ranges; j += kWarp)
            m = fmaxf(m, __uint_as_float(collect(maxima + warp * grid + j, stamp32)));
        for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
        // (2) Exponentials, and each chunk's sum of them in double (lane order, then a
        // butterfly: the same bits whichever block sums the chunk).
        for (int c = 0; c < chunks_here; ++c) {
            double sum = 0;
            for (int i = c * kValueChunk + lane; i < min(n_here, (c + 1) * kValueChunk);
                 i += kWarp) {
                float* e = scores + warp * stride + i;
                *e = static_cast<float>(exp(static_cast<double>(__fsub_rn(*e, m))));
                sum += *e;
            }
            for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
            if (lane < 2) {
                const unsigned long long bits = __double_as_longlong(sum);
                post(sums + (warp * max_chunks + u.c0 + c) * 2 + lane, stamp32,
                     static_cast<unsigned>(lane == 0 ? bits : bits >> 32));
            }
        }
        double total = 0;
        for (int c = lane; c < chunks; c += kWarp) {
            const unsigned long long* at = sums + (warp * max_chunks + c) * 2;
            const unsigned long long lo = collect(at, stamp32), hi = collect(at + 1, stamp32);
            total += __longlong_as_double(static_cast<long long>(hi << 32 | lo));
        }
        for (int off = 16; off > 0; off /= 2) total += __shfl_xor_sync(0xffffffffu, total, off);
        if (lane == 0) head_max[warp] = static_cast<float>(1.0 / total);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < group * stride; i += kThreads)
        if (i % stride < n_here) scores[i] = __fmul_rn(scores[i], head_max[i / stride]);
    mark(p.stamps, s, 2, 0);
    // (3) Each chunk's V sums, posted; then this range's slice of the outputs: the chunks' sums
    // in chunk order, collected into shared memory (the V ring, done with) first.
    const int per_thread = (outputs + kThreads - 1) / kThreads;
    float acc[kLongMaxOutputs];
    for (int c = 0; c < chunks_here; ++c) {
        wait_async();
        __syncthreads();  // chunk c's values (and the weights) ready for everyone
        const int q = (u.c0 + c) * kValueChunk;
        const int count = min(kValueChunk, pos - q);
        const __half* tile = v_ring + (c % kLongStages) * kValueChunk * kMaxHeadDim;
        const bool own = has_own && c == chunks_here - 1;
        const float* w = scores + c * kValueChunk;
        // (a compile-time count: the chains interleave; two sizes only, the kernel's code is
        // large enough: a 1- or 3-output thread computes a clamped duplicate it does not post)
        if (per_thread <= 2)
            long_chunk_values<2>(acc, w, stride, tile, count, own, vcur, hd, outputs);
        else
            long_chunk_values<4>(acc, w, stride, tile, count, own, vcur, hd, outputs);
#pragma unroll
        for (int j = 0; j < kLongMaxOutputs; ++j) {
            const int o = threadIdx.x + j * kThreads;
            if (j >= per_thread || o >= outputs) break;
            post(parts + (static_cast<std::size_t>(o / hd) * max_chunks + u.c0 + c) * hd + o % hd,
                 stamp32, __float_as_uint(acc[j]));
        }
        if (c + 2 < chunks_here) {
            __syncthreads();  // the stage is free for chunk c + 2
            request(c + 2, false, false);
        }
    }
    const int o0 = u.r * outputs / u.ranges, o1 = (u.r + 1) * outputs / u.ranges;
    auto* collected = reinterpret_cast<float*>(v_ring);
    const int per_pass = max(1, kLongStages * kValueChunk * kMaxHeadDim / 2 / chunks);
    for (int a = o0; a < o1; a += per_pass) {
        const int b = min(o1, a + per_pass);
        __syncthreads();  // (the V ring, or the last pass's outputs, done with)
        for (int f = threadIdx.x; f < (b - a) * chunks; f += kThreads) {
            const int o = a + f / chunks, c = f % chunks;
            collected[f] = __uint_as_float(
                collect(parts + (static_cast<std::size_t>(o / hd) * max_chunks + c) * hd + o % hd,
                        stamp32));
        }
        __syncthreads();
        for (int o = a + static_cast<int>(threadIdx.x); o < b; o += kThreads) {
            float sum = 0;
            for (int c = 0; c < chunks; ++c) sum = __fadd_rn(sum, collected[(o - a) * chunks + c]);
            p.att[first_head * hd + o] = sum;
        }
    }
    mark(p.stamps, s, 3, 0);
    __syncthreads();  // (shared memory reused by the next phase)
}

// The attention phase of a layer: the long-context split from p.long_from on. Inlined (one call
// site): the kernel then reads the step's parameters from the constant bank. Taken by reference
// in a function of its own they were generic loads, and since the grid barrier's acquire
// invalidates L1 before every phase, each first read waited for L2 (the short path's RoPE and
// loads 1.60 -> 1.23 µs per layer; 250 registers, no spills). (Only the short path inlined, the
// long one in a function of its own: short contexts +1% more, but 3% slower after 2000
// positions.)
__device__ __forceinline__ void attention_any(const DecodeStep& p, int layer, int pos, int seq,
                                              float* dyn, int short_positions, Scratch& s) {
    if (pos >= p.long_from)
        attention_long_phase(p, layer, pos, seq, dyn, s);
    else
        attention_phase(p, layer, pos, seq, dyn, short_positions, s);
}

}  // namespace
}  // namespace bitnet::kernels::cuda

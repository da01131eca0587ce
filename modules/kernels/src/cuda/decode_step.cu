// The fused decode step (decode_step.hpp): one persistent kernel, one block of 16 warps per SM.
// Rules kept from the per-kernel path so the numbers are the same:
//  - rmsnorm + quantize: sums of squares in double, the CPU's int8 rule (gpu_layer_kernels.cu);
//  - products: exact integer tensor-core dots, the CPU's float rule (ternary_mma_device.cuh);
//  - RoPE with the host's cos/sin tables, the query and keys meet as F16, softmax sums in double,
//    V accumulated in kValueChunk order (attention.hpp).
// Data written by one block and read by another in a later phase is read with __ldcg (past the
// SM's L1, which is not coherent across SMs); the grid barrier fences before and after.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "async_copy.cuh"
#include "attention.hpp"
#include "cuda_memory.hpp"
#include "decode_step.hpp"
#include "ternary_mma_device.cuh"

namespace bitnet::kernels::cuda {
namespace {

using namespace mma_device;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * kWarp;
constexpr int kMaxCols = 7168;  // widest product input (4 * kNormVectors * kThreads)
constexpr int kU = 4;           // chunks a warp holds in registers at a time
constexpr int kStaged = 12;     // chunks per warp staged in shared memory before the barrier
constexpr int kVTile = 128;     // V positions staged in shared memory at a time
constexpr int kMaxHeadDim = 128;
constexpr int kStepPhasesPerLayer = 5;                     // grid barriers per layer
constexpr int kCodeUint4s = kWarps * kStaged * 2 * kWarp;  // staged codes of a block
constexpr int kPartialInts = kWarps * 4 * 8;  // per warp: 2 blocks x rows g, g + 8 of 8 lanes

struct Scratch {
    double d[kWarps];
    float f[kWarps];
    int barriers;  // grid barriers passed (profiling stamps)
    int detail;    // where the marks inside the phases start in the stamps
    int layers;
    unsigned long long target;  // the barrier counter's value that ends the current barrier
};

__device__ __forceinline__ unsigned long long global_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}

// Profiling: block `who`'s time at mark k (0..3) of the current phase: the last block in the
// products (it has a share of every product: pairs are dealt from the last block down), block 0
// in attention.
__device__ __forceinline__ void mark(unsigned long long* stamps, const Scratch& s, int k,
                                     unsigned who) {
    if (stamps != nullptr && blockIdx.x == who && threadIdx.x == 0)
        stamps[s.detail + 4 * s.barriers + k] = global_ns();
}

// The grid barrier in two halves, so a block can request the next phase's constant data (weight
// codes, norm weights, cached keys and values) between them: arrive() publishes the block's
// writes (the fence waits for them, not for loads issued after it) and counts the block in;
// wait() returns once every block has arrived. With `stamps` (DecodeStep::stamps) every block's
// arrival and block 0's leaving are timed. The barrier itself is one 64-bit
// counter that only grows: each block adds 1 per barrier, so barrier k of all launches so far is
// passed when the counter reaches a multiple of the grid, the one above the value a block's add
// returned. The last block's add is all the others wait for (a reset and a separate generation
// word would put two more round trips to L2 on the critical path). Needs every block resident
// (one per SM, launched cooperatively) and the same grid in every launch on one counter.
__device__ void grid_arrive(unsigned long long* counter, unsigned long long* stamps, Scratch& s) {
    __syncthreads();
    if (threadIdx.x == 0) {
        if (stamps != nullptr)
            stamps[s.detail + 4 * kStepPhasesPerLayer * s.layers +
                   static_cast<std::size_t>(s.barriers) * gridDim.x + blockIdx.x] = global_ns();
        __threadfence();
        const unsigned long long before = atomicAdd(counter, 1ull);
        s.target = before - before % gridDim.x + gridDim.x;
    }
}

// An acquire load (not a fence: a fence would also wait for this thread's requests issued
// between arrive() and wait()).
__device__ __forceinline__ unsigned long long load_acquire(const unsigned long long* p) {
    unsigned long long v;
    asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}

__device__ void grid_wait(unsigned long long* counter, unsigned long long* stamps, Scratch& s) {
    if (threadIdx.x == 0) {
        while (load_acquire(counter) < s.target) {
        }
        if (stamps != nullptr && blockIdx.x == 0) stamps[2 + 2 * s.barriers] = global_ns();
        ++s.barriers;
    }
    __syncthreads();
}

__device__ void grid_barrier(unsigned long long* counter, unsigned long long* stamps, Scratch& s) {
    grid_arrive(counter, stamps, s);
    grid_wait(counter, stamps, s);
}

// Block-wide reductions: a warp step, one barrier, every thread adds the kWarps partials. No
// barrier after the read: consecutive uses of the same Scratch slot are always separated by
// another reduction's barrier or a phase's.
__device__ double block_sum(double v, Scratch& s) {
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (threadIdx.x % kWarp == 0) s.d[threadIdx.x / kWarp] = v;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < kWarps; ++w) total += s.d[w];
    return total;
}

// Maximum of non-negative values: their bit patterns order as unsigned integers (redux.sync).
__device__ float block_max(float v, Scratch& s) {
    const unsigned m = __reduce_max_sync(0xffffffffu, __float_as_uint(v));
    if (threadIdx.x % kWarp == 0) s.f[threadIdx.x / kWarp] = __uint_as_float(m);
    __syncthreads();
    float all = 0.0f;
    for (int w = 0; w < kWarps; ++w) all = fmaxf(all, s.f[w]);
    return all;
}

__device__ float block_max_any(float v, Scratch& s) {
    for (int off = 16; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    if (threadIdx.x % kWarp == 0) s.f[threadIdx.x / kWarp] = v;
    __syncthreads();
    float m = s.f[0];
    for (int w = 1; w < kWarps; ++w) m = fmaxf(m, s.f[w]);
    return m;
}

// A norm's weights are constants: copied to shared memory before the barrier that makes the
// norm's input ready (after it they would add a memory latency to the critical path).
constexpr int kNormVectors = 7;  // 4-value pieces of the row per thread (rows up to kMaxCols)
static_assert(kNormVectors * 4 * kThreads == kMaxCols, "the norm holds a whole row in registers");
__device__ __forceinline__ void request_norm_weights(const float* w, int cols, float* to) {
    if (threadIdx.x < kWarp) return;  // warp 0 waits at the barrier (grid_wait)
    for (int i = (threadIdx.x - kWarp) * 4; i < cols; i += (kThreads - kWarp) * 4)
        copy_async16(to + i, w + i);
}

// A product's input row: floats another phase wrote, or (the first layer's Q|K|V) the token's F16
// embedding row itself, so the step needs no embedding kernel before it.
struct RowSource {
    const float* f32 = nullptr;
    const __half* f16 = nullptr;
};

// rmsnorm then int8 quantization of one row into shared memory (zero past the row, up to
// kMaxCols): rmsnorm_quantize's rules; returns the activation scale (every thread has it). The sum
// of the codes is not reduced here: each warp of a product adds up the codes of its own chunks
// (product()), an exact integer sum in any order, without a block-wide reduction. A thread holds
// pieces of 4 consecutive values (one 16-byte load, one 4-byte store of codes each; rows are a
// multiple of 4 wide: decode_step_fits), all loaded at once and kept in registers; the loops
// past the row are branch-free (its values are zero), except the double-precision squares, which
// are slow. (The squares are added in another order than rmsnorm_quantize's: in double precision
// the float mean comes out the same.)
__device__ __noinline__ float norm_quantize(RowSource x, const float* nw, int cols, float eps,
                                            std::int8_t* q, Scratch& s) {
    float4 v[kNormVectors];
    double squares = 0;
    const int pieces = cols / 4;
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
        const int i = threadIdx.x + j * kThreads;
        v[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (i < pieces && x.f16 == nullptr) {
            v[j] = __ldcg(reinterpret_cast<const float4*>(x.f32) + i);
        } else if (i < pieces) {
            const uint2 h = __ldg(reinterpret_cast<const uint2*>(x.f16) + i);
            const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&h.x));
            const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&h.y));
            v[j] = make_float4(lo.x, lo.y, hi.x, hi.y);
        }
    }
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
        if (threadIdx.x + j * kThreads >= pieces) break;
        squares += static_cast<double>(v[j].x) * v[j].x;
        squares += static_cast<double>(v[j].y) * v[j].y;
        squares += static_cast<double>(v[j].z) * v[j].z;
        squares += static_cast<double>(v[j].w) * v[j].w;
    }
    const double total = block_sum(squares, s);
    const float mean = static_cast<float>(total / cols);
    const float scale = __fdiv_rn(1.0f, sqrtf(__fadd_rn(mean, eps)));
    float m = 0.0f;
    auto normed = [scale](float value, float weight) {
        return __fmul_rn(__fmul_rn(value, scale), weight);
    };
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
        const int i = threadIdx.x + j * kThreads;
        if (i < pieces) {
            const float4 w = reinterpret_cast<const float4*>(nw)[i];
            v[j] = make_float4(normed(v[j].x, w.x), normed(v[j].y, w.y), normed(v[j].z, w.z),
                               normed(v[j].w, w.w));
        }
        m = fmaxf(fmaxf(m, fmaxf(fabsf(v[j].x), fabsf(v[j].y))),
                  fmaxf(fabsf(v[j].z), fabsf(v[j].w)));
    }
    m = block_max(m, s);
    const float a = static_cast<float>(127.0 / fmax(static_cast<double>(m), 1e-5));
    auto code = [a](float value) {
        return static_cast<unsigned>(max(-128, min(127, __float2int_rn(__fmul_rn(value, a))))) &
               0xffu;
    };
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j)
        reinterpret_cast<unsigned*>(q)[threadIdx.x + j * kThreads] =
            code(v[j].x) | code(v[j].y) << 8 | code(v[j].z) << 16 | code(v[j].w) << 24;
    __syncthreads();
    return a;
}

// Codes of chunks c .. c + kU - 1 (below `stop`) of a row pair, one uint4 per block and lane.
__device__ __forceinline__ void fetch_codes(const uint4* w, int pair, int chunks, int c, int stop,
                                            int lane, uint4 (&codes)[kU][2]) {
#pragma unroll
    for (int u = 0; u < kU; ++u)
#pragma unroll
        for (int m = 0; m < 2; ++m)
            codes[u][m] =
                c + u < stop
                    ? __ldg(w + (static_cast<std::size_t>(2 * pair + m) * chunks + c + u) * kWarp +
                            lane)
                    : make_uint4(0, 0, 0, 0);
}

// The thread's results for the one token (lanes with t == 0 hold token 0 of rows g and g + 8
// of both blocks of the pair): the CPU's float rule, then Store / AddInto / relu(gate)^2 * up
// (write_results' rules for n = 1). `old`: the AddInto targets' values, loaded early.
__device__ __forceinline__ void write_token(const int (&acc)[2][1][4], int pair, int g,
                                            const float (&old)[2][2], float a,
                                            const MmaEpilogue& epi) {
    if (epi.kind == MmaOutput::ReluSquaredPair) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = pair * kMmaBlockRows + g + 8 * h;
            if (row >= epi.seg[0].rows) continue;
            const float gv = ternary_result(acc[0][0][2 * h], a, epi.seg[0].scale);
            const float uv = ternary_result(acc[1][0][2 * h], a, epi.seg[1].scale);
            const float rl = gv > 0.0f ? gv : 0.0f;
            epi.seg[0].out[row] = __fmul_rn(__fmul_rn(rl, rl), uv);
        }
        return;
    }
#pragma unroll
    for (int m = 0; m < 2; ++m) {
        const int block = 2 * pair + m;
        int k = 0;
        for (int j = 1; j < epi.count; ++j)
            if (block >= epi.seg[j].first_block) k = j;
        const MmaSegment& seg = k == 0 ? epi.seg[0] : (k == 1 ? epi.seg[1] : epi.seg[2]);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = (block - seg.first_block) * kMmaBlockRows + g + 8 * h;
            if (row >= seg.rows) continue;
            const float y = ternary_result(acc[m][0][2 * h], a, seg.scale);
            seg.out[row] = epi.kind == MmaOutput::AddInto ? __fadd_rn(old[m][h], y) : y;
        }
    }
}

// AddInto: the current values of the rows the thread will add to.
__device__ __forceinline__ void load_old(const MmaEpilogue& epi, int pair, int g,
                                         float (&old)[2][2]) {
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = (2 * pair + m) * kMmaBlockRows + g + 8 * h;
            old[m][h] = row < epi.seg[0].rows ? __ldcg(epi.seg[0].out + row) : 0.0f;
        }
}

// One product phase: a block handles kWarps / KSPLIT row pairs at a time, KSPLIT warps per
// pair splitting the chunks. The block's first codes are requested before the barrier that ends
// the previous phase (`wait`), then every block quantizes the input row itself.
template <int KSPLIT>
__device__ void product(const uint4* w, int blocks, int chunks, RowSource src, int cols,
                        const float* norm_w, float eps, const MmaEpilogue& epi, bool wait,
                        unsigned long long* barrier, unsigned long long* stamps, std::int8_t* q8,
                        int* partial, float* norm_smem, uint4* code_smem, Scratch& s) {
    constexpr int kGroups = kWarps / KSPLIT;
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int g = lane / 4, t = lane % 4;
    const int group = warp / KSPLIT, part = warp % KSPLIT;
    const int c_begin = chunks * part / KSPLIT, c_stop = chunks * (part + 1) / KSPLIT;
    const int pairs = blocks / kMmaPairBlocks;
    const int stride = static_cast<int>(gridDim.x) * kGroups;
    // Pairs are dealt from the last block down: attention runs on the first blocks, so the
    // products that follow it start on blocks whose codes were requested early.
    const int first_pair = (static_cast<int>(gridDim.x - 1 - blockIdx.x)) * kGroups + group;
    if (wait) grid_arrive(barrier, stamps, s);
    // The first round's codes are copied into shared memory before the barrier (cp.async: no
    // registers held across the barrier and the norm); later rounds load them directly.
    uint4* my_codes = code_smem + warp * kStaged * 2 * kWarp;
    const int staged = min(kStaged, c_stop - c_begin);  // chunks of the first round staged
    if (first_pair < pairs)
        for (int u = 0; u < staged; ++u)
            for (int m = 0; m < 2; ++m)
                copy_async16(
                    my_codes + (u * 2 + m) * kWarp + lane,
                    w +
                        (static_cast<std::size_t>(2 * first_pair + m) * chunks + c_begin + u) *
                            kWarp +
                        lane);
    uint4 codes[kU][2];
    // The residual rows an AddInto adds to were last written two phases ago (the phase before
    // this one writes other buffers), so they too are read before the barrier.
    const bool writer = part == 0 && t == 0;
    const bool add_into = epi.kind == MmaOutput::AddInto;
    float old[2][2] = {};
    if (add_into && writer && first_pair < pairs) load_old(epi, first_pair, g, old);
    request_norm_weights(norm_w, cols, norm_smem);
    if (wait) grid_wait(barrier, stamps, s);
    wait_async();
    __syncthreads();
    const float act_scale = norm_quantize(src, norm_smem, cols, eps, q8, s);
    mark(stamps, s, 0, gridDim.x - 1);
    const int rounds = (pairs + stride - 1) / stride;
    for (int r = 0; r < rounds; ++r) {
        const int pair = first_pair + r * stride;
        const bool active = pair < pairs;
        int scaled[4][2][4] = {};  // chunk_product_in_place's accumulators
        int code_sum = 0;  // summed over the warp: the activation codes its chunks multiplied
        for (int c = c_begin; active && c < c_stop; c += kU) {
            // (A group's chunks past c_stop are not used: a group ending there is staged whole
            // when its chunks are.)
            if (r > 0 || c - c_begin + min(kU, c_stop - c) > staged) {
                fetch_codes(w, pair, chunks, c, c_stop, lane, codes);
            } else {
#pragma unroll
                for (int u = 0; u < kU; ++u)
#pragma unroll
                    for (int m = 0; m < 2; ++m)
                        codes[u][m] = c + u < c_stop
                                          ? my_codes[((c - c_begin + u) * 2 + m) * kWarp + lane]
                                          : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int u = 0; u < kU; ++u) {
                if (c + u >= c_stop) break;
                // One token: every lane loads its t's 32 bytes (B fragment columns 1..7 then
                // repeat column 0 and their results are not used; no divergent branch in the
                // loop), read from shared memory right before use (few live registers). Each
                // lane adds one word of the chunk's codes to the warp's activation sum.
                const std::int8_t* chunk_q = q8 + (c + u) * kMmaChunk;
                const uint4* q = reinterpret_cast<const uint4*>(chunk_q + t * 32);
                const uint4 x[1][2] = {{q[0], q[1]}};
                code_sum =
                    __dp4a(reinterpret_cast<const int*>(chunk_q)[lane], 0x01010101, code_sum);
                chunk_product_in_place<2>(codes[u], x[0], scaled);
            }
        }
        if (r == 0) mark(stamps, s, 1, gridDim.x - 1);
        int acc[2][1][4];
        in_place_dots<2>(scaled, acc);
        // The codes are w + 1: subtract this warp's share of the activations' sum from the
        // token's dots (exact integers; the K-split then adds the shares up with the dots).
        code_sum = __reduce_add_sync(0xffffffffu, code_sum);
#pragma unroll
        for (int m = 0; m < 2; ++m) {
            acc[m][0][0] -= code_sum;
            acc[m][0][2] -= code_sum;
        }
        if constexpr (KSPLIT > 1) {
            // Integer partial sums of a pair's warps added in shared memory (exact in any order):
            // only the token's values (lanes t == 0: rows g and g + 8 of both blocks), which the
            // group's writer lanes add up themselves after one barrier.
            if (t == 0)
#pragma unroll
                for (int m = 0; m < 2; ++m)
#pragma unroll
                    for (int h = 0; h < 2; ++h)
                        partial[((warp * 2 + m) * 2 + h) * 8 + g] = acc[m][0][2 * h];
            __syncthreads();
            if (writer)
#pragma unroll
                for (int m = 0; m < 2; ++m)
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
                        int total = 0;
#pragma unroll
                        for (int j = 0; j < KSPLIT; ++j)
                            total += partial[(((group * KSPLIT + j) * 2 + m) * 2 + h) * 8 + g];
                        acc[m][0][2 * h] = total;
                    }
        }
        if (r == 0) mark(stamps, s, 2, gridDim.x - 1);
        if (writer && active) {
            if (add_into && r > 0) load_old(epi, pair, g, old);
            write_token(acc, pair, g, old, act_scale, epi);
        }
        if (r == 0) mark(stamps, s, 3, gridDim.x - 1);
        // partial is reused by the next round (after the last one, the next phase starts with
        // a barrier: grid_arrive)
        if constexpr (KSPLIT > 1)
            if (r + 1 < rounds) __syncthreads();
    }
}

// The most warps per pair that still covers all pairs in the fewest rounds (the decode products
// are latency bound: shorter per-warp chains, as long as no round is added).
__device__ void product_phase(const DecodeMatrix& m, RowSource src, int cols, const float* norm_w,
                              float eps, const MmaEpilogue& epi, bool wait,
                              unsigned long long* barrier, unsigned long long* stamps,
                              std::int8_t* q8, int* partial, float* norm_smem, uint4* code_smem,
                              Scratch& s) {
    const auto* w = reinterpret_cast<const uint4*>(m.words);
    const int blocks = m.blocks;
    const int chunks = m.padded_cols / kMmaChunk;
    const int pairs = blocks / kMmaPairBlocks;
    auto rounds = [&](int ksplit) {
        const int per_round = static_cast<int>(gridDim.x) * (kWarps / ksplit);
        return (pairs + per_round - 1) / per_round;
    };
    int ksplit = kWarps;
    while (ksplit > 1 && rounds(ksplit) > rounds(1)) ksplit /= 2;
    static_assert(kWarps == 8, "the cases below are the powers of two up to kWarps");
    switch (ksplit) {
        case 8:
            product<8>(w, blocks, chunks, src, cols, norm_w, eps, epi, wait, barrier, stamps, q8,
                       partial, norm_smem, code_smem, s);
            break;
        case 4:
            product<4>(w, blocks, chunks, src, cols, norm_w, eps, epi, wait, barrier, stamps, q8,
                       partial, norm_smem, code_smem, s);
            break;
        case 2:
            product<2>(w, blocks, chunks, src, cols, norm_w, eps, epi, wait, barrier, stamps, q8,
                       partial, norm_smem, code_smem, s);
            break;
        default:
            product<1>(w, blocks, chunks, src, cols, norm_w, eps, epi, wait, barrier, stamps, q8,
                       partial, norm_smem, code_smem, s);
    }
}

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
        for (int q = threadIdx.x; q <= pos; q += kThreads) {
            float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (q < pos || own_staged) {
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
constexpr int kLongStages = 2;      // V chunks in shared memory: one summed, one in flight
// Default start of the long path (BITNET_CUDA_LONG_ATTENTION=N moves it).
constexpr int kLongAttentionFrom = 352;

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

// The attention phase of a layer: the long-context split from p.long_from on (one call site,
// not inlined: the products' registers stay out of it).
__device__ __noinline__ void attention_any(const DecodeStep& p, int layer, int pos, int seq,
                                           float* dyn, int short_positions, Scratch& s) {
    if (pos >= p.long_from)
        attention_long_phase(p, layer, pos, seq, dyn, s);
    else
        attention_phase(p, layer, pos, seq, dyn, short_positions, s);
}

// rmsnorm rounded to F16 (rmsnorm_half's rules), by one block.
__device__ void final_norm(const DecodeStep& p, Scratch& s) {
    double squares = 0;
    for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
        const float v = __ldcg(p.x + i);
        squares += static_cast<double>(v) * v;
    }
    const double total = block_sum(squares, s);
    const float mean = static_cast<float>(total / p.hidden);
    const float scale = __fdiv_rn(1.0f, sqrtf(__fadd_rn(mean, p.eps)));
    auto* out = reinterpret_cast<__half*>(p.out_half);
    for (int i = threadIdx.x; i < p.hidden; i += kThreads)
        out[i] = __float2half_rn(__fmul_rn(__fmul_rn(__ldcg(p.x + i), scale), p.output_norm[i]));
}

std::size_t product_smem() {
    return kMaxCols + kPartialInts * sizeof(int) + kMaxCols * sizeof(float) +
           kCodeUint4s * sizeof(uint4);
}
// The short path (attention_phase) holds one head's scores for every position it runs at.
std::size_t attention_smem(int positions) {
    return (3 * static_cast<std::size_t>(kMaxHeadDim) + (positions + 3) / 4 * 4) * sizeof(float) +
           static_cast<std::size_t>(kVStage + kKeyStage) * kMaxHeadDim * sizeof(__half);
}
// Positions a long-path block scores at most (a range of whole chunks).
// (long_ranges()'s choice at the last position, where a range holds the most chunks)
int long_range_positions(const HeadShape& shape, const StepPlan& plan) {
    const int chunks = (plan.positions + kValueChunk - 1) / kValueChunk;
    int most = plan.grid / shape.kv_heads;
    if (plan.long_ranges > 0) most = std::min(most, plan.long_ranges);
    const int ranges = std::max(1, std::min(chunks, most));
    return (chunks + ranges - 1) / ranges * kValueChunk;
}
std::size_t attention_long_smem(const HeadShape& shape, const StepPlan& plan) {
    const int group = shape.heads / shape.kv_heads;
    return (static_cast<std::size_t>(kLongMaxOutputs) * kThreads + 2 * kMaxHeadDim +
            static_cast<std::size_t>(group) * long_range_positions(shape, plan)) *
               sizeof(float) +
           static_cast<std::size_t>(2 * kLongStages) * kValueChunk * kMaxHeadDim * sizeof(__half);
}
bool long_attention_allowed(const HeadShape& shape, int grid) {
    const int group = shape.heads / shape.kv_heads;
    return group * shape.head_dim <= kLongMaxOutputs * kThreads && group <= kWarps &&
           shape.kv_heads <= grid;
}
// The short path runs below long_from only, so its scores need no more room than that.
std::size_t step_smem(const HeadShape& shape, const StepPlan& plan) {
    std::size_t bytes =
        std::max(product_smem(), attention_smem(std::min(plan.positions, plan.long_from)));
    if (plan.long_from < plan.positions) bytes = std::max(bytes, attention_long_smem(shape, plan));
    return bytes;
}

// short_positions: the short attention path's room for scores (StepPlan: below long_from).
__global__ void __launch_bounds__(kThreads, 1)
    decode_step(const __grid_constant__ DecodeStep p, int short_positions) {
    extern __shared__ uint4 dynamic_smem[];
    __shared__ Scratch s;
    auto* q8 = reinterpret_cast<std::int8_t*>(dynamic_smem);
    auto* partial = reinterpret_cast<int*>(q8 + kMaxCols);
    auto* norm_smem = reinterpret_cast<float*>(partial + kPartialInts);
    auto* code_smem = reinterpret_cast<uint4*>(norm_smem + kMaxCols);
    auto* dyn = reinterpret_cast<float*>(dynamic_smem);
    const int pos = p.row[1], seq = p.row[2];
    if (threadIdx.x == 0) {
        s.barriers = 0;
        s.detail = 1 + 2 * kStepPhasesPerLayer * p.n_layers;
        s.layers = p.n_layers;
        if (p.stamps != nullptr && blockIdx.x == 0) p.stamps[0] = global_ns();
    }
    const int q_dim = p.shape.heads * p.shape.head_dim;
    const int kv_dim = p.shape.kv_heads * p.shape.head_dim;
    // The residual starts as the embedding row: each block converts a slice (first read by the
    // output projection, two barriers later).
    const __half* embedding_row = reinterpret_cast<const __half*>(p.embedding) +
                                  static_cast<std::size_t>(p.row[0]) * p.hidden;
    const int slice = (p.hidden + static_cast<int>(gridDim.x) - 1) / static_cast<int>(gridDim.x);
    for (int i = static_cast<int>(blockIdx.x) * slice + static_cast<int>(threadIdx.x);
         i < min(p.hidden, static_cast<int>(blockIdx.x + 1) * slice); i += kThreads)
        p.x[i] = __half2float(embedding_row[i]);
    for (int l = 0; l < p.n_layers; ++l) {
        const DecodeLayer& L = p.layers[l];
        MmaEpilogue qkv;
        qkv.count = 3;
        qkv.seg[0] = {L.q_first, q_dim, L.scale_q, p.q};
        qkv.seg[1] = {L.k_first, kv_dim, L.scale_k, p.k};
        qkv.seg[2] = {L.v_first, kv_dim, L.scale_v, p.v};
        // (the first layer's input: the embedding row, which x also gets for the residual)
        const RowSource qkv_src =
            l == 0 ? RowSource{nullptr, embedding_row} : RowSource{p.x, nullptr};
        product_phase(L.qkv, qkv_src, p.hidden, L.attn_norm, p.eps, qkv, l > 0, p.barrier, p.stamps,
                      q8, partial, norm_smem, code_smem, s);
        attention_any(p, l, pos, seq, dyn, short_positions, s);
        MmaEpilogue add_o;
        add_o.kind = MmaOutput::AddInto;
        add_o.seg[0] = {0, p.hidden, L.scale_o, p.x};
        product_phase(L.wo, {p.att, nullptr}, q_dim, L.attn_sub_norm, p.eps, add_o, true, p.barrier,
                      p.stamps, q8, partial, norm_smem, code_smem, s);
        MmaEpilogue gate_up;
        gate_up.kind = MmaOutput::ReluSquaredPair;
        gate_up.count = 2;
        gate_up.seg[0] = {0, p.ffn, L.scale_gate, p.g};
        gate_up.seg[1] = {1, p.ffn, L.scale_up, nullptr};
        product_phase(L.gate_up, {p.x, nullptr}, p.hidden, L.ffn_norm, p.eps, gate_up, true,
                      p.barrier, p.stamps, q8, partial, norm_smem, code_smem, s);
        MmaEpilogue add_down;
        add_down.kind = MmaOutput::AddInto;
        add_down.seg[0] = {0, p.hidden, L.scale_down, p.x};
        product_phase(L.down, {p.g, nullptr}, p.ffn, L.ffn_sub_norm, p.eps, add_down, true,
                      p.barrier, p.stamps, q8, partial, norm_smem, code_smem, s);
    }
    grid_barrier(p.barrier, p.stamps, s);
    if (blockIdx.x == 0) final_norm(p, s);
}

}  // namespace

bool decode_step_fits(int hidden, int ffn, const HeadShape& shape, int positions,
                      std::string& why) {
    const int q_dim = shape.heads * shape.head_dim, head_dim = shape.head_dim;
    if (std::max(std::max(hidden, ffn), q_dim) > kMaxCols || head_dim > kMaxHeadDim ||
        head_dim % 8 != 0 || hidden % 4 != 0 || ffn % 4 != 0) {
        why = "rows wider than " + std::to_string(kMaxCols) + " or not a multiple of 4, or " +
              "head_dim above " + std::to_string(kMaxHeadDim) + " or not a multiple of 8";
        return false;
    }
    int device = 0;
    cudaDeviceProp prop{};
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        why = "no device properties";
        return false;
    }
    // (with the long path where the shape allows it, the short one only up to its start)
    StepPlan plan;
    plan.grid = prop.multiProcessorCount;
    plan.positions = positions;
    plan.long_from = long_attention_allowed(shape, plan.grid) ? kLongAttentionFrom : INT_MAX;
    if (step_smem(shape, plan) + sizeof(Scratch) > prop.sharedMemPerBlockOptin) {
        why = std::to_string(positions) + " positions need more shared memory than a block has";
        return false;
    }
    return true;
}

StepPlan prepare_decode_step(const HeadShape& shape, int positions, const char* long_from_env,
                             const char* long_ranges_env) {
    int device = 0, sms = 0, optin = 0;
    BITNET_CUDA_CHECK(cudaGetDevice(&device));
    BITNET_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    BITNET_CUDA_CHECK(
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    StepPlan plan;
    plan.grid = sms;
    plan.positions = positions;
    plan.long_from = INT_MAX;
    if (long_attention_allowed(shape, sms)) {
        plan.long_from = kLongAttentionFrom;
        if (long_from_env != nullptr) plan.long_from = std::max(0, std::atoi(long_from_env));
        if (long_ranges_env != nullptr) plan.long_ranges = std::max(0, std::atoi(long_ranges_env));
    }
    const int bytes = static_cast<int>(step_smem(shape, plan));
    if (bytes + static_cast<int>(sizeof(Scratch)) > optin) {  // (a long_from_env past the room)
        plan.grid = 0;
        return plan;
    }
    // The limit belongs to the kernel function, shared by every model in the process: all the
    // device allows, so a model with a shorter context does not lower it under a longer one.
    cudaFuncAttributes attributes{};
    BITNET_CUDA_CHECK(cudaFuncGetAttributes(&attributes, decode_step));
    BITNET_CUDA_CHECK(cudaFuncSetAttribute(decode_step, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           optin - static_cast<int>(attributes.sharedSizeBytes)));
    int per_sm = 0;
    BITNET_CUDA_CHECK(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, decode_step, kThreads, bytes));
    if (per_sm < 1) plan.grid = 0;
    return plan;
}

LongAttentionSizes long_attention_sizes(const HeadShape& shape, const StepPlan& plan) {
    LongAttentionSizes z;
    z.max_chunks = (plan.positions + kValueChunk - 1) / kValueChunk;
    const std::size_t heads = shape.heads, chunks = z.max_chunks;
    z.mailbox_words = heads * (plan.grid + chunks * 2 + chunks * shape.head_dim);
    return z;
}

long long stamp_period(int layers, const StepPlan& plan) {
    // Barriers per step: kStepPhasesPerLayer per layer and one before the final norm; each
    // adds the grid to the counter. Zeroed before its low 32 bits could come round again.
    const long long per_step =
        (static_cast<long long>(kStepPhasesPerLayer) * layers + 1) * std::max(1, plan.grid);
    return std::max(1LL, (1LL << 31) / per_step);
}

void launch_decode_step(const DecodeStep& step, const StepPlan& plan, void* stream) {
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(plan.grid);
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = step_smem(step.shape, plan);
    config.stream = static_cast<cudaStream_t>(stream);
    // Cooperative: the launch fails instead of hanging at a barrier if the blocks cannot all be
    // resident at once.
    cudaLaunchAttribute attribute{};
    attribute.id = cudaLaunchAttributeCooperative;
    attribute.val.cooperative = 1;
    config.attrs = &attribute;
    config.numAttrs = 1;
    BITNET_CUDA_CHECK(
        cudaLaunchKernelEx(&config, decode_step, step, std::min(plan.positions, plan.long_from)));
}

}  // namespace bitnet::kernels::cuda

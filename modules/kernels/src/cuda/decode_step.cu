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
#include <cfloat>
#include <climits>
#include <cstdlib>
#include <string>

#include "activation_scale.cuh"
#include "argmax_rule.cuh"
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
    bool last;                  // step_head: this block finished the head's rows last
};
// The kernel's static shared memory (this Scratch, which ptxas rounds to 128 bytes) must stay
// within 128 bytes, or grow by multiples of 128: the dynamic shared memory starts right after it,
// and its staged codes, keys and values are laid out for banks from a 128-byte boundary. Measured
// (H100, 2B4T, tg128): 432 more static bytes (560 in all) 900 -> 783 tok/s; 512 more (640 in
// all) no change.
static_assert(sizeof(Scratch) <= 128, "static shared memory: 128 bytes (see above)");

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
// writes and counts the block in with one release add (it waits for the writes, not for loads
// issued after it; with the relaxed polls below each barrier is ~0.1 µs shorter than with a fence,
// a plain add and acquire polls); wait() returns once every block has arrived. With `stamps`
// (DecodeStep::stamps) every block's arrival and block 0's leaving are timed. The barrier itself is
// one 64-bit counter that only grows: each block adds 1 per barrier, so barrier k of all launches
// so far is passed when the counter reaches a multiple of the grid, the one above the value a
// block's add returned. The last block's add is all the others wait for (a reset and a separate
// generation word would put two more round trips to L2 on the critical path). Needs every block
// resident (one per SM, launched cooperatively) and the same grid in every launch on one counter.
__device__ void grid_arrive(unsigned long long* counter, unsigned long long* stamps, Scratch& s) {
    __syncthreads();
    if (threadIdx.x == 0) {
        if (stamps != nullptr)
            stamps[s.detail + 4 * kStepPhasesPerLayer * s.layers +
                   static_cast<std::size_t>(s.barriers) * gridDim.x + blockIdx.x] = global_ns();
        unsigned long long before;
        asm volatile("atom.release.gpu.global.add.u64 %0, [%1], 1;"
                     : "=l"(before)
                     : "l"(counter)
                     : "memory");
        s.target = before - before % gridDim.x + gridDim.x;
    }
}

// An acquire load (not a fence: a fence would also wait for this thread's requests issued
// between arrive() and wait(); measured 4% slower). It also invalidates the SM's L1
// (CCTL.IVALL), so the barrier polls with relaxed loads and acquires once, when the count is
// reached.
__device__ __forceinline__ unsigned long long load_acquire(const unsigned long long* p) {
    unsigned long long v;
    asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ unsigned long long load_relaxed(const unsigned long long* p) {
    unsigned long long v;
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}

__device__ void grid_wait(unsigned long long* counter, unsigned long long* stamps, Scratch& s) {
    if (threadIdx.x == 0) {
        while (load_relaxed(counter) < s.target) {
        }
        // (the count only grows: this load sees the last arrival too, and orders what follows)
        load_acquire(counter);
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
    const float a = activation_scale(m);
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
        // The block's segment, chosen by value: a loop over the segments or a reference to the
        // chosen one indexed the epilogue, which then lived in local memory (the kernel's 80-byte
        // stack frame) and was read back from there at the end of every product (tg128 +2.7%
        // without it; the same in ternary_mma_device.cuh made its prefill kernel take 199
        // registers instead of 134 and pp512 9% slower, so that one stays).
        const bool in1 = epi.count > 1 && block >= epi.seg[1].first_block;
        const bool in2 = epi.count > 2 && block >= epi.seg[2].first_block;
        const MmaSegment seg = in2 ? epi.seg[2] : (in1 ? epi.seg[1] : epi.seg[0]);
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

}  // namespace
}  // namespace bitnet::kernels::cuda

// The attention phases (RoPE, the KV write, attention; a file of their own for its size), which
// use the definitions above.
#include "decode_step_attention.cuh"

namespace bitnet::kernels::cuda {
namespace {

// rmsnorm rounded to F16 (rmsnorm_half's rules), by one block, into `out` (global or shared).
__device__ void final_norm(const DecodeStep& p, __half* out, Scratch& s) {
    double squares = 0;
    for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
        const float v = __ldcg(p.x + i);
        squares += static_cast<double>(v) * v;
    }
    const double total = block_sum(squares, s);
    const float mean = static_cast<float>(total / p.hidden);
    const float scale = __fdiv_rn(1.0f, sqrtf(__fadd_rn(mean, p.eps)));
    for (int i = threadIdx.x; i < p.hidden; i += kThreads)
        out[i] = __float2half_rn(__fmul_rn(__fmul_rn(__ldcg(p.x + i), scale), p.output_norm[i]));
}

constexpr int kHeadVectors = 10;  // 16-byte pieces per lane and row at a time (2560 columns)
__device__ void pick_greedy(const DecodeStep& p, float best, int at, float* warp_best, int* warp_at,
                            Scratch& s);
// R rows' F16 dots (rows past `vocab` give 0) by one warp, every lane getting them: lane l's
// 16-byte pieces l, l + 32, ... in order, an fmaf per element, then the xor-shuffle tree
// (f16_gemv's sums). The full head takes rows two at a time, the screened head's candidates one
// at a time: the same code, so the same bits for a row either way.
template <int R>
__device__ __forceinline__ void f16_rows_dot(const uint4* w, int pieces, const uint4* x,
                                             const int (&rows)[R], int vocab, int lane,
                                             float (&out)[R]) {
    float acc[R];
#pragma unroll
    for (int m = 0; m < R; ++m) acc[m] = 0.0f;
    for (int c = lane; c < pieces; c += kWarp * kHeadVectors) {
        uint4 wv[R][kHeadVectors];
#pragma unroll
        for (int m = 0; m < R; ++m)
#pragma unroll
            for (int k = 0; k < kHeadVectors; ++k) {
                const int i = c + k * kWarp;
                wv[m][k] = rows[m] < vocab && i < pieces
                               ? __ldg(w + static_cast<std::size_t>(rows[m]) * pieces + i)
                               : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
        for (int k = 0; k < kHeadVectors; ++k) {
            const int i = c + k * kWarp;
            if (i >= pieces) break;
            const uint4 xv = x[i];
            const __half2* xh2 = reinterpret_cast<const __half2*>(&xv);
#pragma unroll
            for (int m = 0; m < R; ++m) {
                const __half2* wh = reinterpret_cast<const __half2*>(&wv[m][k]);
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const float2 wf = __half22float2(wh[j]), xf = __half22float2(xh2[j]);
                    acc[m] = fmaf(wf.x, xf.x, acc[m]);
                    acc[m] = fmaf(wf.y, xf.y, acc[m]);
                }
            }
        }
    }
#pragma unroll
    for (int m = 0; m < R; ++m) {
        float v = acc[m];
        for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
        out[m] = v;
    }
}

// The F16 head inside the step (DecodeStep::head), after every block has taken the final norm
// itself into `xh` (shared): f16_gemv's sums for one token (a warp per row; lane l's 16-byte
// pieces l, l + 32, ... in order, an fmaf per element, then the xor-shuffle tree), the rows
// dealt to the grid's warps two at a time, so a lane has 2 x kHeadVectors loads in flight; and
// argmax's answer (NaN skipped, keep_better): each warp keeps its best row, each block its best
// warp, and the last block to finish (a ticket) the best block. In the step, the head's 657 MB
// (2b4t) stream right after the layers, without a kernel boundary, a second launch and an argmax
// kernel in between.
__device__ void step_head(const DecodeStep& p, const __half* xh, float* warp_best, int* warp_at,
                          Scratch& s) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int pieces = p.hidden / 8;
    const int warps = static_cast<int>(gridDim.x) * kWarps;
    const auto* w = reinterpret_cast<const uint4*>(p.head);
    const auto* x = reinterpret_cast<const uint4*>(xh);
    float best = 0.0f;
    int at = -1;
    for (int r0 = static_cast<int>(blockIdx.x) * kWarps + warp; r0 < p.vocab; r0 += 2 * warps) {
        const int rows[2] = {r0, r0 + warps};
        float v[2];
        f16_rows_dot<2>(w, pieces, x, rows, p.vocab, lane, v);
#pragma unroll
        for (int m = 0; m < 2; ++m) {
            if (rows[m] >= p.vocab) continue;
            if (lane == 0) p.logits[rows[m]] = v[m];
            if (!isnan(v[m])) keep_better(best, at, v[m], rows[m]);
        }
    }
    if (p.greedy != nullptr) pick_greedy(p, best, at, warp_best, warp_at, s);
}

// Floats in an order unsigned integers keep (for atomicMax); 0 is below every float.
__device__ __forceinline__ unsigned ordered_key(float f) {
    const unsigned b = __float_as_uint(f);
    return (b & 0x80000000u) != 0 ? ~b : b | 0x80000000u;
}
__device__ __forceinline__ float from_ordered_key(unsigned k) {
    return __uint_as_float((k & 0x80000000u) != 0 ? k & 0x7fffffffu : ~k);
}

// The greedy token through the int8 screening head (DecodeStep::head_codes; head_screen.hpp):
// every row's integer dot of its int8 codes with the normed row in int16 (`x16` in steps of
// `x_step`, at most `x_err` from each F16 value; `__dp2a`, 2 products per instruction), scaled,
// gives an interval that holds the F16 head's float result for the row — widened by the row's
// slack times ||x||_1 and by 127 * cols * x_err per unit of its scale, rounded outwards. The
// largest lower end over the vocabulary (a grid-wide maximum: an atomicMax, then a grid
// barrier) rules out every row whose upper end is below it; the rest — the F16 argmax among
// them, by the same rule, ties included — are computed from the F16 weights as step_head does.
// Rows are dealt to the grid's warps (row r to warp r % warps), two at a time; a row's scaled
// dot waits in `logits` between the passes. A NaN or infinite norm makes every row a candidate.
// (H100, 2b4t, tg128 after 16 tokens: 1, 2, 4, 8 rows at a time 1,006 / 1,028 / 1,019 / 999 tok/s)
constexpr int kScreenRows = 2;
struct ScreenRow {
    const uint4* x16;  // int16 codes of the normed row (shared memory)
    float x_step, x_err, norm1;
};
__device__ void screened_head(const DecodeStep& p, const __half* xh, const ScreenRow& xr,
                              float* warp_best, int* warp_at, Scratch& s) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int pieces = p.hidden / 16;  // 16 codes per 16-byte piece
    const int warps = static_cast<int>(gridDim.x) * kWarps;
    const int me = static_cast<int>(blockIdx.x) * kWarps + warp;
    const auto* codes = reinterpret_cast<const uint4*>(p.head_codes);
    // (per unit of a row's scale: what the int16 rounding of x can move its dot)
    const float x_slack = __fmul_ru(127.01f * static_cast<float>(p.hidden), xr.x_err);
    auto bound = [&](int row) {
        return __fadd_ru(__fmul_ru(p.head_slack[row], xr.norm1),
                         __fmul_ru(x_slack, p.head_scale[row]));
    };
    float highest_low = -INFINITY;
    for (int r0 = me; r0 < p.vocab; r0 += kScreenRows * warps) {
        int acc[kScreenRows];
#pragma unroll
        for (int m = 0; m < kScreenRows; ++m) acc[m] = 0;
        for (int c = lane; c < pieces; c += kWarp * kHeadVectors / 2) {
            uint4 q[kScreenRows][kHeadVectors / 2];
#pragma unroll
            for (int m = 0; m < kScreenRows; ++m)
#pragma unroll
                for (int k = 0; k < kHeadVectors / 2; ++k) {
                    const int i = c + k * kWarp, row = r0 + m * warps;
                    q[m][k] = row < p.vocab && i < pieces
                                  ? __ldg(codes + static_cast<std::size_t>(row) * pieces + i)
                                  : make_uint4(0, 0, 0, 0);
                }
#pragma unroll
            for (int k = 0; k < kHeadVectors / 2; ++k) {
                const int i = c + k * kWarp;
                if (i >= pieces) break;
                const uint4 xa = xr.x16[2 * i], xb = xr.x16[2 * i + 1];  // 16 int16 values
#pragma unroll
                for (int m = 0; m < kScreenRows; ++m) {
                    const uint4 w = q[m][k];
                    int v = acc[m];
                    v = __dp2a_lo(static_cast<int>(xa.x), static_cast<int>(w.x), v);
                    v = __dp2a_hi(static_cast<int>(xa.y), static_cast<int>(w.x), v);
                    v = __dp2a_lo(static_cast<int>(xa.z), static_cast<int>(w.y), v);
                    v = __dp2a_hi(static_cast<int>(xa.w), static_cast<int>(w.y), v);
                    v = __dp2a_lo(static_cast<int>(xb.x), static_cast<int>(w.z), v);
                    v = __dp2a_hi(static_cast<int>(xb.y), static_cast<int>(w.z), v);
                    v = __dp2a_lo(static_cast<int>(xb.z), static_cast<int>(w.w), v);
                    acc[m] = __dp2a_hi(static_cast<int>(xb.w), static_cast<int>(w.w), v);
                }
            }
        }
#pragma unroll
        for (int m = 0; m < kScreenRows; ++m) {
            // (a lane's integer sum is exact; the float steps after it are in the slack)
            float v = static_cast<float>(acc[m]);
            for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
            const int row = r0 + m * warps;
            if (row >= p.vocab) continue;
            const float a = __fmul_rn(__fmul_rn(v, p.head_scale[row]), xr.x_step);
            highest_low = fmaxf(highest_low, __fsub_rd(a, bound(row)));
            if (lane == 0) p.logits[row] = a;
        }
    }
    // The grid's largest lower end: each block's, then an atomicMax on its key.
    auto* highest_key = reinterpret_cast<unsigned*>(p.greedy_work + 2 * gridDim.x + 1);
    if (lane == 0) warp_best[warp] = highest_low;
    __syncthreads();
    if (threadIdx.x == 0) {
        float block_low = -INFINITY;
        for (int i = 0; i < kWarps; ++i) block_low = fmaxf(block_low, warp_best[i]);
        atomicMax(highest_key, ordered_key(block_low));
    }
    grid_barrier(p.barrier, p.stamps, s);
    float threshold = from_ordered_key(__ldcg(highest_key));
    if (!(xr.norm1 <= FLT_MAX)) threshold = -INFINITY;  // (NaN or infinite: every row)
    const auto* w = reinterpret_cast<const uint4*>(p.head);
    const auto* x = reinterpret_cast<const uint4*>(xh);
    float best = 0.0f;
    int at = -1;
    for (int k0 = 0; me + k0 * warps < p.vocab; k0 += kWarp) {
        const int row = me + (k0 + lane) * warps;
        bool candidate = false;
        if (row < p.vocab) {
            const float upper = __fadd_ru(__ldcg(p.logits + row), bound(row));
            candidate = !(upper < threshold);  // (NaN: a candidate)
        }
        for (unsigned mask = __ballot_sync(0xffffffffu, candidate); mask != 0; mask &= mask - 1) {
            const int r[1] = {me + (k0 + __ffs(mask) - 1) * warps};
            float v[1];
            f16_rows_dot<1>(w, p.hidden / 8, x, r, p.vocab, lane, v);
            if (!isnan(v[0])) keep_better(best, at, v[0], r[0]);
        }
    }
    pick_greedy(p, best, at, warp_best, warp_at, s);
}

// The step's greedy token from every warp's best row (`best`, `at` in its lanes, all alike): each
// block's best warp, and the last block to finish (a ticket) the best block (argmax's rule).
__device__ void pick_greedy(const DecodeStep& p, float best, int at, float* warp_best, int* warp_at,
                            Scratch& s) {
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    __syncthreads();  // (warp_best may still be read by screened_head's maximum)
    if (lane == 0) {
        warp_best[warp] = best;
        warp_at[warp] = at;
    }
    __syncthreads();
    int* answers = p.greedy_work;  // (value bits, index) per block, then the ticket
    auto* ticket = reinterpret_cast<unsigned*>(p.greedy_work + 2 * gridDim.x);
    if (threadIdx.x == 0) {
        for (int i = 0; i < kWarps; ++i) keep_better(best, at, warp_best[i], warp_at[i]);
        answers[2 * blockIdx.x] = __float_as_int(best);
        answers[2 * blockIdx.x + 1] = at;
        __threadfence();
        s.last = atomicAdd(ticket, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!s.last || warp != 0) return;
    __threadfence();
    best = 0.0f;
    at = -1;
    for (int b = lane; b < static_cast<int>(gridDim.x); b += kWarp)
        keep_better(best, at, __int_as_float(__ldcg(answers + 2 * b)), __ldcg(answers + 2 * b + 1));
    for (int off = 16; off > 0; off /= 2)
        keep_better(best, at, __shfl_xor_sync(0xffffffffu, best, off),
                    __shfl_xor_sync(0xffffffffu, at, off));
    if (lane == 0) {
        *p.greedy = at;
        if (p.tokens_out != nullptr) p.tokens_out[p.step] = at;
        *ticket = 0;  // ready for the next step (with the screening head's maximum)
        ticket[1] = 0;
        // (profiling: the step's end, after the stamps of the layers' barriers)
        if (p.stamps != nullptr)
            p.stamps[s.detail + 4 * kStepPhasesPerLayer * s.layers +
                     static_cast<std::size_t>(kStepPhasesPerLayer) * s.layers * gridDim.x] =
                global_ns();
    }
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
    // A burst's later steps (DecodeStep::step) take the token the launch before chose (-1,
    // every logit NaN, reads row 0 and the host reports it) at the next position.
    const int token = p.step == 0 ? p.row[0] : max(0, __ldcg(p.greedy));
    const int pos = p.row[1] + p.step, seq = p.row[2];
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
    const __half* embedding_row =
        reinterpret_cast<const __half*>(p.embedding) + static_cast<std::size_t>(token) * p.hidden;
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
    if (p.head == nullptr) {
        if (blockIdx.x == 0) final_norm(p, reinterpret_cast<__half*>(p.out_half), s);
        return;
    }
    auto* xh = reinterpret_cast<__half*>(norm_smem);
    final_norm(p, xh, s);
    __syncthreads();
    if (p.head_codes == nullptr) {
        step_head(p, xh, reinterpret_cast<float*>(partial), partial + kWarps, s);
        return;
    }
    // The row the screening head multiplies: ||x||_1 of its F16 values (rounded up), and the
    // values in int16 steps of max|x| / 32767, with their largest rounding error.
    ScreenRow xr;
    double magnitudes = 0;
    float largest = 0.0f;
    for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
        const float v = fabsf(__half2float(xh[i]));
        magnitudes += v;
        largest = fmaxf(largest, v);
    }
    xr.norm1 = __double2float_ru(block_sum(magnitudes, s) * (1.0 + 0x1p-40));
    xr.x_step = __fdiv_rn(block_max(largest, s), 32767.0f);
    auto* x16 = reinterpret_cast<std::int16_t*>(code_smem);
    float err = 0.0f;
    for (int i = threadIdx.x; i < p.hidden; i += kThreads) {
        const float v = __half2float(xh[i]);
        const float k = xr.x_step > 0.0f
                            ? fminf(32767.0f, fmaxf(-32767.0f, rintf(__fdiv_rn(v, xr.x_step))))
                            : 0.0f;
        x16[i] = static_cast<std::int16_t>(k);
        err = fmaxf(err, __double2float_ru(
                             fabs(static_cast<double>(v) - static_cast<double>(k) * xr.x_step)));
    }
    __syncthreads();  // (x16 written; block_max's slots free again)
    xr.x_err = block_max(err, s);
    xr.x16 = code_smem;
    screened_head(p, xh, xr, reinterpret_cast<float*>(partial), partial + kWarps, s);
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
    // (+2: the one before the final norm, and the screening head's)
    const long long per_step =
        (static_cast<long long>(kStepPhasesPerLayer) * layers + 2) * std::max(1, plan.grid);
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

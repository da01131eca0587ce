// Kernels of sampling_kernels.hpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "argmax_rule.cuh"
#include "cuda_memory.hpp"
#include "launch_control.cuh"
#include "sampling_kernels.hpp"

namespace bitnet::kernels::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

// A block's slice of the row (thread-strided, so a thread's indices rise and `>` keeps its first
// maximum; NaN never compares greater), reduced in the block; the last block to finish (a
// ticket) combines the slices' answers. 13 -> ~3 us on a 128k vocabulary against one block.
constexpr int kArgmaxThreads = 256;
__global__ void __launch_bounds__(kArgmaxThreads)
    argmax(const float* x, int n, int* out, int* work) {
    pdl_wait();
    const int per = (n + static_cast<int>(gridDim.x) - 1) / static_cast<int>(gridDim.x);
    const int begin = static_cast<int>(blockIdx.x) * per, end = min(n, begin + per);
    float best = 0.0f;
    int at = -1;
    for (int i = begin + static_cast<int>(threadIdx.x); i < end; i += kArgmaxThreads) {
        const float v = x[i];
        if (!isnan(v) && (at < 0 || v > best)) {
            best = v;
            at = i;
        }
    }
    auto block_best = [&] {
        for (int off = 16; off > 0; off /= 2)
            keep_better(best, at, __shfl_xor_sync(0xffffffffu, best, off),
                        __shfl_xor_sync(0xffffffffu, at, off));
        __shared__ float values[kArgmaxThreads / 32];
        __shared__ int indices[kArgmaxThreads / 32];
        if (threadIdx.x % 32 == 0) {
            values[threadIdx.x / 32] = best;
            indices[threadIdx.x / 32] = at;
        }
        __syncthreads();
        for (int w = 0; w < kArgmaxThreads / 32; ++w) keep_better(best, at, values[w], indices[w]);
    };
    block_best();
    int* answers = work;  // (value bits, index) per block
    auto* ticket = reinterpret_cast<unsigned*>(work + 2 * kArgmaxBlocks);
    __shared__ bool last;
    if (threadIdx.x == 0) {
        answers[2 * blockIdx.x] = __float_as_int(best);
        answers[2 * blockIdx.x + 1] = at;
        __threadfence();
        last = atomicAdd(ticket, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    best = 0.0f;
    at = -1;
    if (threadIdx.x < gridDim.x)
        keep_better(best, at, __int_as_float(__ldcg(answers + 2 * threadIdx.x)),
                    __ldcg(answers + 2 * threadIdx.x + 1));
    __syncthreads();  // (block_best reuses its shared arrays)
    block_best();
    if (threadIdx.x == 0) {
        *out = at;
        *ticket = 0;  // ready for the next launch
    }
}

// A block per row: ids[offsets[r] .. offsets[r + 1]) of row r with penalties[r].
__global__ void penalize(float* x, int n, const int* offsets, const int* ids,
                         const float* penalties) {
    pdl_wait();
    float* row = x + static_cast<std::size_t>(blockIdx.x) * n;
    const float penalty = penalties[blockIdx.x];
    for (int i = offsets[blockIdx.x] + threadIdx.x; i < offsets[blockIdx.x + 1]; i += blockDim.x) {
        const float l = row[ids[i]];
        row[ids[i]] = l > 0.0f ? __fdiv_rn(l, penalty) : __fmul_rn(l, penalty);
    }
}

// Unsigned keys in the order of the floats (not NaN); -0 and +0 get the same key. Every value,
// -inf included, has a key above 0.
__device__ __forceinline__ unsigned order_key(float v) {
    const unsigned u = v == 0.0f ? 0u : __float_as_uint(v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Whether 16-byte loads can read x: rows after the first of a vocabulary that is not a multiple
// of 4 start between quads.
__device__ __forceinline__ bool quad_aligned(const float* x) {
    return (reinterpret_cast<std::uintptr_t>(x) & 15u) == 0;
}

// f(value, index) for x[0..n), strided over the block's threads four values at a time: a single
// block must keep many loads in flight to read half a megabyte quickly (one float per thread
// and round trip took ~30 us per pass).
template <typename F>
__device__ __forceinline__ void for_each_value(const float* __restrict__ x, int n, F f) {
    const int quads = quad_aligned(x) ? n / 4 : 0;
    const auto* x4 = reinterpret_cast<const float4*>(x);
#pragma unroll 4
    for (int i = threadIdx.x; i < quads; i += kThreads) {
        const float4 v = __ldg(x4 + i);
        f(v.x, 4 * i);
        f(v.y, 4 * i + 1);
        f(v.z, 4 * i + 2);
        f(v.w, 4 * i + 3);
    }
    for (int i = 4 * quads + threadIdx.x; i < n; i += kThreads) f(__ldg(x + i), i);
}

// Exclusive prefix sum of `v` over the block's threads in thread order; `total` gets the sum.
__device__ int block_exclusive_scan(int v, int& total) {
    __shared__ int warp_sums[kWarps];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int inclusive = v;
    for (int off = 1; off < 32; off *= 2) {
        const int up = __shfl_up_sync(0xffffffffu, inclusive, off);
        if (lane >= off) inclusive += up;
    }
    if (lane == 31) warp_sums[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
        int w = warp_sums[lane];
        for (int off = 1; off < 32; off *= 2) {
            const int up = __shfl_up_sync(0xffffffffu, w, off);
            if (lane >= off) w += up;
        }
        warp_sums[lane] = w;  // inclusive over warps
    }
    __syncthreads();
    total = warp_sums[kWarps - 1];
    const int before = (warp > 0 ? warp_sums[warp - 1] : 0) + inclusive - v;
    __syncthreads();  // warp_sums reusable
    return before;
}

// A thread's contiguous share of 0..n (whole quads but the last), in thread order: a prefix sum
// over the threads then orders what they find by index.
struct Range {
    int lo, hi;
};
__device__ __forceinline__ Range my_range(int n, int quad) {
    const int per = (n + quad * kThreads - 1) / (quad * kThreads) * quad;
    const int lo = min(n, static_cast<int>(threadIdx.x) * per);
    return {lo, min(n, lo + per)};
}

template <typename F>
__device__ __forceinline__ void for_range_values(const float* __restrict__ x, Range r, F f) {
    int i = r.lo;
    for (; quad_aligned(x) && i + 4 <= r.hi; i += 4) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(x + i));
        f(v.x, i);
        f(v.y, i + 1);
        f(v.z, i + 2);
        f(v.w, i + 3);
    }
    for (; i < r.hi; ++i) f(__ldg(x + i), i);
}

// The k best by four 8-bit radix passes over all of x (the fallback when the coarse bin of the
// k-th best holds more values than shared memory: logits crowded onto a few values). `memory`:
// 33 KB of shared memory.
__device__ void radix_select_all(const float* __restrict__ x, int n, int k, int* out,
                                 unsigned* memory) {
    unsigned* lane_hist = memory;  // [bin][lane index]
    unsigned* hist = memory + 256 * 32;
    __shared__ unsigned chosen_digit;
    __shared__ int chosen_need, slots;
    // The k-th best key, 8 bits at a time from the top: `prefix` holds the bits decided so far
    // (under `mask`), `need` how many of the keys with that prefix are still to take.
    unsigned prefix = 0, mask = 0;
    int need = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        // Each lane index counts into its own copy of the bins, so the lanes of a warp never
        // meet on an address or a bank: this path gets crowded rows, where one counter per bin
        // would serialize the atomics. (On ordinary logits it measured no faster: 135 vs 130 us.)
        for (int i = threadIdx.x; i < 256 * 32; i += kThreads) lane_hist[i] = 0;
        __syncthreads();
        unsigned* my_bins = lane_hist + threadIdx.x % 32;
        for_each_value(x, n, [&](float v, int) {
            const unsigned key = order_key(v);
            if (!isnan(v) && (key & mask) == prefix)
                atomicAdd(my_bins + ((key >> shift) & 255u) * 32, 1u);
        });
        __syncthreads();
        for (int bin = threadIdx.x; bin < 256; bin += kThreads) {
            unsigned total = 0;
            for (int j = 0; j < 32; ++j) total += lane_hist[bin * 32 + (j + bin) % 32];
            hist[bin] = total;  // (rotated reads: the threads of a warp read different banks)
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int above = 0, digit = 255;
            while (digit > 0 && above + static_cast<int>(hist[digit]) < need)
                above += static_cast<int>(hist[digit--]);
            if (shift == 24 && digit == 0 && above + static_cast<int>(hist[0]) < need) {
                chosen_need = -1;  // fewer values than k: all of them
            } else {
                chosen_digit = static_cast<unsigned>(digit);
                chosen_need = need - above;
            }
        }
        __syncthreads();
        if (chosen_need < 0) {
            prefix = 0;  // below every key
            need = 0;
            break;
        }
        prefix |= chosen_digit << shift;
        mask |= 255u << shift;
        need = chosen_need;
        __syncthreads();  // (hist and the choice are rewritten next pass)
    }
    // Keys above `prefix` all go; of those equal to it, the first `need` by index: each thread
    // takes a contiguous range of indices so a prefix sum orders the ties.
    const Range range = my_range(n, 4);
    int ties = 0;
    for_range_values(x, range, [&](float v, int) { ties += !isnan(v) && order_key(v) == prefix; });
    int total_ties = 0;
    int tie_rank = block_exclusive_scan(ties, total_ties);
    if (threadIdx.x == 0) slots = 0;
    __syncthreads();
    for_range_values(x, range, [&](float v, int i) {
        if (isnan(v)) return;
        const unsigned key = order_key(v);
        const bool take = key > prefix || (key == prefix && tie_rank++ < need);
        if (take) {
            const int slot = atomicAdd(&slots, 1);
            if (slot < k) {  // (exactly k are taken; never write past the answer's room)
                out[1 + 2 * slot] = __float_as_int(v);
                out[2 + 2 * slot] = i;
            }
        }
    });
    __syncthreads();
    if (threadIdx.x == 0) out[0] = min(slots, k);
}

// Of `bins` counts (a multiple of kThreads), from the top bin down: the bin where the count at
// or above it first reaches `need`; *bin = it, *left = how many of its values are still needed.
// False (for every thread) when all bins together hold fewer than `need`.
__device__ bool find_crossing(const unsigned* hist, int bins, int need, int* bin, int* left) {
    const int per = bins / kThreads;
    const int top = bins - 1 - static_cast<int>(threadIdx.x) * per;  // this thread's bins, down
    int mine = 0;
    for (int j = 0; j < per; ++j) mine += static_cast<int>(hist[top - j]);
    int total = 0;
    int above = block_exclusive_scan(mine, total);  // the values in higher bins than this thread's
    if (total < need) return false;
    if (above < need && above + mine >= need)  // (one thread)
        for (int j = 0; j < per; ++j) {
            const int h = static_cast<int>(hist[top - j]);
            if (above + h >= need) {
                *bin = top - j;
                *left = need - above;
                break;
            }
            above += h;
        }
    __syncthreads();
    return true;
}

constexpr int kCoarseBits = 12;  // the first digit: a key's top 12 bits
constexpr int kCoarseBins = 1 << kCoarseBits;
constexpr int kFineBits = 10;  // then the other 20 in two digits, over the gathered values
constexpr int kFineBins = 1 << kFineBits;
constexpr int kMaxGathered = 5120;  // values of the coarse bin held in shared memory

struct GatheredBin {
    unsigned key[kMaxGathered];
    int index[kMaxGathered];
    unsigned fine[kFineBins];
};
union TopKMemory {
    unsigned coarse[kCoarseBins];
    GatheredBin gathered;
    unsigned radix[256 * 32 + 256];  // radix_select_all's
};

// One histogram pass over the logits (coarse bins of the top 12 key bits) finds the bin of the
// k-th best; the values above it go straight to the answer and the bin's own values (usually a
// few hundred) are gathered into shared memory in index order, where two more digits find the
// k-th best key exactly. Two passes over the logits instead of six. A block per row: row r
// (x + r * n) keeps ks[r] into out + r * kTopKAnswerInts.
__global__ void __launch_bounds__(kThreads)
    top_k(const float* __restrict__ x, int n, const int* ks, int* out) {
    pdl_wait();
    x += static_cast<std::size_t>(blockIdx.x) * n;
    out += static_cast<std::size_t>(blockIdx.x) * kTopKAnswerInts;
    const int k = min(ks[blockIdx.x], kMaxDeviceTopK);
    __shared__ TopKMemory memory;
    __shared__ int crossing_bin, crossing_left, slots;
    auto take = [&](float v, int i) {
        const int slot = atomicAdd(&slots, 1);
        if (slot < k) {  // (exactly k are taken; never write past the answer's room)
            out[1 + 2 * slot] = __float_as_int(v);
            out[2 + 2 * slot] = i;
        }
    };
    for (int i = threadIdx.x; i < kCoarseBins; i += kThreads) memory.coarse[i] = 0;
    if (threadIdx.x == 0) slots = 0;
    __syncthreads();
    for_each_value(x, n, [&](float v, int) {
        if (!isnan(v)) atomicAdd(&memory.coarse[order_key(v) >> (32 - kCoarseBits)], 1u);
    });
    __syncthreads();
    if (!find_crossing(memory.coarse, kCoarseBins, k, &crossing_bin, &crossing_left)) {
        for_each_value(x, n, [&](float v, int i) {  // fewer values than k: all of them
            if (!isnan(v)) take(v, i);
        });
        __syncthreads();
        if (threadIdx.x == 0) out[0] = min(slots, k);
        return;
    }
    const unsigned coarse_bin = static_cast<unsigned>(crossing_bin);
    const int gathered = static_cast<int>(memory.coarse[coarse_bin]);
    int left = crossing_left;
    __syncthreads();  // (the coarse counts are read; the memory is reused below)
    if (gathered > kMaxGathered) {
        radix_select_all(x, n, k, out, memory.radix);
        return;
    }
    const Range range = my_range(n, 4);
    int mine = 0;
    for_range_values(x, range, [&](float v, int i) {
        if (isnan(v)) return;
        const unsigned bin = order_key(v) >> (32 - kCoarseBits);
        if (bin > coarse_bin) take(v, i);
        mine += bin == coarse_bin;
    });
    int unused = 0;
    int at = block_exclusive_scan(mine, unused);
    GatheredBin& g = memory.gathered;
    for_range_values(x, range, [&](float v, int i) {
        if (isnan(v) || order_key(v) >> (32 - kCoarseBits) != coarse_bin) return;
        g.key[at] = order_key(v);
        g.index[at] = i;
        ++at;
    });
    __syncthreads();
    // The k-th best key among the gathered, 10 bits at a time.
    unsigned prefix = coarse_bin << (32 - kCoarseBits), mask = ~0u << (32 - kCoarseBits);
    for (int shift = 32 - kCoarseBits - kFineBits; shift >= 0; shift -= kFineBits) {
        for (int i = threadIdx.x; i < kFineBins; i += kThreads) g.fine[i] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < gathered; i += kThreads)
            if ((g.key[i] & mask) == prefix)
                atomicAdd(&g.fine[(g.key[i] >> shift) & (kFineBins - 1)], 1u);
        __syncthreads();
        find_crossing(g.fine, kFineBins, left, &crossing_bin, &crossing_left);  // (always found)
        prefix |= static_cast<unsigned>(crossing_bin) << shift;
        mask |= static_cast<unsigned>(kFineBins - 1) << shift;
        left = crossing_left;
        __syncthreads();
    }
    // Keys above the k-th best all go; of those equal to it, the first `left` by index.
    const Range part = my_range(gathered, 1);
    int ties = 0;
    for (int i = part.lo; i < part.hi; ++i) ties += g.key[i] == prefix;
    int rank = block_exclusive_scan(ties, unused);
    for (int i = part.lo; i < part.hi; ++i)
        if (g.key[i] > prefix || (g.key[i] == prefix && rank++ < left))
            take(__ldg(x + g.index[i]), g.index[i]);
    __syncthreads();
    if (threadIdx.x == 0) out[0] = min(slots, k);
}

}  // namespace

void launch_argmax(const float* x, int n, int* out, int* work, void* stream) {
    // Slices of at least 2048 values (small rows need no more blocks).
    const int blocks = std::max(1, std::min(kArgmaxBlocks, (n + 2047) / 2048));
    launch(argmax, blocks, kArgmaxThreads, 0, stream, x, n, out, work);
}

void launch_penalize(float* x, int n, int rows, const int* offsets, const int* ids,
                     const float* penalties, void* stream) {
    launch(penalize, rows, 256, 0, stream, x, n, offsets, ids, penalties);
}

void launch_top_k(const float* x, int n, int rows, const int* ks, int* out, void* stream) {
    launch(top_k, rows, kThreads, 0, stream, x, n, ks, out);
}

int device_argmax(const float* host, int n) {
    auto* x = static_cast<float*>(device_alloc(sizeof(float) * std::max(n, 1), "argmax input"));
    auto* out = static_cast<int*>(device_alloc(sizeof(int), "argmax result"));
    auto* work = static_cast<int*>(device_alloc(sizeof(int) * kArgmaxWorkInts, "argmax work"));
    BITNET_CUDA_CHECK(cudaMemset(work, 0, sizeof(int) * kArgmaxWorkInts));
    int answer = -2;
    BITNET_CUDA_CHECK(cudaMemcpy(x, host, sizeof(float) * n, cudaMemcpyHostToDevice));
    launch_argmax(x, n, out, work, nullptr);
    launch_argmax(x, n, out, work, nullptr);  // (a second launch on the same work area)
    BITNET_CUDA_CHECK(cudaMemcpy(&answer, out, sizeof(int), cudaMemcpyDeviceToHost));
    BITNET_CUDA_CHECK(cudaFree(x));
    BITNET_CUDA_CHECK(cudaFree(out));
    BITNET_CUDA_CHECK(cudaFree(work));
    return answer;
}

std::vector<std::vector<std::pair<float, std::int32_t>>> device_top_k(
    const std::vector<std::vector<float>>& rows, const std::vector<int>& ks,
    const std::vector<std::vector<int>>& ids, const std::vector<float>& penalties) {
    const int count = static_cast<int>(rows.size()), n = static_cast<int>(rows[0].size());
    std::vector<float> x;
    std::vector<int> offsets = {0}, all_ids;
    for (int r = 0; r < count; ++r) {
        x.insert(x.end(), rows[r].begin(), rows[r].end());
        all_ids.insert(all_ids.end(), ids[r].begin(), ids[r].end());
        offsets.push_back(static_cast<int>(all_ids.size()));
    }
    all_ids.push_back(0);  // (never empty)
    auto upload = [](const auto& host, const char* what) {
        const std::size_t bytes = sizeof(host[0]) * host.size();
        void* device = device_alloc(std::max<std::size_t>(bytes, 4), what);
        BITNET_CUDA_CHECK(cudaMemcpy(device, host.data(), bytes, cudaMemcpyHostToDevice));
        return device;
    };
    auto* d_x = static_cast<float*>(upload(x, "top-k input"));
    auto* d_ks = static_cast<int*>(upload(ks, "top-k sizes"));
    auto* d_offsets = static_cast<int*>(upload(offsets, "top-k id offsets"));
    auto* d_ids = static_cast<int*>(upload(all_ids, "top-k ids"));
    auto* d_penalties = static_cast<float*>(upload(penalties, "top-k penalties"));
    std::vector<int> got(static_cast<std::size_t>(count) * kTopKAnswerInts, 0);
    auto* out = static_cast<int*>(upload(got, "top-k answer"));  // (zeroed: all is copied back)
    launch_penalize(d_x, n, count, d_offsets, d_ids, d_penalties, nullptr);
    launch_top_k(d_x, n, count, d_ks, out, nullptr);
    BITNET_CUDA_CHECK(
        cudaMemcpy(got.data(), out, sizeof(int) * got.size(), cudaMemcpyDeviceToHost));
    for (void* p :
         {static_cast<void*>(d_x), static_cast<void*>(d_ks), static_cast<void*>(d_offsets),
          static_cast<void*>(d_ids), static_cast<void*>(d_penalties), static_cast<void*>(out)})
        BITNET_CUDA_CHECK(cudaFree(p));
    std::vector<std::vector<std::pair<float, std::int32_t>>> result(rows.size());
    for (int r = 0; r < count; ++r) {
        const int* answer = got.data() + static_cast<std::size_t>(r) * kTopKAnswerInts;
        for (int i = 0; i < answer[0]; ++i) {
            float v = 0;
            std::memcpy(&v, &answer[1 + 2 * i], sizeof(v));
            result[r].emplace_back(v, answer[2 + 2 * i]);
        }
    }
    return result;
}

}  // namespace bitnet::kernels::cuda

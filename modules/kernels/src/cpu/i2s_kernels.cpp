#include "i2s_kernels.hpp"
#include "amx_kernels.hpp"
#include "prefetch.hpp"

#include "avx512_intrinsics.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/kernels/ops.hpp"

namespace bitnet::kernels::detail {
namespace {

constexpr std::int64_t kBlock = 128;      // elements per I2_S block
constexpr std::int64_t kBlockBytes = 32;  // bytes per block
constexpr std::int64_t kTokenGroup = 8;   // tokens sharing one unpacked weight vector

// Scalar fallback (any x86-64): same arithmetic as the reference.
void dot_generic(const I2sProblem& p) {
    const std::int64_t row_bytes = p.cols / 4;
    for (std::int64_t r = 0; r < p.n_rows; ++r) {
        const std::uint8_t* w = p.weights + r * row_bytes;
        for (std::int64_t t = 0; t < p.n_tokens; ++t) {
            const std::int8_t* q = p.q + t * p.cols;
            std::int32_t sum = 0;
            for (std::int64_t b = 0; b < p.cols / kBlock; ++b) {
                const std::uint8_t* wb = w + b * kBlockBytes;
                const std::int8_t* qb = q + b * kBlock;
                for (int j = 0; j < 32; ++j)
                    sum += (wb[j] >> 6) * qb[j] + ((wb[j] >> 4) & 3) * qb[j + 32] +
                           ((wb[j] >> 2) & 3) * qb[j + 64] + (wb[j] & 3) * qb[j + 96];
            }
            p.out[t * p.out_stride + r] = sum;
        }
    }
}

// AVX2: per 128-element block, 32 weight bytes unpack into 4 vectors of 32 codes (elements
// j, j+32, j+64, j+96 live in one byte); maddubs multiplies codes (u8) with activations (s8)
// and adds pairs into int16 (|4 x 508| < 2^15, no saturation); madd with ones widens to int32.
// NT tokens share each unpacked block; NT is a template parameter so the accumulators stay in
// registers.
__attribute__((target("avx2"))) inline std::int32_t horizontal_sum_avx2(__m256i v) {
    const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i s2 = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 1)));
}

template <int NT>
__attribute__((target("avx2,fma"))) void row_avx2(const std::uint8_t* w, const I2sProblem& p,
                                                  std::int64_t t0, std::int64_t r) {
    const __m256i mask = _mm256_set1_epi8(3);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_si256();
    const std::int8_t* q0 = p.q + t0 * p.cols;
    for (std::int64_t b = 0; b < p.cols / kBlock; ++b) {
        // Decode streams the weights once: ask for lines ahead (see kPrefetchBytes).
        if (NT == 1 && b % 2 == 0)
            _mm_prefetch(reinterpret_cast<const char*>(w + b * kBlockBytes) + kPrefetchBytes,
                         _MM_HINT_T0);
        const __m256i packed =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * kBlockBytes));
        const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(packed, 6), mask);
        const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(packed, 4), mask);
        const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(packed, 2), mask);
        const __m256i c3 = _mm256_and_si256(packed, mask);
        for (int t = 0; t < NT; ++t) {
            const std::int8_t* q = q0 + t * p.cols + b * kBlock;
            __m256i s =
                _mm256_maddubs_epi16(c0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
            s = _mm256_add_epi16(
                s, _mm256_maddubs_epi16(
                       c1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32))));
            s = _mm256_add_epi16(
                s, _mm256_maddubs_epi16(
                       c2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64))));
            s = _mm256_add_epi16(
                s, _mm256_maddubs_epi16(
                       c3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 96))));
            acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(s, ones));
        }
    }
    for (int t = 0; t < NT; ++t) p.out[(t0 + t) * p.out_stride + r] = horizontal_sum_avx2(acc[t]);
}

// The pair kernels' look-ahead: the lines kPrefetchBytes past byte `at` of rows a and b.
inline void prefetch_rows(const std::uint8_t* wa, const std::uint8_t* wb, std::int64_t at) {
    _mm_prefetch(reinterpret_cast<const char*>(wa + at) + kPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(wb + at) + kPrefetchBytes, _MM_HINT_T0);
}

// Decode, two rows at once: the row kernel's operations for rows a and b (exact integers), each
// activation vector loaded once for both. The rows are half a task apart (dot_avx2): two streams
// of weights per thread keep more lines in flight than one — on the Zen 3 VM the ternary products
// of 30 layers streamed 23.7 GB/s instead of 20.3 (in-process alternation).
__attribute__((target("avx2,fma"))) void row_pair_avx2(const std::uint8_t* wa,
                                                       const std::uint8_t* wb, const std::int8_t* q,
                                                       std::int64_t blocks, std::int32_t* ya,
                                                       std::int32_t* yb) {
    const __m256i mask = _mm256_set1_epi8(3);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
    for (std::int64_t b = 0; b < blocks; ++b) {
        if (b % 2 == 0) prefetch_rows(wa, wb, b * kBlockBytes);
        const __m256i pa =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wa + b * kBlockBytes));
        const __m256i pb =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + b * kBlockBytes));
        __m256i sa = _mm256_setzero_si256(), sb = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            const int shift = 6 - 2 * k;
            const __m256i x =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + b * kBlock + 32 * k));
            sa = _mm256_add_epi16(
                sa, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(pa, shift), mask), x));
            sb = _mm256_add_epi16(
                sb, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(pb, shift), mask), x));
        }
        acc_a = _mm256_add_epi32(acc_a, _mm256_madd_epi16(sa, ones));
        acc_b = _mm256_add_epi32(acc_b, _mm256_madd_epi16(sb, ones));
    }
    *ya = horizontal_sum_avx2(acc_a);
    *yb = horizontal_sum_avx2(acc_b);
}

// Decode (one token): rows r and r + half of the range by `pair` (two weight streams per thread),
// an odd last row by the one-token row kernel `one`.
template <class Pair, class One>
void decode_in_row_pairs(const I2sProblem& p, Pair pair, One one) {
    const std::int64_t half = p.n_rows / 2, row_bytes = p.cols / 4;
    for (std::int64_t r = 0; r < half; ++r)
        pair(p.weights + r * row_bytes, p.weights + (r + half) * row_bytes, p.q, p.cols / kBlock,
             p.out + r, p.out + r + half);
    if (p.n_rows % 2 != 0) one(p.weights + (p.n_rows - 1) * row_bytes, p, 0, p.n_rows - 1);
}

// Runs `Row<NT>` over the problem: token groups of 8 (then the remainder) in the outer loop and
// the rows of the range inside, so one group's activations stay in L1 while the range's rows
// (a few kB of weights, also L1-resident) pass by — a tiled GEMM for prefill, a GEMV for decode.
template <template <int> class Row>
void for_token_groups(const I2sProblem& p) {
    const std::int64_t row_bytes = p.cols / 4;
    auto rows = [&](auto run, std::int64_t t0) {
        for (std::int64_t r = 0; r < p.n_rows; ++r) run(p.weights + r * row_bytes, p, t0, r);
    };
    std::int64_t t0 = 0;
    for (; t0 + kTokenGroup <= p.n_tokens; t0 += kTokenGroup) rows(Row<kTokenGroup>::run, t0);
    switch (p.n_tokens - t0) {
        case 1:
            rows(Row<1>::run, t0);
            break;
        case 2:
            rows(Row<2>::run, t0);
            break;
        case 3:
            rows(Row<3>::run, t0);
            break;
        case 4:
            rows(Row<4>::run, t0);
            break;
        case 5:
            rows(Row<5>::run, t0);
            break;
        case 6:
            rows(Row<6>::run, t0);
            break;
        case 7:
            rows(Row<7>::run, t0);
            break;
        default:
            break;
    }
}

template <int NT>
struct Avx2Row {
    static void run(const std::uint8_t* w, const I2sProblem& p, std::int64_t t0, std::int64_t r) {
        row_avx2<NT>(w, p, t0, r);
    }
};

// Prefill micro-kernel for AVX2: 2 rows x 4 tokens. Each activation vector loaded serves both
// rows and each unpacked code vector 4 tokens: 24 loads per block for 32 maddubs, against 33 in
// the 1 x 8 row kernel, whose loads were its limit (llvm-mca: 32.5 cycles per block on Zen 3).
// The maddubs results add up in int16 for kFlushBlocks blocks before one widening per
// accumulator (the row kernel widens every block; 8 int32 accumulators would not fit in 16
// registers next to the codes). Bounds: |maddubs| <= 2 * 3 * 128 = 768 for any 2-bit code and
// int8 activation, 4 per block: 10 blocks stay below 2^15.
// Measured on the Zen 3 VM (1 thread, 256 x 2560, 64 tokens): 101 GMAC/s against 92 for the row
// kernel, near this method's limit on that core (~1.45 maddubs + add pairs per cycle). The same
// step in assembly, without GCC's accumulator spills, was no faster.
constexpr int kAvx2TileRows = 2, kAvx2TileTokens = 4;
constexpr std::int64_t kFlushBlocks = 10;

__attribute__((target("avx2,fma"))) void tile_avx2(const I2sProblem& p, std::int64_t t0,
                                                   std::int64_t r0) {
    const __m256i mask = _mm256_set1_epi8(3);
    const __m256i ones = _mm256_set1_epi16(1);
    const std::int64_t row_bytes = p.cols / 4, blocks = p.cols / kBlock;
    const std::uint8_t* w0 = p.weights + r0 * row_bytes;
    const std::uint8_t* w1 = w0 + row_bytes;
    const std::int8_t* q0 = p.q + t0 * p.cols;
    alignas(32) std::int32_t sums[kAvx2TileRows * kAvx2TileTokens][8] = {};
    for (std::int64_t b0 = 0; b0 < blocks; b0 += kFlushBlocks) {
        const std::int64_t b1 = std::min(blocks, b0 + kFlushBlocks);
        // acc[t]: row r0, token t0 + t; acc[4 + t]: row r0 + 1.
        __m256i acc[kAvx2TileRows * kAvx2TileTokens];
        for (__m256i& a : acc) a = _mm256_setzero_si256();
        for (std::int64_t b = b0; b < b1; ++b) {
            const auto* packed0 = reinterpret_cast<const __m256i*>(w0 + b * kBlockBytes);
            const auto* packed1 = reinterpret_cast<const __m256i*>(w1 + b * kBlockBytes);
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                const int shift = 6 - 2 * k;
                // The packed bytes are loaded again for each k (L1 hits): registers are short.
                const __m256i c0 =
                    _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256(packed0), shift), mask);
                const __m256i c1 =
                    _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256(packed1), shift), mask);
#pragma GCC unroll 4
                for (int t = 0; t < kAvx2TileTokens; ++t) {
                    __m256i a = _mm256_loadu_si256(
                        reinterpret_cast<const __m256i*>(q0 + t * p.cols + b * kBlock + k * 32));
                    asm("" : "+x"(a));  // one load for both rows (GCC would fold it twice)
                    acc[t] = _mm256_add_epi16(acc[t], _mm256_maddubs_epi16(c0, a));
                    acc[kAvx2TileTokens + t] =
                        _mm256_add_epi16(acc[kAvx2TileTokens + t], _mm256_maddubs_epi16(c1, a));
                    // Keeps the additions in this order: GCC otherwise turns the chains into
                    // trees of all the products at once and spills them.
                    asm("" : "+x"(acc[t]), "+x"(acc[kAvx2TileTokens + t]));
                }
            }
        }
        for (int i = 0; i < kAvx2TileRows * kAvx2TileTokens; ++i) {
            auto* total = reinterpret_cast<__m256i*>(sums[i]);
            _mm256_store_si256(
                total, _mm256_add_epi32(_mm256_load_si256(total), _mm256_madd_epi16(acc[i], ones)));
        }
    }
    for (int i = 0; i < kAvx2TileRows * kAvx2TileTokens; ++i) {
        std::int32_t total = 0;
        for (std::int32_t v : sums[i]) total += v;
        const std::int64_t row = r0 + i / kAvx2TileTokens, token = t0 + i % kAvx2TileTokens;
        p.out[token * p.out_stride + row] = total;
    }
}

// Runs Row<NT> (the AVX2 row kernels) for one token group over rows [r_begin, r_end).
template <int NT>
void avx2_rows_of_group(const I2sProblem& p, std::int64_t t0, std::int64_t r_begin,
                        std::int64_t r_end) {
    const std::int64_t row_bytes = p.cols / 4;
    for (std::int64_t r = r_begin; r < r_end; ++r)
        Avx2Row<NT>::run(p.weights + r * row_bytes, p, t0, r);
}

// Decode: the row kernel. Several tokens: groups of 4 tokens (their activations stay in L1) over
// the rows in pairs; an odd last row and the last 1-3 tokens by the row kernels.
void dot_avx2(const I2sProblem& p) {
    if (p.n_tokens == 1) {
        decode_in_row_pairs(p, row_pair_avx2, row_avx2<1>);
        return;
    }
    if (p.n_tokens < kAvx2TileTokens) {
        for_token_groups<Avx2Row>(p);
        return;
    }
    const std::int64_t full_tokens = p.n_tokens / kAvx2TileTokens * kAvx2TileTokens;
    const std::int64_t row_pairs_end = p.n_rows / kAvx2TileRows * kAvx2TileRows;
    for (std::int64_t t0 = 0; t0 < full_tokens; t0 += kAvx2TileTokens) {
        for (std::int64_t r = 0; r < row_pairs_end; r += kAvx2TileRows) tile_avx2(p, t0, r);
        avx2_rows_of_group<kAvx2TileTokens>(p, t0, row_pairs_end, p.n_rows);
    }
    switch (p.n_tokens - full_tokens) {
        case 1:
            avx2_rows_of_group<1>(p, full_tokens, 0, p.n_rows);
            break;
        case 2:
            avx2_rows_of_group<2>(p, full_tokens, 0, p.n_rows);
            break;
        case 3:
            avx2_rows_of_group<3>(p, full_tokens, 0, p.n_rows);
            break;
        default:
            break;
    }
}

template <int NT>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void row_vnni(const std::uint8_t* w,
                                                                              const I2sProblem& p,
                                                                              std::int64_t t0,
                                                                              std::int64_t r) {
    const std::int64_t blocks = p.cols / kBlock, pairs = blocks / 2;
    const __m512i mask = _mm512_set1_epi8(3);
    __m512i acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_si512();
    // Decode: four accumulators, one per unpacked vector, added at the end (integers: any order).
    // One chain waited on vpdpbusd's latency four times per 64 weight bytes: ~8.5 GB/s per
    // thread on the Xeon host, below its memory; the weights are also asked for ahead, as the
    // AVX2 row kernel does.
    __m512i chains[3] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    const std::int8_t* q0 = p.q + t0 * p.cols;
    for (std::int64_t pr = 0; pr < pairs; ++pr) {
        if (NT == 1)
            _mm_prefetch(reinterpret_cast<const char*>(w + pr * 2 * kBlockBytes) + kPrefetchBytes,
                         _MM_HINT_T0);
        const __m512i packed = _mm512_loadu_si512(w + pr * 2 * kBlockBytes);
        const __m512i c0 = _mm512_and_si512(_mm512_srli_epi16(packed, 6), mask);
        const __m512i c1 = _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask);
        const __m512i c2 = _mm512_and_si512(_mm512_srli_epi16(packed, 2), mask);
        const __m512i c3 = _mm512_and_si512(packed, mask);
        if constexpr (NT == 1) {
            const std::int8_t* q = q0 + pr * 2 * kBlock;
            acc[0] = _mm512_dpbusd_epi32(acc[0], c0, _mm512_loadu_si512(q));
            chains[0] = _mm512_dpbusd_epi32(chains[0], c1, _mm512_loadu_si512(q + 64));
            chains[1] = _mm512_dpbusd_epi32(chains[1], c2, _mm512_loadu_si512(q + 128));
            chains[2] = _mm512_dpbusd_epi32(chains[2], c3, _mm512_loadu_si512(q + 192));
            continue;
        }
        for (int t = 0; t < NT; ++t) {
            const std::int8_t* q = q0 + t * p.cols + pr * 2 * kBlock;
            acc[t] = _mm512_dpbusd_epi32(acc[t], c0, _mm512_loadu_si512(q));
            acc[t] = _mm512_dpbusd_epi32(acc[t], c1, _mm512_loadu_si512(q + 64));
            acc[t] = _mm512_dpbusd_epi32(acc[t], c2, _mm512_loadu_si512(q + 128));
            acc[t] = _mm512_dpbusd_epi32(acc[t], c3, _mm512_loadu_si512(q + 192));
        }
    }
    if constexpr (NT == 1)
        acc[0] = _mm512_add_epi32(_mm512_add_epi32(acc[0], chains[0]),
                                  _mm512_add_epi32(chains[1], chains[2]));
    std::int32_t tail[NT] = {};
    if (blocks % 2 == 1) {
        // An odd last block: 256-bit VNNI on the unpermuted tail.
        const __m256i mask256 = _mm256_set1_epi8(3);
        const std::int64_t b = blocks - 1;
        const __m256i packed =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * kBlockBytes));
        const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(packed, 6), mask256);
        const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(packed, 4), mask256);
        const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(packed, 2), mask256);
        const __m256i c3 = _mm256_and_si256(packed, mask256);
        for (int t = 0; t < NT; ++t) {
            const std::int8_t* q = q0 + t * p.cols + b * kBlock;
            __m256i a = _mm256_setzero_si256();
            a = _mm256_dpbusd_epi32(a, c0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
            a = _mm256_dpbusd_epi32(a, c1,
                                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32)));
            a = _mm256_dpbusd_epi32(a, c2,
                                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64)));
            a = _mm256_dpbusd_epi32(a, c3,
                                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 96)));
            const __m128i s =
                _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
            const __m128i s2 = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
            tail[t] = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 1)));
        }
    }
    for (int t = 0; t < NT; ++t) {
        // A plain horizontal sum (GCC 12 warns falsely inside _mm512_reduce_add_epi32).
        alignas(64) std::int32_t lanes[16];
        _mm512_store_si512(lanes, acc[t]);
        std::int32_t sum = tail[t];
        for (std::int32_t v : lanes) sum += v;
        p.out[(t0 + t) * p.out_stride + r] = sum;
    }
}

// Decode, two rows at once (as row_pair_avx2: two weight streams per thread), each with the row
// kernel's four accumulator chains; an even number of blocks (the activations are arranged in
// block pairs).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void row_pair_vnni(
    const std::uint8_t* wa, const std::uint8_t* wb, const std::int8_t* q, std::int64_t blocks,
    std::int32_t* ya, std::int32_t* yb) {
    const __m512i mask = _mm512_set1_epi8(3);
    __m512i a[4], b[4];
    for (int k = 0; k < 4; ++k) a[k] = b[k] = _mm512_setzero_si512();
    for (std::int64_t pr = 0; pr < blocks / 2; ++pr) {
        prefetch_rows(wa, wb, pr * 2 * kBlockBytes);
        const __m512i pa = _mm512_loadu_si512(wa + pr * 2 * kBlockBytes);
        const __m512i pb = _mm512_loadu_si512(wb + pr * 2 * kBlockBytes);
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            const int shift = 6 - 2 * k;
            const __m512i x = _mm512_loadu_si512(q + pr * 2 * kBlock + 64 * k);
            a[k] =
                _mm512_dpbusd_epi32(a[k], _mm512_and_si512(_mm512_srli_epi16(pa, shift), mask), x);
            b[k] =
                _mm512_dpbusd_epi32(b[k], _mm512_and_si512(_mm512_srli_epi16(pb, shift), mask), x);
        }
    }
    alignas(64) std::int32_t lanes[2][16];
    _mm512_store_si512(
        lanes[0], _mm512_add_epi32(_mm512_add_epi32(a[0], a[1]), _mm512_add_epi32(a[2], a[3])));
    _mm512_store_si512(
        lanes[1], _mm512_add_epi32(_mm512_add_epi32(b[0], b[1]), _mm512_add_epi32(b[2], b[3])));
    std::int32_t sum_a = 0, sum_b = 0;
    for (int l = 0; l < 16; ++l) {
        sum_a += lanes[0][l];
        sum_b += lanes[1][l];
    }
    *ya = sum_a;
    *yb = sum_b;
}

template <int NT>
struct VnniRow {
    static void run(const std::uint8_t* w, const I2sProblem& p, std::int64_t t0, std::int64_t r) {
        row_vnni<NT>(w, p, t0, r);
    }
};

// Decode on 256-bit AVX-512 VNNI with GFNI (I2sKernel::Vnni256; the activations in their plain
// order, as for AVX2): vpdpbusd multiplies 32 codes by 32 activations and adds groups of 4 into
// int32 lanes — one instruction for AVX2's maddubs, add and madd — and one GF(2) affine byte
// transform (vgf2p8affineqb) takes a byte's 2-bit field to its low bits, where AVX2 shifts and
// masks. On 256-bit vectors: Zen 4 runs a 512-bit operation as two halves, and the 512-bit
// decode kernel (row_pair_vnni) streamed slower than AVX2 there. Zen 4 VM, 1 thread, 2b4t rows
// in L2 (a stand-alone harness, same loop as row_pair_avx2): maddubs 23.8 GB/s, vpdpbusd with
// shifts and masks 26.6, with GFNI 27.9.
//
// The affine matrix for code vector k (AVX2's (packed >> (6 - 2k)) & 3): result bit i is the
// parity of the byte AND matrix byte 7 - i, so bytes 7 and 6 pick bits 6 - 2k and 7 - 2k.
constexpr long long field_matrix(int k) {
    const int s = 6 - 2 * k;
    return static_cast<long long>((1ull << s) << 56 | (1ull << (s + 1)) << 48);
}

// Rows a and b (two weight streams, as row_pair_avx2), four accumulator chains each (one per
// code vector: vpdpbusd's latency would otherwise bound a chain); exact integers in any order.
__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni,gfni"))) void row_pair_vnni256(
    const std::uint8_t* wa, const std::uint8_t* wb, const std::int8_t* q, std::int64_t blocks,
    std::int32_t* ya, std::int32_t* yb) {
    const __m256i field[4] = {
        _mm256_set1_epi64x(field_matrix(0)), _mm256_set1_epi64x(field_matrix(1)),
        _mm256_set1_epi64x(field_matrix(2)), _mm256_set1_epi64x(field_matrix(3))};
    __m256i a[4], b[4];
    for (int k = 0; k < 4; ++k) a[k] = b[k] = _mm256_setzero_si256();
    for (std::int64_t bl = 0; bl < blocks; ++bl) {
        if (bl % 2 == 0) prefetch_rows(wa, wb, bl * kBlockBytes);
        const __m256i pa =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wa + bl * kBlockBytes));
        const __m256i pb =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + bl * kBlockBytes));
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            const __m256i x =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + bl * kBlock + 32 * k));
            a[k] = _mm256_dpbusd_epi32(a[k], _mm256_gf2p8affine_epi64_epi8(pa, field[k], 0), x);
            b[k] = _mm256_dpbusd_epi32(b[k], _mm256_gf2p8affine_epi64_epi8(pb, field[k], 0), x);
        }
    }
    *ya = horizontal_sum_avx2(
        _mm256_add_epi32(_mm256_add_epi32(a[0], a[1]), _mm256_add_epi32(a[2], a[3])));
    *yb = horizontal_sum_avx2(
        _mm256_add_epi32(_mm256_add_epi32(b[0], b[1]), _mm256_add_epi32(b[2], b[3])));
}

// One row (an odd range's last): the pair kernel with row b = row a, b's result dropped.
void row_vnni256(const std::uint8_t* w, const I2sProblem& p, std::int64_t t0, std::int64_t r) {
    std::int32_t unused = 0;
    row_pair_vnni256(w, w, p.q + t0 * p.cols, p.cols / kBlock, p.out + t0 * p.out_stride + r,
                     &unused);
}

void dot_vnni256(const I2sProblem& p) {
    if (p.n_tokens == 1) {
        decode_in_row_pairs(p, row_pair_vnni256, row_vnni256);
        return;
    }
    dot_avx2(p);
}

// AVX-512 VNNI: 64 weight bytes (two blocks) unpack into 4 vectors of 64 codes; vpdpbusd
// multiplies u8 codes with s8 activations and accumulates groups of 4 into int32 directly.
// Activations are pre-arranged (i2s_prepare_activations) so vector X of a block pair holds
// elements X*32..X*32+31 of the first block, then of the second.
// Sum of the 16 lanes.
__attribute__((target("avx512f,avx512vl"))) inline std::int32_t lane_sum(__m512i v) {
    const __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    x = _mm_add_epi32(x, _mm_unpackhi_epi64(x, x));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 1));
    return _mm_cvtsi128_si32(x);
}

// Prefill micro-kernel: 4 rows x 4 tokens. Per 64-column slice each unpacked code vector is
// used for 4 tokens and each activation vector for 4 rows (16 vpdpbusd per 4 unpacks and 4
// activation loads; the row kernel above issues one load per vpdpbusd). Needs an even number
// of blocks (the activation layout pairs them).
constexpr int kTileRows = 4, kTileTokens = 4;
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void tile_vnni(const I2sProblem& p,
                                                                               std::int64_t t0,
                                                                               std::int64_t r0) {
    const std::int64_t row_bytes = p.cols / 4, pairs = p.cols / (2 * kBlock);
    const __m512i mask = _mm512_set1_epi8(3);
    __m512i acc[kTileRows][kTileTokens];
    for (auto& row : acc)
        for (auto& a : row) a = _mm512_setzero_si512();
    const std::uint8_t* w = p.weights + r0 * row_bytes;
    const std::int8_t* q0 = p.q + t0 * p.cols;
    for (std::int64_t pr = 0; pr < pairs; ++pr) {
        __m512i packed[kTileRows];
        for (int i = 0; i < kTileRows; ++i)
            packed[i] = _mm512_loadu_si512(w + i * row_bytes + pr * 2 * kBlockBytes);
        for (int k = 0; k < 4; ++k) {
            __m512i codes[kTileRows];
            for (int i = 0; i < kTileRows; ++i)
                codes[i] = _mm512_and_si512(_mm512_srli_epi16(packed[i], 6 - 2 * k), mask);
            for (int t = 0; t < kTileTokens; ++t) {
                const __m512i a = _mm512_loadu_si512(q0 + t * p.cols + pr * 2 * kBlock + k * 64);
                for (int i = 0; i < kTileRows; ++i)
                    acc[i][t] = _mm512_dpbusd_epi32(acc[i][t], codes[i], a);
            }
        }
    }
    for (int t = 0; t < kTileTokens; ++t)
        for (int i = 0; i < kTileRows; ++i)
            p.out[(t0 + t) * p.out_stride + r0 + i] = lane_sum(acc[i][t]);
}

// Runs Row<NT> for one token group over rows [r_begin, r_end).
template <int NT>
void rows_of_group(const I2sProblem& p, std::int64_t t0, std::int64_t r_begin, std::int64_t r_end) {
    const std::int64_t row_bytes = p.cols / 4;
    for (std::int64_t r = r_begin; r < r_end; ++r)
        row_vnni<NT>(p.weights + r * row_bytes, p, t0, r);
}

// Prefill: blocks of kRowBlock rows (their weights stay in L2) x groups of 4 tokens (their
// activations stay in L1), 4x4 tiles inside; ragged rows and tokens by the row kernel.
void dot_vnni_tiled(const I2sProblem& p) {
    constexpr std::int64_t kRowBlock = 64;
    const std::int64_t full_tokens = p.n_tokens / kTileTokens * kTileTokens;
    for (std::int64_t rb = 0; rb < p.n_rows; rb += kRowBlock) {
        const std::int64_t r_end = std::min(rb + kRowBlock, p.n_rows);
        const std::int64_t r_tiles = rb + (r_end - rb) / kTileRows * kTileRows;
        for (std::int64_t t0 = 0; t0 < full_tokens; t0 += kTileTokens) {
            for (std::int64_t r = rb; r < r_tiles; r += kTileRows) tile_vnni(p, t0, r);
            rows_of_group<kTileTokens>(p, t0, r_tiles, r_end);
        }
        switch (p.n_tokens - full_tokens) {
            case 1:
                rows_of_group<1>(p, full_tokens, rb, r_end);
                break;
            case 2:
                rows_of_group<2>(p, full_tokens, rb, r_end);
                break;
            case 3:
                rows_of_group<3>(p, full_tokens, rb, r_end);
                break;
            default:
                break;
        }
    }
}

void dot_vnni(const I2sProblem& p) {
    if (p.n_tokens == 1 && (p.cols / kBlock) % 2 == 0) {
        decode_in_row_pairs(p, row_pair_vnni, row_vnni<1>);
        return;
    }
    if (p.n_tokens >= kTileTokens && (p.cols / kBlock) % 2 == 0) {
        dot_vnni_tiled(p);
        return;
    }
    for_token_groups<VnniRow>(p);
}

}  // namespace

namespace {

// Times one kernel on a small 2B4T-like problem with `tokens` activation rows (best of a few).
double time_kernel(I2sKernel kernel, std::int64_t tokens) {
    constexpr std::int64_t rows = 256, cols = 2560;
    static std::vector<std::uint8_t> weights(rows * cols / 4, 0x96);
    static std::vector<std::int8_t> q(8 * cols, 3);
    std::vector<std::int32_t> out(rows * 8);
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < (tokens == 1 ? 8 : 1); ++i)  // comparable amounts of work
            i2s_dot(kernel, {weights.data(), rows, cols, q.data(), tokens, out.data(), rows});
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
}

I2sKernel measure_best_kernel(std::int64_t tokens) {
    const CpuFeatures& f = cpu_features();
    if (!f.avx2) return I2sKernel::Generic;
    if (!(f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni)) return I2sKernel::Avx2;
    // Both available: 512-bit VNNI is not always faster (clock drops, port limits, its longer
    // horizontal sum per row for one token), so measure; for one token also the 256-bit VNNI
    // kernel where GFNI is there too.
    I2sKernel best = I2sKernel::Avx2;
    double best_time = time_kernel(I2sKernel::Avx2, tokens);
    for (I2sKernel k : {I2sKernel::Avx512Vnni, I2sKernel::Vnni256}) {
        if (k == I2sKernel::Vnni256 && (tokens != 1 || !f.gfni)) continue;
        const double t = time_kernel(k, tokens);
        if (t < best_time) {
            best = k;
            best_time = t;
        }
    }
    return best;
}

}  // namespace

I2sKernel best_i2s_kernel(std::int64_t tokens) {
    static const I2sKernel decode = measure_best_kernel(1);
    static const I2sKernel prefill = measure_best_kernel(8);
    // One tdpbusd does the work of 256 vpdpbusd: no contest from 16 tokens on (the Xeon host of
    // docs/performance.md, session 12: 575 against 266 GMAC/s for 128 tokens on 2 threads).
    if (tokens >= kAmxTokens && cpu_features().amx_int8) return I2sKernel::Amx;
    return tokens == 1 ? decode : prefill;
}

I2sKernel i2s_kernel_for(I2sKernel kernel, std::int64_t n_tokens, std::int64_t cols) {
    if (kernel == I2sKernel::Amx && (n_tokens < kAmxTokens || cols % 256 != 0))
        return I2sKernel::Avx512Vnni;
    return kernel;
}

const char* i2s_kernel_name(I2sKernel kernel) {
    switch (kernel) {
        case I2sKernel::Amx:
            return "i2_s amx (tdpbusd)";
        case I2sKernel::Avx512Vnni:
            return "i2_s avx512-vnni (vpdpbusd)";
        case I2sKernel::Vnni256:
            return "i2_s avx512-vnni 256-bit + gfni (vpdpbusd)";
        case I2sKernel::Avx2:
            return "i2_s avx2 (maddubs)";
        case I2sKernel::Generic:
            return "i2_s scalar";
    }
    return "i2_s";
}

void i2s_prepare_activations(I2sKernel kernel, const std::int8_t* q, std::int64_t cols,
                             std::int8_t* dst) {
    if (kernel != I2sKernel::Avx512Vnni && kernel != I2sKernel::Amx) {
        std::memcpy(dst, q, static_cast<std::size_t>(cols));
        return;
    }
    const std::int64_t blocks = cols / kBlock;
    for (std::int64_t pr = 0; pr < blocks / 2; ++pr) {
        const std::int8_t* a = q + pr * 2 * kBlock;
        const std::int8_t* b = a + kBlock;
        std::int8_t* out = dst + pr * 2 * kBlock;
        for (int x = 0; x < 4; ++x) {
            std::memcpy(out + x * 64, a + x * 32, 32);
            std::memcpy(out + x * 64 + 32, b + x * 32, 32);
        }
    }
    if (blocks % 2 == 1)
        std::memcpy(dst + (blocks - 1) * kBlock, q + (blocks - 1) * kBlock, kBlock);
}

namespace {

// quant::i2s_output of 8 dots.
__attribute__((target("avx2"))) inline __m256 i2s_outputs8(const std::int32_t* d, __m256 sum,
                                                           __m256 a, __m256 weight) {
    const __m256 v = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d)));
    return _mm256_mul_ps(_mm256_div_ps(_mm256_sub_ps(v, sum), a), weight);
}

// _mm256_max_ps(v, 0) is relu_squared_times' `v > 0 ? v : 0` for every input: maxps returns its
// second operand when either is NaN or both are zeros (-0 -> +0).
__attribute__((target("avx2"))) void i2s_relu_squared_outputs_avx2(
    const std::int32_t* gate, const std::int32_t* up, std::int64_t n, quant::ActivationScale act,
    const GateUpScales& scales, float* y) {
    const __m256 sum = _mm256_set1_ps(static_cast<float>(act.sum));
    const __m256 a = _mm256_set1_ps(act.scale), zero = _mm256_setzero_ps();
    const __m256 gw = _mm256_set1_ps(scales.gate_weight), uw = _mm256_set1_ps(scales.up_weight);
    const __m256 gs = _mm256_set1_ps(scales.gate), us = _mm256_set1_ps(scales.up);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = i2s_outputs8(gate + i, sum, a, gw), u = i2s_outputs8(up + i, sum, a, uw);
        if (scales.gate != 1.0f) g = _mm256_mul_ps(g, gs);
        if (scales.up != 1.0f) u = _mm256_mul_ps(u, us);
        const __m256 r = _mm256_max_ps(g, zero);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(r, r), u));
    }
    for (; i < n; ++i) {
        float g = quant::i2s_output(gate[i], act, scales.gate_weight);
        float u = quant::i2s_output(up[i], act, scales.up_weight);
        if (scales.gate != 1.0f) g *= scales.gate;
        if (scales.up != 1.0f) u *= scales.up;
        y[i] = relu_squared_times(g, u);
    }
}

}  // namespace

void i2s_relu_squared_outputs(const std::int32_t* gate, const std::int32_t* up, std::int64_t n,
                              quant::ActivationScale act, const GateUpScales& scales, float* y) {
    static const bool avx2 = cpu_features().avx2;
    if (avx2) {
        i2s_relu_squared_outputs_avx2(gate, up, n, act, scales, y);
        return;
    }
    for (std::int64_t i = 0; i < n; ++i) {
        float g = quant::i2s_output(gate[i], act, scales.gate_weight);
        float u = quant::i2s_output(up[i], act, scales.up_weight);
        if (scales.gate != 1.0f) g *= scales.gate;
        if (scales.up != 1.0f) u *= scales.up;
        y[i] = relu_squared_times(g, u);
    }
}

void i2s_dot(I2sKernel kernel, const I2sProblem& p) {
    switch (kernel) {
        case I2sKernel::Amx:
            i2s_dot_amx(p);
            return;
        case I2sKernel::Avx512Vnni:
            dot_vnni(p);
            return;
        case I2sKernel::Avx2:
            dot_avx2(p);
            return;
        case I2sKernel::Vnni256:
            dot_vnni256(p);
            return;
        case I2sKernel::Generic:
            dot_generic(p);
            return;
    }
}

}  // namespace bitnet::kernels::detail

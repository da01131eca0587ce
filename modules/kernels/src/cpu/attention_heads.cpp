#include "bitnet/kernels/attention_heads.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "avx512_intrinsics.hpp"

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/kernels/ops.hpp"
#include "exp_via_double.hpp"

namespace bitnet::kernels {

namespace {

// Rows this many positions ahead are asked for early: even with a head's positions contiguous
// (the head-major KV cache) the hardware prefetchers alone leave the scores waiting on memory
// (a harness over 2100 positions: 19–25 ms without, 15–16 with).
constexpr std::int64_t kAhead = 8;

__attribute__((target("avx2"))) inline void prefetch_bytes(const std::uint16_t* row,
                                                           std::int64_t halves) {
    for (std::int64_t b = 0; b < halves * 2; b += 64)
        _mm_prefetch(reinterpret_cast<const char*>(row) + b, _MM_HINT_T0);
}

__attribute__((target("avx2,f16c"))) inline __m256 half8(const std::uint16_t* v) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
}

// Lane j of the result is accumulator j's eight lanes summed as dot_f16_f32 sums them,
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): two rounds of pairwise hadds, then the
// halves — eight reductions in seven instructions instead of eight scalar trees.
__attribute__((target("avx2"))) inline __m256 reduce_eight(const __m256* acc) {
    const __m256 a = _mm256_hadd_ps(acc[0], acc[1]), b = _mm256_hadd_ps(acc[2], acc[3]),
                 c = _mm256_hadd_ps(acc[4], acc[5]), d = _mm256_hadd_ps(acc[6], acc[7]);
    const __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    return _mm256_add_ps(_mm256_permute2f128_ps(ab, cd, 0x20),
                         _mm256_permute2f128_ps(ab, cd, 0x31));
}

// scores[p * G + g] = dot_f16_f32(row p, q_g, n) for n a multiple of 8. Eight accumulators in
// flight: 8 / G rows of G heads, each key half converted once for all G heads.
template <int G>
__attribute__((target("avx2,f16c"))) void group_scores(const std::uint16_t* rows,
                                                       std::int64_t stride, std::int64_t count,
                                                       const float* q, std::int64_t n,
                                                       float* scores) {
    constexpr int R = 8 / G;
    std::int64_t p = 0;
    for (; p + R <= count; p += R) {
        for (int r = 0; r < R && p + kAhead + r < count; ++r)
            prefetch_bytes(rows + (p + kAhead + r) * stride, n);
        __m256 acc[8];
        for (__m256& a : acc) a = _mm256_setzero_ps();
        for (std::int64_t i = 0; i < n; i += 8) {
            __m256 k[R];
            for (int r = 0; r < R; ++r) k[r] = half8(rows + (p + r) * stride + i);
            for (int g = 0; g < G; ++g) {
                const __m256 qv = _mm256_loadu_ps(q + g * n + i);
                for (int r = 0; r < R; ++r)
                    acc[r * G + g] = _mm256_add_ps(acc[r * G + g], _mm256_mul_ps(k[r], qv));
            }
        }
        _mm256_storeu_ps(scores + p * G, reduce_eight(acc));
    }
    for (; p < count; ++p) {  // the last rows, one at a time (unused accumulators stay zero)
        __m256 acc[8];
        for (__m256& a : acc) a = _mm256_setzero_ps();
        for (std::int64_t i = 0; i < n; i += 8) {
            const __m256 k = half8(rows + p * stride + i);
            for (int g = 0; g < G; ++g)
                acc[g] = _mm256_add_ps(acc[g], _mm256_mul_ps(k, _mm256_loadu_ps(q + g * n + i)));
        }
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, reduce_eight(acc));
        std::memcpy(scores + p * G, lanes, sizeof(float) * G);
    }
}

// x[p * G + g] = exp(x[p * G + g] - max[g]), softmax()'s exponential (detail::exp_shifted's bits)
// eight values at a time: a vector holds 8 / G positions of all G heads.
template <int G>
__attribute__((target("avx2"))) void group_exp(float* x, std::int64_t count, const float* max) {
    alignas(32) float shift[8];
    for (int j = 0; j < 8; ++j) shift[j] = max[j % G];
    const __m256 s = _mm256_load_ps(shift);
    const std::int64_t n = count * G;
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, detail::exp8_via_double(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
    for (; i < n; ++i) x[i] = detail::exp_via_double(x[i] - max[i % G]);
}

// softmax(scale) of each head's scores (head g at x[p * G + g]), softmax()'s operations in its
// order for every head.
template <int G>
void group_softmax(float* x, std::int64_t count, float scale) {
    float max[G];
    double sum[G];
    std::fill(max, max + G, -INFINITY);
    std::fill(sum, sum + G, 0.0);
    for (std::int64_t p = 0; p < count; ++p)
        for (int g = 0; g < G; ++g) {
            x[p * G + g] *= scale;
            max[g] = std::max(max[g], x[p * G + g]);
        }
    group_exp<G>(x, count, max);
    for (std::int64_t p = 0; p < count; ++p)
        for (int g = 0; g < G; ++g) sum[g] += static_cast<double>(x[p * G + g]);
    float inv[G];
    for (int g = 0; g < G; ++g) inv[g] = static_cast<float>(1.0 / sum[g]);
    for (std::int64_t p = 0; p < count; ++p)
        for (int g = 0; g < G; ++g) x[p * G + g] *= inv[g];
}

// Positions whose value rows group_values keeps in L1 while it makes all its passes over them.
constexpr std::int64_t kValueBlock = 32;

// Lines `pass`, `pass + passes`, ... of a row of `lines` cache lines: the share of the next
// block's rows that each pass over a block asks for.
__attribute__((target("avx2"))) inline void prefetch_share(const std::uint16_t* row,
                                                           std::int64_t pass, std::int64_t passes,
                                                           std::int64_t lines) {
    for (std::int64_t l = pass; l < lines; l += passes)
        _mm_prefetch(reinterpret_cast<const char*>(row) + l * 64, _MM_HINT_T0);
}

// The value sums of rows p0 .. p1 - 1 for dimensions `from` .. n - 1 (what a block's full passes
// left), 8 at a time, added to the partial sums in `out` (group_values' order of additions).
template <int G>
__attribute__((target("avx2,f16c"))) void values_rest(const std::uint16_t* rows,
                                                      std::int64_t stride, std::int64_t p0,
                                                      std::int64_t p1, const float* w,
                                                      std::int64_t n, std::int64_t from,
                                                      float* out) {
    for (std::int64_t i = from; i < n; i += 8)
        for (int g = 0; g < G; ++g) {
            __m256 acc = _mm256_loadu_ps(out + g * n + i);
            for (std::int64_t p = p0; p < p1; ++p)
                acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_broadcast_ss(w + p * G + g),
                                                       half8(rows + p * stride + i)));
            _mm256_storeu_ps(out + g * n + i, acc);
        }
}

// chunk[g * n + i] = sum over p = p0 .. p1 - 1 in order of w[p * G + g] * row p [i], for n a
// multiple of 8: 8 / G vectors of each of the G heads' outputs held in registers over the rows,
// each value half converted once for all G heads. The rows go in blocks of kValueBlock
// positions, every pass over the dimensions made on one block (from L1, the partial sums kept in
// `chunk` in between: floats, so the same bits) before the next, whose lines the passes ask for
// meanwhile (up to row `count`); one pass over all the rows at a time would fetch each line from
// memory in one pass and again in the next.
template <int G>
__attribute__((target("avx2,f16c"))) void group_values_chunk(const std::uint16_t* rows,
                                                             std::int64_t stride, std::int64_t p0,
                                                             std::int64_t p1, std::int64_t count,
                                                             const float* w, std::int64_t n,
                                                             float* chunk) {
    constexpr int V = 8 / G;  // vectors per head and pass
    const std::int64_t passes = n / (8 * V), lines = (n * 2 + 63) / 64;
    std::fill(chunk, chunk + G * n, 0.0f);
    for (std::int64_t b0 = p0; b0 < p1; b0 += kValueBlock) {
        const std::int64_t b1 = std::min(p1, b0 + kValueBlock);
        for (std::int64_t pass = 0; pass < passes; ++pass) {
            const std::int64_t i = pass * 8 * V;
            __m256 acc[G][V];
            for (int g = 0; g < G; ++g)
                for (int j = 0; j < V; ++j) acc[g][j] = _mm256_loadu_ps(chunk + g * n + i + 8 * j);
            for (std::int64_t p = b0; p < b1; ++p) {
                if (p + kValueBlock < count)
                    prefetch_share(rows + (p + kValueBlock) * stride, pass, passes, lines);
                __m256 v[V];
                for (int j = 0; j < V; ++j) v[j] = half8(rows + p * stride + i + 8 * j);
                for (int g = 0; g < G; ++g) {
                    const __m256 wg = _mm256_broadcast_ss(w + p * G + g);
                    for (int j = 0; j < V; ++j)
                        acc[g][j] = _mm256_add_ps(acc[g][j], _mm256_mul_ps(wg, v[j]));
                }
            }
            for (int g = 0; g < G; ++g)
                for (int j = 0; j < V; ++j) _mm256_storeu_ps(chunk + g * n + i + 8 * j, acc[g][j]);
        }
        values_rest<G>(rows, stride, b0, b1, w, n, passes * 8 * V, chunk);
    }
}

// The widest head the grouped value sums take (their chunk sums live on the stack).
constexpr std::int64_t kMaxGroupWidth = 256;

// out = the G heads' value sums in kAttentionValueChunk order (attention_order.hpp): each chunk
// summed by `chunk_sums` (group_values_chunk or its AVX-512 twin), then added to out.
template <int G, typename ChunkSums>
void values_in_chunks(const std::uint16_t* rows, std::int64_t stride, std::int64_t count,
                      const float* w, std::int64_t n, float* out, ChunkSums chunk_sums) {
    alignas(64) float chunk[G * kMaxGroupWidth];
    std::fill(out, out + G * n, 0.0f);
    for (std::int64_t p0 = 0; p0 < count; p0 += kAttentionValueChunk) {
        chunk_sums(rows, stride, p0, std::min<std::int64_t>(count, p0 + kAttentionValueChunk),
                   count, w, n, chunk);
        for (std::int64_t i = 0; i < G * n; ++i) out[i] += chunk[i];
    }
}

template <int G>
void attend_group(const float* q, const std::uint16_t* keys, const std::uint16_t* values,
                  std::int64_t stride, std::int64_t count, std::int64_t n, float scale,
                  float* scores, float* out) {
    group_scores<G>(keys, stride, count, q, n, scores);
    group_softmax<G>(scores, count, scale);
    values_in_chunks<G>(values, stride, count, scores, n, out, group_values_chunk<G>);
}

// AVX-512: the same sums with twice the values per instruction and the same bits. The scores keep
// dot_f16_f32's eight lanes per row by putting two rows' eight halves side by side in one
// register; the value sums have no lanes to keep (each lane is one output), so 16 dimensions go
// in a register. The multiplies and adds stay separate: with AVX-512 the compiler could fuse
// them (one rounding instead of two), so contraction is off here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
#if defined(__clang__)
#define BITNET_NO_FP_CONTRACT _Pragma("clang fp contract(off)")
#else
#define BITNET_NO_FP_CONTRACT
#endif

// [row a's eight halves | row b's], as floats.
__attribute__((target("avx512f,f16c"))) inline __m512 half8_pair(const std::uint16_t* a,
                                                                 const std::uint16_t* b) {
    const __m256i h = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
    return _mm512_cvtph_ps(h);
}

__attribute__((target("avx512f"))) inline __m256 upper_half(__m512 v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

// group_scores with 16 / G rows per step: pairs of rows times G heads in eight accumulators.
template <int G>
__attribute__((target("avx512f,f16c"))) void group_scores_avx512(const std::uint16_t* rows,
                                                                 std::int64_t stride,
                                                                 std::int64_t count, const float* q,
                                                                 std::int64_t n, float* scores) {
    BITNET_NO_FP_CONTRACT
    constexpr int R = 16 / G;
    std::int64_t p = 0;
    for (; p + R <= count; p += R) {
        for (int r = 0; r < R && p + kAhead + r < count; ++r)
            prefetch_bytes(rows + (p + kAhead + r) * stride, n);
        __m512 acc[8];
        for (__m512& a : acc) a = _mm512_setzero_ps();
        for (std::int64_t i = 0; i < n; i += 8) {
            __m512 k[R / 2];
            for (int r = 0; r < R / 2; ++r)
                k[r] = half8_pair(rows + (p + 2 * r) * stride + i,
                                  rows + (p + 2 * r + 1) * stride + i);
            for (int g = 0; g < G; ++g) {
                const __m512 qv = _mm512_castpd_ps(
                    _mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(q + g * n + i))));
                for (int r = 0; r < R / 2; ++r)
                    acc[r * G + g] = _mm512_add_ps(acc[r * G + g], _mm512_mul_ps(k[r], qv));
            }
        }
        __m256 lanes[16];  // accumulator of (row r, head g) at r * G + g
        for (int r = 0; r < R; ++r)
            for (int g = 0; g < G; ++g) {
                const __m512 a = acc[(r / 2) * G + g];
                lanes[r * G + g] = r % 2 == 0 ? _mm512_castps512_ps256(a) : upper_half(a);
            }
        _mm256_storeu_ps(scores + p * G, reduce_eight(lanes));
        _mm256_storeu_ps(scores + p * G + 8, reduce_eight(lanes + 8));
    }
    if (p < count) group_scores<G>(rows + p * stride, stride, count - p, q, n, scores + p * G);
}

// group_values_chunk with 16 dimensions per register: 8 / G registers per head and pass.
template <int G>
__attribute__((target("avx512f,f16c"))) void group_values_chunk_avx512(
    const std::uint16_t* rows, std::int64_t stride, std::int64_t p0, std::int64_t p1,
    std::int64_t count, const float* w, std::int64_t n, float* chunk) {
    BITNET_NO_FP_CONTRACT
    constexpr int V = 8 / G;
    const std::int64_t passes = n / (16 * V), lines = (n * 2 + 63) / 64;
    std::fill(chunk, chunk + G * n, 0.0f);
    for (std::int64_t b0 = p0; b0 < p1; b0 += kValueBlock) {
        const std::int64_t b1 = std::min(p1, b0 + kValueBlock);
        for (std::int64_t pass = 0; pass < passes; ++pass) {
            const std::int64_t i = pass * 16 * V;
            __m512 acc[G][V];
            for (int g = 0; g < G; ++g)
                for (int j = 0; j < V; ++j) acc[g][j] = _mm512_loadu_ps(chunk + g * n + i + 16 * j);
            for (std::int64_t p = b0; p < b1; ++p) {
                if (p + kValueBlock < count)
                    prefetch_share(rows + (p + kValueBlock) * stride, pass, passes, lines);
                __m512 v[V];
                for (int j = 0; j < V; ++j)
                    v[j] = _mm512_cvtph_ps(_mm256_loadu_si256(
                        reinterpret_cast<const __m256i*>(rows + p * stride + i + 16 * j)));
                for (int g = 0; g < G; ++g) {
                    const __m512 wg = _mm512_set1_ps(w[p * G + g]);
                    for (int j = 0; j < V; ++j)
                        acc[g][j] = _mm512_add_ps(acc[g][j], _mm512_mul_ps(wg, v[j]));
                }
            }
            for (int g = 0; g < G; ++g)
                for (int j = 0; j < V; ++j) _mm512_storeu_ps(chunk + g * n + i + 16 * j, acc[g][j]);
        }
        values_rest<G>(rows, stride, b0, b1, w, n, passes * 16 * V, chunk);
    }
}

#undef BITNET_NO_FP_CONTRACT
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

template <int G>
void attend_group_avx512(const float* q, const std::uint16_t* keys, const std::uint16_t* values,
                         std::int64_t stride, std::int64_t count, std::int64_t n, float scale,
                         float* scores, float* out) {
    group_scores_avx512<G>(keys, stride, count, q, n, scores);
    group_softmax<G>(scores, count, scale);
    values_in_chunks<G>(values, stride, count, scores, n, out, group_values_chunk_avx512<G>);
}

bool has_f16c() {
    static const bool ok = cpu_features().avx2 && cpu_features().f16c;
    return ok;
}

bool has_avx512() {
    static const bool ok = has_f16c() && cpu_features().avx512f;
    return ok;
}

}  // namespace

void attention_heads_f16(const float* q, std::int64_t heads, const std::uint16_t* keys,
                         const std::uint16_t* values, std::int64_t stride, std::int64_t count,
                         std::int64_t n, float scale, float* scores, float* out) {
    const bool grouped_width = n % 8 == 0 && n <= kMaxGroupWidth;
    if (has_avx512() && grouped_width) {  // the group sizes of 2B4T's decode and prefill plans
        if (heads == 4)
            return attend_group_avx512<4>(q, keys, values, stride, count, n, scale, scores, out);
        if (heads == 2)
            return attend_group_avx512<2>(q, keys, values, stride, count, n, scale, scores, out);
    }
    if (has_f16c() && grouped_width) {
        switch (heads) {
            case 1:
                return attend_group<1>(q, keys, values, stride, count, n, scale, scores, out);
            case 2:
                return attend_group<2>(q, keys, values, stride, count, n, scale, scores, out);
            case 4:
                return attend_group<4>(q, keys, values, stride, count, n, scale, scores, out);
            case 8:
                return attend_group<8>(q, keys, values, stride, count, n, scale, scores, out);
            default:
                break;
        }
    }
    // Any other shape or CPU: one head at a time with the one-head kernels.
    for (std::int64_t g = 0; g < heads; ++g) {
        float* s = scores + g * count;
        float* o = out + g * n;
        dot_f16_f32_rows(keys, stride, count, q + g * n, n, s);
        softmax(s, count, scale);
        attention_values_f16(o, values, stride, s, count, n);
    }
}

}  // namespace bitnet::kernels

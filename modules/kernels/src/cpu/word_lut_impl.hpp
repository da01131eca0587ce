// The kernels over word_lut.hpp's layout, for a Spec that names the table format:
//   kLookups, kIndexBits    indices per word and their width;
//   kTableBytes             bytes per lookup table of a unit (per token);
//   kFlushUnits             units per int16 accumulator before it is widened (no overflow);
//   table(p)                a lookup table's 32 int16 entries as vpermw reads them;
//   kPrefillTokens          tokens per prefill block (4 groups' shifted words, the block's
//                           accumulators and a table in 32 registers).
// Included (after avx512_intrinsics.hpp) by the .cpp files of the kernels that use it.
#pragma once

#include "prefetch.hpp"
#include "word_lut.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace bitnet::kernels::detail::word_lut {

// How far ahead decode asks for each group's lines. A pass streams 8 groups at once, so 256
// bytes ahead in each keeps 2 kB in flight; 4 kB (the I2_S kernels' distance) in each of 8
// streams is the size of L1 and evicted lines before their use (kernels_bench, a 70 MB matrix,
// 2 threads, TL2: 256 and 512 bytes 1.07-1.27x the I2_S kernel's rate, 1-2 kB 0.8-1.0x).
constexpr int kPrefetchAhead = 256;

template <class Spec>
constexpr std::int64_t unit_table_bytes() {
    return Spec::kLookups * Spec::kTableBytes;
}

// One unit's lookups for 32 rows: `words` indexes the unit's tables, the int16 sums added.
template <class Spec>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i add_unit(
    __m512i acc, __m512i words, const __m512i* tables) {
    for (int k = 0; k < Spec::kLookups; ++k)
        acc = _mm512_add_epi16(acc, _mm512_permutexvar_epi16(
                                        _mm512_srli_epi16(words, k * Spec::kIndexBits), tables[k]));
    return acc;
}

// The int16 sums of 32 rows added into their 32-bit sums.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void widen_into(
    __m512i acc, std::int32_t* sums) {
    const __m512i lo = _mm512_loadu_si512(sums), hi = _mm512_loadu_si512(sums + 16);
    _mm512_storeu_si512(sums,
                        _mm512_add_epi32(lo, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(acc))));
    _mm512_storeu_si512(
        sums + 16, _mm512_add_epi32(hi, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(acc, 1))));
}

// Decode (one token), G groups at once: a unit's tables (a 2560-wide input's are 40-55 kB, past
// L1) are loaded once for G groups' words (64 bytes each), so with G = 8 the tables' lines are
// a fraction of the weights' and leave L1's miss slots to the weight stream. The 32-bit sums
// stay in memory (touched once per kFlushUnits units).
template <class Spec, int G>
__attribute__((target("avx512f,avx512bw"))) void decode(const WordLutWeights& w,
                                                        std::int64_t first_group,
                                                        const std::int8_t* tables,
                                                        std::int32_t (*sums)[kWordLutRows]) {
    const std::uint8_t* base = w.group_words(first_group);
    const std::int64_t group_bytes = w.units * 64;
    for (int g = 0; g < G; ++g) std::fill(sums[g], sums[g] + kWordLutRows, 0);
    for (std::int64_t u0 = 0; u0 < w.units; u0 += Spec::kFlushUnits) {
        __m512i acc[G];
        for (int g = 0; g < G; ++g) acc[g] = _mm512_setzero_si512();
        const std::int64_t u1 = std::min(w.units, u0 + Spec::kFlushUnits);
        for (std::int64_t u = u0; u < u1; ++u) {
            __m512i tab[Spec::kLookups];
            for (int k = 0; k < Spec::kLookups; ++k)
                tab[k] = Spec::table(tables + u * unit_table_bytes<Spec>() + k * Spec::kTableBytes);
            for (int g = 0; g < G; ++g) {
                const std::uint8_t* p = base + g * group_bytes + u * 64;
                _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchAhead, _MM_HINT_T0);
                acc[g] = add_unit<Spec>(acc[g], _mm512_loadu_si512(p), tab);
            }
        }
        for (int g = 0; g < G; ++g) widen_into(acc[g], sums[g]);
    }
}

// NT tokens over G groups (prefill): each unit's table of a token, loaded once (from L2: the
// tokens' tables are 100s of kB), serves G groups, and each group's words serve NT tokens.
// sums[t * G + g] gets token t's sums of group g.
template <class Spec, int NT, int G>
__attribute__((target("avx512f,avx512bw"))) void tokens(const WordLutWeights& w,
                                                        std::int64_t first_group,
                                                        const std::int8_t* tables,
                                                        std::int32_t (*sums)[kWordLutRows]) {
    const std::uint8_t* base = w.group_words(first_group);
    const std::int64_t group_bytes = w.units * 64;
    const std::int64_t token_table_bytes = w.units * unit_table_bytes<Spec>();
    for (int i = 0; i < NT * G; ++i) std::fill(sums[i], sums[i] + kWordLutRows, 0);
    for (std::int64_t u0 = 0; u0 < w.units; u0 += Spec::kFlushUnits) {
        __m512i acc[NT][G];
        for (int t = 0; t < NT; ++t)
            for (int g = 0; g < G; ++g) acc[t][g] = _mm512_setzero_si512();
        const std::int64_t u1 = std::min(w.units, u0 + Spec::kFlushUnits);
        for (std::int64_t u = u0; u < u1; ++u) {
            // Every group's shifted words once, for the NT tokens (NT is chosen so they and the
            // accumulators fit the 32 registers).
            __m512i index[G][Spec::kLookups];
            for (int g = 0; g < G; ++g) {
                const __m512i words = _mm512_loadu_si512(base + g * group_bytes + u * 64);
                for (int k = 0; k < Spec::kLookups; ++k)
                    index[g][k] = _mm512_srli_epi16(words, k * Spec::kIndexBits);
            }
            for (int t = 0; t < NT; ++t) {
                const std::int8_t* tab =
                    tables + t * token_table_bytes + u * unit_table_bytes<Spec>();
                for (int k = 0; k < Spec::kLookups; ++k) {
                    const __m512i table = Spec::table(tab + k * Spec::kTableBytes);
                    for (int g = 0; g < G; ++g)
                        acc[t][g] = _mm512_add_epi16(acc[t][g],
                                                     _mm512_permutexvar_epi16(index[g][k], table));
                }
            }
        }
        for (int t = 0; t < NT; ++t)
            for (int g = 0; g < G; ++g) widen_into(acc[t][g], sums[t * G + g]);
    }
}

// The rows of groups first_group .. + n - 1 that exist, from sums[g][lane].
inline void store_rows(const WordLutWeights& w, std::int64_t first_group, std::int64_t n,
                       const std::int32_t (*sums)[kWordLutRows], std::int32_t* dots) {
    const std::int64_t first_row = first_group * kWordLutRows;
    const std::int64_t end = std::min(w.rows, first_row + n * kWordLutRows);
    for (std::int64_t r = first_row; r < end; ++r)
        dots[r] = sums[(r - first_row) / kWordLutRows][(r - first_row) % kWordLutRows];
}

// decode<Spec, n> and tokens<Spec, t, g> chosen at run time (index n - 1, (t - 1) * 4 + g - 1).
template <class Spec, int... I>
constexpr auto decode_kernels(std::integer_sequence<int, I...>) {
    return std::array{&decode<Spec, I + 1>...};
}
template <class Spec, int... I>
constexpr auto token_kernels(std::integer_sequence<int, I...>) {
    return std::array{&tokens<Spec, I / 4 + 1, I % 4 + 1>...};
}

// dots[t * stride + r] for the rows of groups [first_group, first_group + count) and `n_tokens`
// tokens whose tables follow each other.
template <class Spec>
void dot_groups(const WordLutWeights& w, std::int64_t first_group, std::int64_t count,
                const std::int8_t* tables, std::int64_t n_tokens, std::int32_t* dots,
                std::int64_t stride) {
    const std::int64_t end = first_group + count;
    alignas(64) std::int32_t sums[16][kWordLutRows];
    if (n_tokens == 1) {
        for (std::int64_t g = first_group; g < end; g += kWordLutDecodeGroups) {
            const std::int64_t n = std::min(kWordLutDecodeGroups, end - g);
            decode_kernels<Spec>(std::make_integer_sequence<int, kWordLutDecodeGroups>{})[n - 1](
                w, g, tables, sums);
            store_rows(w, g, n, sums, dots);
        }
        return;
    }
    // Blocks of kPrefillTokens tokens x 4 groups, tokens outermost: the block's tables (a
    // 2560-wide input's: 40-55 kB a token) stay in L2 while the task's groups' words (4-18 kB
    // a group) go by; groups outermost would stream every token's tables once per group.
    constexpr int kTokens = Spec::kPrefillTokens;
    const std::int64_t token_table_bytes = w.units * unit_table_bytes<Spec>();
    for (std::int64_t t0 = 0; t0 < n_tokens; t0 += kTokens) {
        const std::int64_t nt = std::min<std::int64_t>(kTokens, n_tokens - t0);
        for (std::int64_t g = first_group; g < end; g += 4) {
            const std::int64_t ng = std::min<std::int64_t>(4, end - g);
            token_kernels<Spec>(
                std::make_integer_sequence<int, 4 * kTokens>{})[(nt - 1) * 4 + ng - 1](
                w, g, tables + t0 * token_table_bytes, sums);
            for (std::int64_t t = 0; t < nt; ++t)
                store_rows(w, g, ng, &sums[t * ng], dots + (t0 + t) * stride);
        }
    }
}

}  // namespace bitnet::kernels::detail::word_lut

#include "amx_kernels.hpp"

#include <immintrin.h>

#include <cstring>
#include <vector>

namespace bitnet::kernels::detail {
namespace {

// Tile shapes (palette 1, every tile 16 rows of 64 bytes):
//  - code tile (A, unsigned): 16 weight rows x 64 codes of one "chunk" of columns;
//  - activation tile (B, signed): row k4 holds, for each of 16 tokens, the 4 activations of
//    chunk columns 4 k4 .. 4 k4 + 3 (bytes 4 n .. 4 n + 3 for token n);
//  - sum tile (C): 16 weight rows x 16 tokens, int32.
// A chunk is what one AVX-512 unpack step gives: for block pair pr and step x (0..3), the 64
// codes (packed >> (6 - 2x)) & 3 of the pair's 64 packed bytes. The VNNI kernel multiplies the
// same vector with columns pr * 256 + x * 64 .. + 63 of its arranged activations, so chunk
// c = 4 pr + x is columns c * 64 .. c * 64 + 63 of a row in that order.
constexpr std::int64_t kRows = 16;
constexpr std::int64_t kRowBytes = 64;
constexpr std::int64_t kTileBytes = kRows * kRowBytes;
constexpr std::int64_t kChunk = 64;  // columns per tile
constexpr std::int64_t kPair = 256;  // columns per block pair (the unpack's unit)

struct alignas(64) TileConfig {
    std::uint8_t palette = 1;
    std::uint8_t start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};

// Tiles 0-3: sums (row tile i / 2, token group i % 2); 4-5: codes of two row tiles; 6-7:
// activations of two token groups. Tile numbers are part of the instruction, hence macros. Every
// statement clobbers memory: tiles are read and written behind the compiler's back.
#define BITNET_TILE_ZERO(t) __asm__ volatile("tilezero %%tmm" #t ::: "memory")
#define BITNET_TILE_LOAD(t, base) \
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(base), "r"(kRowBytes) : "memory")
#define BITNET_TILE_STORE(t, base) \
    __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(base), "r"(kRowBytes) : "memory")
#define BITNET_TILE_DPBUSD(c, a, b) \
    __asm__ volatile("tdpbusd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::: "memory")

void load_tile_config() {
    TileConfig config;
    for (int t = 0; t < 8; ++t) {
        config.colsb[t] = kRowBytes;
        config.rows[t] = kRows;
    }
    __asm__ volatile("ldtilecfg %0" ::"m"(config) : "memory");
}

void release_tiles() {
    __asm__ volatile("tilerelease" ::: "memory");
}

// Code tiles of the problem's rows, rounded up to whole tiles (zero codes past n_rows): tile
// (rt, c) at (rt * chunks + c) * kTileBytes.
__attribute__((target("avx512f,avx512bw"))) void unpack_codes(const I2sProblem& p,
                                                              std::int64_t row_tiles,
                                                              std::uint8_t* codes) {
    const std::int64_t chunks = p.cols / kChunk, pairs = p.cols / kPair, row_bytes = p.cols / 4;
    const __m512i mask = _mm512_set1_epi8(3);
    for (std::int64_t r = 0; r < row_tiles * kRows; ++r) {
        std::uint8_t* row = codes + (r / kRows) * chunks * kTileBytes + (r % kRows) * kRowBytes;
        if (r >= p.n_rows) {
            for (std::int64_t c = 0; c < chunks; ++c)
                std::memset(row + c * kTileBytes, 0, kRowBytes);
            continue;
        }
        const std::uint8_t* w = p.weights + r * row_bytes;
        for (std::int64_t pr = 0; pr < pairs; ++pr) {
            const __m512i packed = _mm512_loadu_si512(w + pr * (kPair / 4));
            std::uint8_t* to = row + pr * 4 * kTileBytes;
            _mm512_store_si512(to, _mm512_and_si512(_mm512_srli_epi16(packed, 6), mask));
            _mm512_store_si512(to + kTileBytes,
                               _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask));
            _mm512_store_si512(to + 2 * kTileBytes,
                               _mm512_and_si512(_mm512_srli_epi16(packed, 2), mask));
            _mm512_store_si512(to + 3 * kTileBytes, _mm512_and_si512(packed, mask));
        }
    }
}

// Sums of one or two row tiles (codes from `a`, the second row tile's chunks after the first's)
// with one or two token groups (`b`, likewise) over every chunk, stored to sums[i] (16 x 16
// int32, i = 2 * row tile + token group).
template <bool TwoRowTiles, bool TwoGroups>
void multiply_tiles(const std::uint8_t* a, const std::int8_t* b, std::int64_t chunks,
                    std::int32_t (*sums)[kRows * kRows]) {
    BITNET_TILE_ZERO(0);
    BITNET_TILE_ZERO(1);
    BITNET_TILE_ZERO(2);
    BITNET_TILE_ZERO(3);
    for (std::int64_t c = 0; c < chunks; ++c) {
        BITNET_TILE_LOAD(4, a + c * kTileBytes);
        BITNET_TILE_LOAD(6, b + c * kTileBytes);
        BITNET_TILE_DPBUSD(0, 4, 6);
        if constexpr (TwoGroups) {
            BITNET_TILE_LOAD(7, b + (chunks + c) * kTileBytes);
            BITNET_TILE_DPBUSD(1, 4, 7);
        }
        if constexpr (TwoRowTiles) {
            BITNET_TILE_LOAD(5, a + (chunks + c) * kTileBytes);
            BITNET_TILE_DPBUSD(2, 5, 6);
            if constexpr (TwoGroups) BITNET_TILE_DPBUSD(3, 5, 7);
        }
    }
    BITNET_TILE_STORE(0, sums[0]);
    BITNET_TILE_STORE(1, sums[1]);
    BITNET_TILE_STORE(2, sums[2]);
    BITNET_TILE_STORE(3, sums[3]);
}

}  // namespace

std::int64_t amx_activation_bytes(std::int64_t n_tokens, std::int64_t cols) {
    return (n_tokens + kAmxTokens - 1) / kAmxTokens * kAmxTokens * cols;
}

void amx_arrange_activations(const std::int8_t* vnni_rows, std::int64_t n_tokens, std::int64_t cols,
                             std::int64_t group, std::int8_t* tiles) {
    const std::int64_t chunks = cols / kChunk;
    std::int8_t* out = tiles + group * chunks * kTileBytes;
    for (std::int64_t n = 0; n < kAmxTokens; ++n) {
        const std::int64_t t = group * kAmxTokens + n;
        for (std::int64_t c = 0; c < chunks; ++c)
            for (std::int64_t k4 = 0; k4 < kRows; ++k4) {
                std::int8_t* to = out + c * kTileBytes + k4 * kRowBytes + n * 4;
                if (t < n_tokens)
                    std::memcpy(to, vnni_rows + t * cols + c * kChunk + k4 * 4, 4);
                else
                    std::memset(to, 0, 4);
            }
    }
}

void i2s_dot_amx(const I2sProblem& p) {
    const std::int64_t chunks = p.cols / kChunk;
    const std::int64_t row_tiles = (p.n_rows + kRows - 1) / kRows;
    const std::int64_t groups = (p.n_tokens + kAmxTokens - 1) / kAmxTokens;
    // The task's codes, unpacked once and used by every token group (a 32-row task of a
    // 2560-column matrix: 80 kB, in L2).
    thread_local std::vector<std::uint8_t> storage;
    storage.resize(static_cast<std::size_t>(row_tiles * chunks * kTileBytes + 64));
    auto* codes = reinterpret_cast<std::uint8_t*>(
        (reinterpret_cast<std::uintptr_t>(storage.data()) + 63) / 64 * 64);
    unpack_codes(p, row_tiles, codes);
    alignas(64) std::int32_t sums[4][kRows * kRows];
    load_tile_config();
    for (std::int64_t rt = 0; rt < row_tiles; rt += 2) {
        const bool two_rows = rt + 1 < row_tiles;
        const std::uint8_t* a = codes + rt * chunks * kTileBytes;
        for (std::int64_t g = 0; g < groups; g += 2) {
            const bool two_groups = g + 1 < groups;
            const std::int8_t* b = p.q + g * chunks * kTileBytes;
            if (two_rows && two_groups)
                multiply_tiles<true, true>(a, b, chunks, sums);
            else if (two_rows)
                multiply_tiles<true, false>(a, b, chunks, sums);
            else if (two_groups)
                multiply_tiles<false, true>(a, b, chunks, sums);
            else
                multiply_tiles<false, false>(a, b, chunks, sums);
            for (int i = 0; i < 4; ++i)
                for (std::int64_t m = 0; m < kRows; ++m) {
                    const std::int64_t r = (rt + i / 2) * kRows + m;
                    if (r >= p.n_rows) break;
                    for (std::int64_t n = 0; n < kAmxTokens; ++n) {
                        const std::int64_t t = (g + i % 2) * kAmxTokens + n;
                        if (t >= p.n_tokens) break;
                        p.out[t * p.out_stride + r] = sums[i][m * kRows + n];
                    }
                }
        }
    }
    release_tiles();
}

#undef BITNET_TILE_ZERO
#undef BITNET_TILE_LOAD
#undef BITNET_TILE_STORE
#undef BITNET_TILE_DPBUSD

}  // namespace bitnet::kernels::detail

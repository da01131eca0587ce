// The GPU's packed I2_S layout checked on the host (gpu preset only; no GPU needed): the
// tensor-core fragments a warp reads from pack_mma_stacked's words, multiplied as
// mma.m16n8k32 does, must give every row's exact integer dot with every token. Both unpackings
// are emulated: chunk_product's (shift and mask, s8) and chunk_product_in_place's (mask only,
// u8, one accumulator set per k-step scaled back by in_place_dots; ternary_mma_device.cuh); a
// change to the packer or to either unpacking that breaks the fragment order fails here.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "../src/cuda/ternary_mma.hpp"
#include "bitnet/quantization/formats.hpp"

using namespace bitnet;
using namespace bitnet::kernels::cuda;

namespace {

constexpr int kLanes = 32;

// One warp's mma.m16n8k32 with s8 operands, from the PTX ISA's fragment layout: lane 4g + t
// holds A registers a0 (row g, k 4t..4t+3), a1 (row g + 8, same k), a2 (row g, k 16 + 4t..),
// a3 (row g + 8, k 16 + 4t..); B registers b0 (k 4t.., column g), b1 (k 16 + 4t.., column g);
// accumulators d0, d1 (row g, columns 2t, 2t + 1), d2, d3 (row g + 8, same columns).
// `a_unsigned`: A bytes are u8 (mma ... .u8.s8), else s8.
void emulate_mma(int (&d)[kLanes][4], const unsigned (&a)[kLanes][4],
                 const unsigned (&b)[kLanes][2], bool a_unsigned) {
    int A[16][32], B[32][8];
    auto byte = [](unsigned v, int j) {
        return static_cast<int>(static_cast<std::int8_t>(v >> (8 * j)));
    };
    auto a_byte = [&](unsigned v, int j) {
        return a_unsigned ? static_cast<int>((v >> (8 * j)) & 0xffu) : byte(v, j);
    };
    for (int l = 0; l < kLanes; ++l) {
        const int g = l / 4, t = l % 4;
        for (int j = 0; j < 4; ++j) {
            A[g][4 * t + j] = a_byte(a[l][0], j);
            A[g + 8][4 * t + j] = a_byte(a[l][1], j);
            A[g][16 + 4 * t + j] = a_byte(a[l][2], j);
            A[g + 8][16 + 4 * t + j] = a_byte(a[l][3], j);
            B[4 * t + j][g] = byte(b[l][0], j);
            B[16 + 4 * t + j][g] = byte(b[l][1], j);
        }
    }
    for (int l = 0; l < kLanes; ++l) {
        const int g = l / 4, t = l % 4;
        const int row[4] = {g, g, g + 8, g + 8}, col[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
        for (int i = 0; i < 4; ++i)
            for (int k = 0; k < 32; ++k) d[l][i] += A[row[i]][k] * B[k][col[i]];
    }
}

}  // namespace

TEST_CASE("the packed GPU layout gives exact dots through the tensor-core fragment order") {
    const int rows = 40, cols = 384, tokens = 8;  // a ragged last block and padded columns
    std::mt19937 rng(5);
    std::vector<float> w(static_cast<std::size_t>(rows * cols));
    for (float& v : w) v = static_cast<float>(static_cast<int>(rng() % 3) - 1);
    std::vector<std::uint8_t> bytes(
        quant::tensor_bytes(quant::traits(quant::TypeId::I2_S), w.size()));
    quant::quantize_i2_s(w.data(), static_cast<std::int64_t>(w.size()), bytes.data());
    const kernels::WeightView view{quant::TypeId::I2_S, bytes.data(), rows, cols, 1.0f};
    const MmaPacked p = pack_mma_stacked({&view});
    const int chunks = p.padded_cols / kMmaChunk;
    std::vector<std::int8_t> q(static_cast<std::size_t>(tokens) * p.padded_cols, 0);
    for (int t = 0; t < tokens; ++t)
        for (int k = 0; k < cols; ++k)
            q[static_cast<std::size_t>(t) * p.padded_cols + k] =
                static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
    const bool in_place = GENERATE(false, true);
    INFO((in_place ? "chunk_product_in_place" : "chunk_product"));
    for (int b = 0; b < p.blocks; ++b) {
        int acc[kLanes][4] = {};
        int scaled[4][kLanes][4] = {};  // in place: one accumulator set per k-step
        for (int c = 0; c < chunks; ++c)
            for (int s = 0; s < 4; ++s) {  // the k-steps of chunk_product
                unsigned a[kLanes][4], x[kLanes][2];
                for (int l = 0; l < kLanes; ++l) {
                    const int g = l / 4, t = l % 4;
                    const unsigned* word =
                        &p.words[((static_cast<std::size_t>(b) * chunks + c) * kLanes + l) * 4];
                    for (int r = 0; r < 4; ++r)
                        a[l][r] = in_place ? word[r] & (0x03030303u << (2 * s))
                                           : (word[r] >> (2 * s)) & 0x03030303u;
                    // B fragments: token g's 32 bytes at column 32t of the chunk
                    // (load_activations).
                    unsigned act[8];
                    std::memcpy(
                        act,
                        &q[static_cast<std::size_t>(g) * p.padded_cols + c * kMmaChunk + t * 32],
                        32);
                    x[l][0] = act[(s / 2) * 4 + (s % 2 == 0 ? 0 : 2)];
                    x[l][1] = act[(s / 2) * 4 + (s % 2 == 0 ? 1 : 3)];
                }
                emulate_mma(in_place ? scaled[s] : acc, a, x, in_place);
            }
        if (in_place)  // in_place_dots
            for (int l = 0; l < kLanes; ++l)
                for (int i = 0; i < 4; ++i)
                    acc[l][i] = scaled[0][l][i] + (scaled[1][l][i] >> 2) + (scaled[2][l][i] >> 4) +
                                (scaled[3][l][i] >> 6);
        for (int l = 0; l < kLanes; ++l) {
            const int g = l / 4, t = l % 4;
            const int row[4] = {g, g, g + 8, g + 8}, tok[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
            for (int i = 0; i < 4; ++i) {
                const int r = b * kMmaBlockRows + row[i];
                if (r >= rows) continue;  // padding rows
                std::int64_t expected = 0;
                for (int k = 0; k < cols; ++k)
                    expected +=
                        quant::i2s_code_at(bytes.data(), static_cast<std::int64_t>(r) * cols + k) *
                        q[static_cast<std::size_t>(tok[i]) * p.padded_cols + k];
                INFO("row " << r << ", token " << tok[i]);
                REQUIRE(acc[l][i] == expected);
            }
        }
    }
}

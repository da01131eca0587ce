// Host side of ternary_mma.hpp: I2_S matrices repacked into the tensor-core fragment order.
//
// For 16-row block b and 128-column chunk c, lane l = 4g + t of a warp owns 16 bytes (4 words,
// one per A fragment register r). Word r holds register r of all four 32-column k-steps s:
// k-step s's byte j sits at bits 8j + 2s, so `(word_r >> 2s) & 0x03030303` is register r of
// k-step s — or, without the shift, `word_r & (0x03030303 << 2s)` is 4^s times it, which the
// decode step multiplies as unsigned bytes (one instruction per register instead of two).
// Fragment rows: a0, a2 -> row g; a1, a3 -> row g + 8. Fragment columns: the tensor core's
// k index kk = 4t + j (a0, a1) or 16 + 4t + j (a2, a3) is mapped to the real column
// 32t + 8s + j (+ 4 for a2, a3), and the activations use the same map, so a thread's B
// fragments for the whole chunk are its 32 contiguous bytes 32t .. 32t + 31.
// Rows past a part's end and columns past the matrix's end get code 1 (the value 0).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/quantization/formats.hpp"
#include "ternary_mma.hpp"

namespace bitnet::kernels::cuda {
namespace {

struct BlockSource {
    const WeightView* w = nullptr;  // null: a padding block (all zero)
    std::int64_t first_row = 0;
};

// Codes of rows first_row .. first_row + 15 of w (1 past its rows), padded_cols each.
void decode_block(const BlockSource& src, int padded_cols, std::vector<std::uint8_t>& codes) {
    codes.assign(static_cast<std::size_t>(kMmaBlockRows) * padded_cols, 1);
    if (src.w == nullptr) return;
    const WeightView& w = *src.w;
    for (int r = 0; r < kMmaBlockRows; ++r) {
        const std::int64_t row = src.first_row + r;
        if (row >= w.rows) break;
        std::uint8_t* out = codes.data() + static_cast<std::size_t>(r) * padded_cols;
        for (std::int64_t k = 0; k < w.cols; ++k)
            out[k] = quant::i2s_code_at(w.data, row * w.cols + k);
    }
}

MmaPacked pack_blocks(const std::vector<BlockSource>& blocks, std::int64_t cols) {
    MmaPacked p;
    p.blocks = static_cast<int>(blocks.size());
    p.padded_cols = mma_padded_cols(cols);
    const int chunks = p.padded_cols / kMmaChunk;
    const std::size_t words_per_block = static_cast<std::size_t>(chunks) * 32 * 4;
    p.words.assign(words_per_block * blocks.size(), 0u);
#pragma omp parallel
    {
        std::vector<std::uint8_t> codes;
#pragma omp for schedule(dynamic, 4)
        for (std::int64_t b = 0; b < static_cast<std::int64_t>(blocks.size()); ++b) {
            decode_block(blocks[static_cast<std::size_t>(b)], p.padded_cols, codes);
            unsigned* out = p.words.data() + static_cast<std::size_t>(b) * words_per_block;
            for (int c = 0; c < chunks; ++c)
                for (int lane = 0; lane < 32; ++lane) {
                    const int g = lane / 4, t = lane % 4;
                    for (int r = 0; r < 4; ++r) {
                        const int row = g + (r % 2 == 1 ? 8 : 0);
                        unsigned word = 0;
                        for (int s = 0; s < 4; ++s)
                            for (int j = 0; j < 4; ++j) {
                                const int k = c * kMmaChunk + 32 * t + 8 * s + (r >= 2 ? 4 : 0) + j;
                                const unsigned code =
                                    codes[static_cast<std::size_t>(row) * p.padded_cols + k];
                                word |= code << (8 * j + 2 * s);
                            }
                        out[(static_cast<std::size_t>(c) * 32 + lane) * 4 + r] = word;
                    }
                }
        }
    }
    return p;
}

void require_i2s(const WeightView& w) {
    if (w.type != quant::TypeId::I2_S)
        fail(ErrorCode::Unsupported, "the GPU tensor-core kernels take I2_S weights only");
}

}  // namespace

MmaPacked pack_mma_stacked(const std::vector<const WeightView*>& parts) {
    std::vector<BlockSource> blocks;
    std::vector<int> first;
    for (const WeightView* w : parts) {
        require_i2s(*w);
        if (w->cols != parts.front()->cols)
            fail(ErrorCode::Internal, "pack_mma_stacked: parts with different column counts");
        first.push_back(static_cast<int>(blocks.size()));
        const std::int64_t n = (w->rows + kMmaBlockRows - 1) / kMmaBlockRows;
        for (std::int64_t b = 0; b < n; ++b) blocks.push_back({w, b * kMmaBlockRows});
        while (blocks.size() % kMmaPairBlocks != 0) blocks.push_back({});
    }
    MmaPacked p = pack_blocks(blocks, parts.front()->cols);
    p.first_block = std::move(first);
    return p;
}

MmaPacked pack_mma_paired(const WeightView& gate, const WeightView& up) {
    require_i2s(gate);
    require_i2s(up);
    if (gate.rows != up.rows || gate.cols != up.cols)
        fail(ErrorCode::Internal, "pack_mma_paired: gate and up differ in shape");
    std::vector<BlockSource> blocks;
    for (std::int64_t r = 0; r < gate.rows; r += kMmaBlockRows) {
        blocks.push_back({&gate, r});
        blocks.push_back({&up, r});
    }
    MmaPacked p = pack_blocks(blocks, gate.cols);
    p.first_block = {0, 1};
    return p;
}

}  // namespace bitnet::kernels::cuda

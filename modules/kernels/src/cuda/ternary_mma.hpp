// Ternary (I2_S) matrix products on int8 tensor cores (mma.sync m16n8k32, s8 x s8 -> s32):
// one kernel family for decode (a GEMV: one token, split over K inside a block so enough loads
// are in flight) and for prefill / batched decode (a GEMM: each weight tile unpacked once for up
// to 32 tokens). Weights are repacked at upload into the tensor cores' fragment order, so a
// thread's 16 bytes of one 128-column chunk are exactly the codes its A fragments need, and two
// instructions (shift, and) turn each 32-bit word into one fragment register.
//
// Codes 0..2 enter the tensor cores as they are; the -1 offset of the ternary value is taken out
// afterwards with the activation row sum: sum_k (c_k - 1) x_k = sum_k c_k x_k - sum_k x_k. Both
// are exact integers, so the result equals the CPU kernels' integer dot product bit for bit, and
// the float rule after it is the CPU's: y = (float)dot / a * scale.
//
// No CUDA header here (streams are void*): gpu_model.cu and cuda_backend.cpp both use it.
#pragma once

#include <cstdint>
#include <vector>

#include "bitnet/kernels/weight_view.hpp"

namespace bitnet::kernels::cuda {

constexpr int kMmaBlockRows = 16;  // weight rows per tensor-core tile ("block")
constexpr int kMmaChunk = 128;     // columns per packed chunk: 512 bytes per block and chunk
constexpr int kMmaPairBlocks = 2;  // blocks per warp tile: segments are padded to 32 rows

// Activation rows are padded with zeros to whole chunks.
inline int mma_padded_cols(std::int64_t cols) {
    return static_cast<int>((cols + kMmaChunk - 1) / kMmaChunk * kMmaChunk);
}

// A matrix packed for the kernels: `blocks` 16-row blocks of `padded_cols` columns.
struct MmaPacked {
    std::vector<unsigned> words;  // blocks * padded_cols / 16: 16 codes per word
    int blocks = 0;
    int padded_cols = 0;
    std::vector<int> first_block;  // per stacked part: its first block
};

// The parts stacked one after another (Q, K and V: one launch), each padded to whole pairs of
// blocks; all parts must have the same number of columns.
MmaPacked pack_mma_stacked(const std::vector<const WeightView*>& parts);
// Gate and up interleaved block by block (gate rows 16j.., then up rows 16j..), so the thread
// that holds gate[r] also holds up[r] and can write relu(gate)^2 * up directly.
MmaPacked pack_mma_paired(const WeightView& gate, const WeightView& up);

// What the kernel does with each result y = (float)(dot) / a[t] * scale of the row's segment.
enum class MmaOutput : int {
    Store = 0,            // out[t][row] = y
    AddInto = 1,          // out[t][row] += y (the residual stream)
    ReluSquaredPair = 2,  // paired matrix: out[t][row] = relu(y_gate)^2 * y_up
};
struct MmaSegment {
    int first_block = 0;  // where the part starts in the packed matrix
    int rows = 0;         // its real rows (the row stride of `out`)
    float scale = 1.0f;   // the part's per-tensor weight scale
    float* out = nullptr;
};
struct MmaEpilogue {
    MmaOutput kind = MmaOutput::Store;
    int count = 1;  // segments used (Store: 1..3; AddInto: 1; ReluSquaredPair: 2 = gate, up)
    MmaSegment seg[3];
};

// n token rows of int8 activations (row stride padded_cols, zero padded), their scales a and
// row sums; weights from pack_mma_*. Asynchronous on `stream`.
void launch_ternary_mma(const unsigned* w, int blocks, int padded_cols, const std::int8_t* q,
                        const float* act_scales, const int* act_sums, int n,
                        const MmaEpilogue& epilogue, void* stream);

}  // namespace bitnet::kernels::cuda

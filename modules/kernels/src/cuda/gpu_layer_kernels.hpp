// The non-matrix kernels of the GPU forward pass (gpu_model.cu): embedding rows, rmsnorm fused
// with the int8 quantization, RoPE + KV-cache write, the final norm and the F16 head (attention:
// attention.hpp).
// Every token row carries its own position and sequence (KV slot), so one pass can prefill one
// prompt or decode the next token of many sequences. Launchers take plain pointers (F16 data as
// uint16_t, streams as void*) so no CUDA header is needed to call them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bitnet::kernels::cuda {

struct HeadShape {
    int heads = 0, kv_heads = 0, head_dim = 0, rope_dim = 0;
    float scale = 1.0f;  // 1 / sqrt(head_dim)
};

// One layer's KV cache on the device: F16 rows of kv_heads * head_dim, `seq_stride` elements per
// sequence slot (context * kv_dim).
struct KvLayer {
    std::uint16_t* k = nullptr;
    std::uint16_t* v = nullptr;
    std::size_t seq_stride = 0;
};

// Per token row (device arrays): position in its sequence and the sequence's KV slot.
struct RowPlaces {
    const int* positions = nullptr;
    const int* seqs = nullptr;
};

void launch_embed_rows(const std::uint16_t* embedding, const int* tokens, int n, int hidden,
                       float* x, void* stream);
// rmsnorm (sums in double, as the CPU) then the CPU's int8 quantization of each row: q (row
// stride `padded`, zero filled), scales a = 127 / max(amax, 1e-5) and the row sums of q.
void launch_rmsnorm_quantize(const float* x, const float* weight, int n, int cols, int padded,
                             float eps, std::int8_t* q, float* scales, int* sums, void* stream);
// rmsnorm rounded to F16: the input of the F16 head.
void launch_rmsnorm_half(const float* x, const float* weight, int n, int cols, float eps,
                         std::uint16_t* out, void* stream);
// NeoX RoPE of q and k with host-computed cos/sin tables; k and v stored into the cache.
void launch_rope_and_store(float* q, const float* k, const float* v, int n, RowPlaces rows,
                           const HeadShape& shape, const float* cos_table, const float* sin_table,
                           KvLayer kv, void* stream);
// y[t][r] = sum_k w[r][k] * x[t][k]: F16 weights and inputs, f32 accumulation; cols % 8 == 0.
void launch_f16_gemv(const std::uint16_t* w, int rows, int cols, const std::uint16_t* x, int n,
                     float* y, void* stream);

}  // namespace bitnet::kernels::cuda

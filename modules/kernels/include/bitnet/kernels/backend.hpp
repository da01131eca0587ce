// Backend — the compute primitives the transformer is built from. Model code calls these and
// never knows which implementation runs. Every faster backend is tested against the reference
// backend (plain scalar loops, the documentation that runs).
//
// Matrix products follow the rules of the weight type:
//  - ternary weights (I2_S, TQ2_0, TQ1_0): W1.58A8, per-row int8 absmax activations
//    (quant::quantize_activations_i8), integer dot with the codes, y = (D - S) / a * scale;
//  - F16/BF16 weights: activations rounded to the weight's half type, f32 accumulation
//    (what ggml's CPU matmul does);
//  - Q8_0 weights: activations quantized to Q8_0 blocks, integer dot per 32-block scaled by
//    both block scales (ggml's Q8_0 x Q8_0 dot);
//  - F32, Q4_0, Q6_K: weights dequantized, f32 activations, f32 accumulation.
// The reference backend can instead run ternary weights with float activations
// (ActivationPrecision::Float), the "no activation quantization" variant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "bitnet/kernels/top_k.hpp"
#include "bitnet/kernels/weight_view.hpp"

namespace bitnet::kernels {

enum class ActivationPrecision { Int8, Float };

// One product of a multi-matmul: y = W x for a weight sharing the input with the others.
struct MatmulJob {
    const WeightView* w;
    float* y;
};

class Backend {
  public:
    virtual ~Backend() = default;
    // Several products of the same input (Q/K/V, gate/up): backends may quantize the input
    // once and schedule all rows together. Same results as calling matmul for each job.
    // (A span, not a vector: decode calls this a few times per layer and allocates nothing.)
    virtual void matmul_many(std::span<const MatmulJob> jobs, const float* x,
                             std::int64_t n_rows) const {
        for (const MatmulJob& job : jobs) matmul(*job.w, x, n_rows, job.y);
    }
    // The FFN's gate and up products with BitNet's activation between them:
    // y = relu(gate_scale * W_gate x)^2 * (up_scale * W_up x) element by element — the float
    // operations of matmul_many, each scale (skipped at 1) and relu_squared_mul in turn, so the
    // same bits as those steps. A backend may apply the activation while the products are in its
    // cache, without an array for `up` (the CPU backend, for prefill). Default: the steps.
    virtual void matmul_gate_relu_squared_up(const WeightView& gate, float gate_scale,
                                             const WeightView& up, float up_scale, const float* x,
                                             std::int64_t n_rows, float* y) const;
    // y[r][n] = sum_k W[n][k] * x[r][k] for r < n_rows; x is n_rows x cols, y is n_rows x rows.
    virtual void matmul(const WeightView& w, const float* x, std::int64_t n_rows,
                        float* y) const = 0;
    // Backends that compute from a repacked copy of some weights (TL1) make it here, once, so
    // the caller may release the original pages afterwards. Default: nothing to prepare.
    virtual void prepare_weights(const std::vector<const WeightView*>& weights) const {
        (void)weights;
    }
    // The first index of the largest value of y = W x for one input row (NaN is never the
    // largest; -1 when every value is NaN): matmul followed by argmax_first, for greedy
    // decoding. A backend may screen W's rows first (prepare_screened_head) and compute only the
    // rows that can hold the largest value — the same index, ties and all.
    virtual std::int32_t matmul_argmax(const WeightView& w, const float* x) const;
    // The rows TopKRule chooses from y = W x for one input row, as (value after the penalty,
    // row) in any order: matmul followed by the rule, or (prepare_screened_head) only the rows
    // that can be among them computed — the same rows and values.
    virtual void matmul_top_k(const WeightView& w, const float* x, const TopKRule& rule,
                              std::vector<ScoredRow>& out) const;
    // How a backend reads the rows of a matrix it computes only a few at a time (the screened
    // head's candidates): copies `bytes` at `at` into `out`. Empty: through the pointer.
    using RowReader = std::function<void(const std::uint8_t* at, std::size_t bytes, void* out)>;
    // Makes matmul_argmax's and matmul_top_k's screening copy of an F16 matrix (the output head):
    // int8 rows read instead of the F16 ones, 1 byte per weight instead of 2. Returns its bytes; 0
    // where this backend does not screen (the default).
    // `reader` then reads the rows left to compute (a file read keeps the matrix's pages from
    // becoming resident).
    virtual std::uint64_t prepare_screened_head(const WeightView& w, RowReader reader) const {
        (void)w;
        (void)reader;
        return 0;
    }
    // Row `index` of W, dequantized to f32 (token embedding lookup).
    virtual void get_row(const WeightView& w, std::int64_t index, float* out) const = 0;
    virtual std::string name() const = 0;
    // Names of the kernels used for each weight type (for metrics and `bitnet system`).
    virtual std::vector<std::string> kernel_names() const = 0;
};

std::unique_ptr<Backend> make_reference_backend(
    ActivationPrecision precision = ActivationPrecision::Int8);

// Instruction set of the CPU backend's I2_S kernels. Best = detected once at start-up. Amx: AMX
// int8 tiles for products of 16 or more tokens, AVX-512 VNNI for fewer.
// Avx512Vnni256: the AVX2 kernels, except that one token (decode) runs on 256-bit AVX-512 VNNI
// with GFNI (needs both).
enum class CpuIsa { Best, Amx, Avx512Vnni, Avx2, Scalar, Avx512Vnni256 };
bool cpu_isa_supported(CpuIsa isa);

// The default CPU backend: same numerics as the reference (bit-identical integer dots), rows
// split across `threads` OpenMP threads (0 = all physical cores). Not thread-safe: one
// generation at a time per backend object (it keeps scratch buffers between calls).
std::unique_ptr<Backend> make_cpu_backend(int threads = 0, CpuIsa isa = CpuIsa::Best);
// The CPU backend with TL1 lookup-table kernels for I2_S weights (same results bit for bit):
// vpermw on AVX-512BW, pshufb on AVX2 (or `isa` = Avx2). I2_S weights are repacked
// (row-interleaved, same 2 bits per weight) by prepare_weights or on first use. Throws
// Unsupported without AVX2.
std::unique_ptr<Backend> make_tl1_backend(int threads = 0, CpuIsa isa = CpuIsa::Best);
// The same with TL2 (three weights in 5 bits, three per 16-bit word, vpermw on 32 rows): needs
// AVX-512BW.
std::unique_ptr<Backend> make_tl2_backend(int threads = 0);
// "i2s", "tl1" or "tl2": the fastest of the ternary kernels this CPU has on a short decode +
// prefill measurement (once per process, a few milliseconds): what `--kernel auto` goes by.
std::string fastest_ternary_kernel();

// Re-quantizes an F16/F32/BF16 matrix to Q8_0 (threaded), e.g. the tied output head:
// half the bytes to stream per token for ~0.4% relative error in the logits.
std::vector<std::uint8_t> requantize_to_q8_0(const WeightView& w, int threads = 0);

}  // namespace bitnet::kernels

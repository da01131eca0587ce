// The default CPU backend: the reference numerics, output rows split across OpenMP threads,
// hot loops compiled for several ISAs (GCC/clang function multi-versioning picks the best one
// the CPU supports at load time) and an F16C path for half-precision weights.
// Issue 5 replaces the inner loops with hand-written AVX2/VNNI kernels; the tests that hold
// this backend to the reference stay the same.
#include <immintrin.h>
#include <omp.h>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/kernels/backend.hpp"
#include "bitnet/quantization/fp16.hpp"
#include "matmul_common.hpp"

namespace bitnet::kernels {
namespace {

using quant::TypeId;

__attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
std::int32_t dot_i2s_multiversion(const std::uint8_t* packed_row, const std::int8_t* q, std::int64_t cols) {
    std::int32_t sum = 0;
    for (std::int64_t block = 0; block < cols / 128; ++block) {
        const std::uint8_t* b = packed_row + block * 32;
        const std::int8_t* qq = q + block * 128;
        std::int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int j = 0; j < 32; ++j) {
            s0 += (b[j] >> 6) * qq[j];
            s1 += ((b[j] >> 4) & 3) * qq[j + 32];
            s2 += ((b[j] >> 2) & 3) * qq[j + 64];
            s3 += (b[j] & 3) * qq[j + 96];
        }
        sum += s0 + s1 + s2 + s3;
    }
    return sum;
}

// F16 row . f32 vector (the vector already rounded to half precision) with F16C + FMA.
__attribute__((target("avx2,f16c,fma")))
float dot_f16_f16c(const std::uint16_t* w, const float* x, std::int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
        acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1);
    }
    __m256 acc = _mm256_add_ps(acc0, acc1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    float total = _mm_cvtss_f32(s);
    for (; i < n; ++i) total += quant::fp16_to_fp32(w[i]) * x[i];
    return total;
}

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : cpu_features().physical_cores) {
        f16c_ = cpu_features().f16c && cpu_features().avx2 && cpu_features().fma;
    }

    void matmul(const WeightView& w, const float* x, std::int64_t n_rows, float* y) const override {
        // Shared by the worker threads below, so not thread_local.
        std::vector<detail::PreparedRow> prepared(static_cast<std::size_t>(n_rows));
        for (std::int64_t r = 0; r < n_rows; ++r) detail::prepare_row(w, x + r * w.cols, true, prepared[static_cast<std::size_t>(r)]);
        const std::int64_t rows = w.rows;
        const bool i2s = w.type == TypeId::I2_S;
        const bool f16 = w.type == TypeId::F16 && f16c_;
        // Rows of W are the outer loop so each weight row is read once per call (prefill shares it
        // across all tokens); chunks of 16 rows keep scheduling overhead low.
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads_)
        for (std::int64_t n = 0; n < rows; ++n) {
            const std::uint8_t* row = w.row(n);
            for (std::int64_t r = 0; r < n_rows; ++r) {
                const detail::PreparedRow& p = prepared[static_cast<std::size_t>(r)];
                float value;
                if (i2s) {
                    value = quant::i2s_output(dot_i2s_multiversion(row, p.q.data(), w.cols), p.act, w.scale);
                } else if (f16) {
                    value = dot_f16_f16c(reinterpret_cast<const std::uint16_t*>(row), p.f.data(), w.cols);
                } else {
                    value = detail::dot_row_reference(w, n, p, true);
                }
                y[r * rows + n] = value;
            }
        }
    }

    void get_row(const WeightView& w, std::int64_t index, float* out) const override {
        reference_->get_row(w, index, out);
    }

    std::string name() const override { return "cpu"; }
    std::vector<std::string> kernel_names() const override {
        return {"i2_s: multiversioned int8 dot (avx512bw|avx2|sse2), " + std::to_string(threads_) + " threads",
                std::string("f16: ") + (f16c_ ? "f16c+fma" : "scalar"), "tq2_0/tq1_0/q8_0/q4_0/q6_k: reference rows, threaded"};
    }

private:
    int threads_;
    bool f16c_ = false;
    std::unique_ptr<Backend> reference_ = make_reference_backend(ActivationPrecision::Int8);
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace bitnet::kernels

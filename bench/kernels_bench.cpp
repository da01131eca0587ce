// Kernel throughput on 2B4T shapes: GB/s of weights streamed and GMAC/s, per kernel and shape.
// Run: build/cpu/bench/kernels_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <exception>
#include <memory>
#include <random>
#include <vector>

#include "bitnet/kernels/backend.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/type_traits.hpp"

namespace {

using bitnet::quant::TypeId;

struct Weights {
    std::vector<std::uint8_t> bytes;
    bitnet::kernels::WeightView view;
};

Weights make_weights(TypeId type, std::int64_t rows, std::int64_t cols) {
    std::mt19937 rng(1);
    std::vector<float> values(static_cast<std::size_t>(rows * cols));
    for (auto& v : values)
        v = type == TypeId::F16 ? static_cast<float>(rng() % 1000) * 1e-4f
                                : 0.1f * static_cast<float>(static_cast<int>(rng() % 3) - 1);
    const auto& t = bitnet::quant::traits(type);
    Weights w;
    w.bytes.resize(bitnet::quant::tensor_bytes(t, values.size()));
    t.quantize(values.data(), static_cast<std::int64_t>(values.size()), w.bytes.data());
    w.view = {type, w.bytes.data(), rows, cols, 0.1f};
    return w;
}

enum class Kernel { Isa, Tl1, Tl2 };

void matmul(benchmark::State& state, TypeId type, std::int64_t rows, std::int64_t cols,
            bitnet::kernels::CpuIsa isa, Kernel kernel = Kernel::Isa) {
    const std::int64_t tokens = state.range(0);
    const int threads = static_cast<int>(state.range(1));
    if (!bitnet::kernels::cpu_isa_supported(isa)) {
        state.SkipWithError("instruction set not supported on this CPU");
        return;
    }
    const Weights w = make_weights(type, rows, cols);
    std::unique_ptr<bitnet::kernels::Backend> backend;
    try {
        backend = kernel == Kernel::Tl1   ? bitnet::kernels::make_tl1_backend(threads)
                  : kernel == Kernel::Tl2 ? bitnet::kernels::make_tl2_backend(threads)
                                          : bitnet::kernels::make_cpu_backend(threads, isa);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return;
    }
    backend->prepare_weights({&w.view});
    std::vector<float> x(static_cast<std::size_t>(tokens * cols), 0.5f),
        y(static_cast<std::size_t>(tokens * rows));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) - 8.0f;
    for (auto _ : state) {
        backend->matmul(w.view, x.data(), tokens, y.data());
        benchmark::DoNotOptimize(y.data());
    }
    const double weight_bytes = static_cast<double>(rows) * static_cast<double>(w.view.row_bytes());
    state.counters["GB/s"] = benchmark::Counter(
        weight_bytes * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
    state.counters["GMAC/s"] = benchmark::Counter(
        static_cast<double>(rows * cols * tokens) * static_cast<double>(state.iterations()) / 1e9,
        benchmark::Counter::kIsRate);
}

void BM_I2S_ffn_up_2560x6912(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 6912, 2560, bitnet::kernels::CpuIsa::Best);
}
void BM_I2S_ffn_down_6912x2560(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 2560, 6912, bitnet::kernels::CpuIsa::Best);
}
void BM_I2S_avx2_ffn_up(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 6912, 2560, bitnet::kernels::CpuIsa::Avx2);
}
void BM_I2S_vnni_ffn_up(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 6912, 2560, bitnet::kernels::CpuIsa::Avx512Vnni);
}
void BM_I2S_amx_ffn_up(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 6912, 2560, bitnet::kernels::CpuIsa::Amx);
}
void BM_TL1_ffn_up(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 6912, 2560, bitnet::kernels::CpuIsa::Avx2, Kernel::Tl1);
}
void BM_TL2_ffn_up(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 6912, 2560, bitnet::kernels::CpuIsa::Best, Kernel::Tl2);
}
void BM_TQ2_0_ffn_up(benchmark::State& s) {
    matmul(s, TypeId::TQ2_0, 6912, 2560, bitnet::kernels::CpuIsa::Best);
}
void BM_TQ1_0_ffn_up(benchmark::State& s) {
    matmul(s, TypeId::TQ1_0, 6912, 2560, bitnet::kernels::CpuIsa::Best);
}
void BM_Q8_0_output_2560x128256(benchmark::State& s) {
    matmul(s, TypeId::Q8_0, 128256, 2560, bitnet::kernels::CpuIsa::Best);
}
void BM_F16_output_2560x128256(benchmark::State& s) {
    matmul(s, TypeId::F16, 128256, 2560, bitnet::kernels::CpuIsa::Best);
}

}  // namespace

// Args: {tokens, threads}. Tokens 1 = decode (GEMV), 128 = prefill (GEMM).
BENCHMARK(BM_I2S_ffn_up_2560x6912)
    ->Args({1, 1})
    ->Args({1, 2})
    ->Args({128, 2})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_I2S_ffn_down_6912x2560)->Args({1, 2})->Args({128, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_I2S_avx2_ffn_up)
    ->Args({1, 2})
    ->Args({128, 1})
    ->Args({128, 2})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_I2S_vnni_ffn_up)
    ->Args({1, 1})
    ->Args({1, 2})
    ->Args({128, 2})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_I2S_amx_ffn_up)
    ->Args({16, 2})
    ->Args({128, 1})
    ->Args({128, 2})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TL1_ffn_up)->Args({1, 2})->Args({128, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TL2_ffn_up)->Args({1, 2})->Args({128, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TQ2_0_ffn_up)->Args({1, 2})->Args({128, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TQ1_0_ffn_up)->Args({1, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Q8_0_output_2560x128256)->Args({1, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_F16_output_2560x128256)->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();

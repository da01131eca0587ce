// Kernel throughput on 2B4T shapes: GB/s of weights streamed and GMAC/s, per kernel and shape.
// Run: build/cpu/bench/kernels_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <exception>
#include <memory>
#include <random>
#include <vector>

#include <omp.h>

#include "bitnet/kernels/attention_heads.hpp"
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
void BM_I2S_vnni256_ffn_up(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 6912, 2560, bitnet::kernels::CpuIsa::Avx512Vnni256);
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
// Decode's regimes apart: 16 FFN-up matrices' rows (70 MB, past the L3: streamed from memory as
// in a whole model's decode) and 1024 rows (in L2: the kernels' arithmetic alone).
void BM_I2S_stream_110592x2560(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 6912 * 16, 2560, bitnet::kernels::CpuIsa::Best);
}
void BM_TL2_stream_110592x2560(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 6912 * 16, 2560, bitnet::kernels::CpuIsa::Best, Kernel::Tl2);
}
void BM_I2S_in_l2_1024x2560(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 1024, 2560, bitnet::kernels::CpuIsa::Best);
}
void BM_TL2_in_l2_1024x2560(benchmark::State& s) {
    matmul(s, TypeId::I2_S, 1024, 2560, bitnet::kernels::CpuIsa::Best, Kernel::Tl2);
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

// The greedy choice over the F16 head through its int8 screening rows (CpuBackend's
// matmul_argmax): GB/s counts the int8 rows, what each call streams.
void BM_F16_output_screened_argmax(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(1));
    const Weights w = make_weights(TypeId::F16, 128256, 2560);
    const auto backend = bitnet::kernels::make_cpu_backend(threads);
    const std::uint64_t bytes = backend->prepare_screened_head(w.view, {});
    if (bytes == 0) {
        state.SkipWithError("no screening head on this CPU (needs AVX2, F16C, FMA)");
        return;
    }
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(2560);
    for (float& v : x) v = normal(rng);
    for (auto _ : state) benchmark::DoNotOptimize(backend->matmul_argmax(w.view, x.data()));
    state.counters["GB/s"] = benchmark::Counter(
        static_cast<double>(bytes) * static_cast<double>(state.iterations()) / 1e9,
        benchmark::Counter::kIsRate);
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
BENCHMARK(BM_I2S_vnni256_ffn_up)->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_I2S_amx_ffn_up)
    ->Args({16, 2})
    ->Args({128, 1})
    ->Args({128, 2})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TL1_ffn_up)->Args({1, 2})->Args({128, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TL2_ffn_up)->Args({1, 2})->Args({128, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_I2S_stream_110592x2560)->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TL2_stream_110592x2560)->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_I2S_in_l2_1024x2560)->Args({1, 1})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TL2_in_l2_1024x2560)->Args({1, 1})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TQ2_0_ffn_up)->Args({1, 2})->Args({128, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TQ1_0_ffn_up)->Args({1, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Q8_0_output_2560x128256)->Args({1, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_F16_output_2560x128256)->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_F16_output_screened_argmax)->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMillisecond);
// Decode attention of one token over all 30 layers of a 2B4T-shaped F16 KV cache (5 KV heads of
// 4 query heads, head_dim 128) at range(0) positions, 2 threads; range(1) picks the cache layout:
// 0 = position-major (a position's 5 heads side by side, a head's rows 1280 bytes apart), 1 =
// head-major (each head's positions contiguous, the engine's layout). GB/s of cache read.
void BM_attention_decode(benchmark::State& state) {
    constexpr std::int64_t layers = 30, n_kv = 5, group = 4, hd = 128;
    const std::int64_t positions = state.range(0);
    const bool head_major = state.range(1) != 0;
    const std::size_t per_layer = static_cast<std::size_t>(n_kv * positions * hd);
    std::vector<std::uint16_t> keys(layers * per_layer), values(keys.size());
    std::mt19937 rng(3);
    for (auto& h : keys) h = static_cast<std::uint16_t>(0x3000 + rng() % 0x800);
    for (auto& h : values) h = static_cast<std::uint16_t>(0x3000 + rng() % 0x800);
    std::vector<float> q(static_cast<std::size_t>(n_kv * group * hd), 0.01f), out(q.size());
    const std::int64_t stride = head_major ? hd : n_kv * hd;
    auto head = [&](const std::vector<std::uint16_t>& cache, std::int64_t layer, std::int64_t kvh) {
        return cache.data() + static_cast<std::size_t>(layer) * per_layer +
               static_cast<std::size_t>(head_major ? kvh * positions * hd : kvh * hd);
    };
    const float scale = 0.088f;
    for (auto _ : state) {
        for (std::int64_t layer = 0; layer < layers; ++layer) {
            // Four whole KV heads, then the fifth in halves (transformer.cpp's plan for 2 threads).
#pragma omp parallel for schedule(dynamic, 1) num_threads(2)
            for (std::int64_t job = 0; job < 6; ++job) {
                const std::int64_t kvh = job < 4 ? job : 4;
                const std::int64_t heads = job < 4 ? group : group / 2;
                const std::int64_t first = kvh * group + (job == 5 ? group / 2 : 0);
                thread_local std::vector<float> scores;
                scores.resize(static_cast<std::size_t>(heads * positions));
                bitnet::kernels::attention_heads_f16(
                    q.data() + first * hd, heads, head(keys, layer, kvh), head(values, layer, kvh),
                    stride, positions, hd, scale, scores.data(), out.data() + first * hd);
            }
        }
        benchmark::DoNotOptimize(out.data());
    }
    const double bytes = 2.0 * static_cast<double>(keys.size()) * 2.0;
    state.counters["GB/s"] = benchmark::Counter(
        bytes * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_attention_decode)
    ->ArgsProduct({{256, 1024, 2048}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();

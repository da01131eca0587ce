// Encode throughput of the tokenizers on ~1 MB of English prose (the license texts every Debian
// system ships in /usr/share/common-licenses, repeated). Reports MB/s (bytes_per_second) and
// tokens/s. Run: build/cpu/bench/tokenizer_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bitnet/tokenizers/tokenizer.hpp"

namespace {

std::string english_text(std::size_t target_bytes) {
    std::string corpus;
    for (const char* name : {"GPL-3", "Apache-2.0", "LGPL-3", "MPL-2.0", "Artistic", "GFDL-1.3"}) {
        std::ifstream in(std::string("/usr/share/common-licenses/") + name);
        std::stringstream ss;
        ss << in.rdbuf();
        corpus += ss.str();
    }
    if (corpus.empty()) corpus = "The quick brown fox jumps over the lazy dog. ";
    std::string text;
    while (text.size() < target_bytes) text += corpus;
    text.resize(target_bytes);
    // Do not end inside a multi-byte character.
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80)
        text.pop_back();
    return text;
}

void encode_benchmark(benchmark::State& state, const char* relative_path) {
    const std::filesystem::path path = std::filesystem::path(BITNET_SHARED_DIR) / relative_path;
    if (!std::filesystem::exists(path)) {
        state.SkipWithError(("tokenizer fixture absent: " + path.string()).c_str());
        return;
    }
    const auto tokenizer = bitnet::tokenizers::load_tokenizer_json(path.string());
    const std::string text = english_text(1 << 20);
    std::size_t tokens = 0;
    for (auto _ : state) {
        const auto ids = tokenizer->encode(text, false, false);
        tokens = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
    state.counters["tokens/s"] =
        benchmark::Counter(static_cast<double>(tokens) * static_cast<double>(state.iterations()),
                           benchmark::Counter::kIsRate);
    state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_EncodeLlama3_1MB(benchmark::State& state) {
    encode_benchmark(state, "fixtures/tokenizers/llama3/tokenizer.json");
}
void BM_EncodeLlama2_1MB(benchmark::State& state) {
    encode_benchmark(state, "fixtures/tokenizers/llama2/tokenizer.json");
}

}  // namespace

BENCHMARK(BM_EncodeLlama3_1MB)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeLlama2_1MB)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_MAIN();

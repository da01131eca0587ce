// `bitnet bench`: llama-bench-like throughput table — prompt processing (pp) and generation (tg)
// tokens/s, mean ± sd over -r runs, GB/s of weights streamed per generated token and the share
// of the memory-bandwidth floor (a read test right before each tg run; at start-up without one).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/common/progress.hpp"
#include "bitnet/inference/benchmark.hpp"
#include "commands.hpp"
#include "generation_options.hpp"

namespace bitnet::cli {

namespace {
nlohmann::json batched_json(const inference::BenchmarkResult& r) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : r.batched)
        out.push_back({{"batch", b.batch},
                       {"tokens_per_s", b.aggregate.mean},
                       {"stddev", b.aggregate.stddev},
                       {"runs", b.aggregate.runs},
                       {"steps_per_s", b.steps_per_s},
                       {"percent_of_floor", b.percent_of_floor}});
    return out;
}
}  // namespace

Command add_bench_command(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "bench", "Measure prompt and generation throughput against the memory-bandwidth floor");
    struct Options {
        GenerationOptions gen;
        inference::BenchmarkOptions bench;
        std::int64_t context = 0;
        bool json = false;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option(
        "-m,--model", o->gen.model,
        "GGUF model (default: BITNET_GGUF, else models/**/*.gguf, else the built-in demo model)");
    cmd->add_option("-p,--n-prompt", o->bench.prompt_tokens, "Prompt tokens per pp run (0: skip)")
        ->capture_default_str();
    cmd->add_option("-n,--n-gen", o->bench.gen_tokens, "Generated tokens per tg run (0: skip)")
        ->capture_default_str();
    cmd->add_option("-r,--repetitions", o->bench.repeats, "Runs of each test")
        ->capture_default_str();
    cmd->add_option("-d,--depth", o->bench.depth,
                    "Tokens already in the KV cache when the tests start (long-context speed: "
                    "pp runs after them, tg after them and the prompt)")
        ->capture_default_str();
    cmd->add_option("-c,--ctx-size", o->context,
                    "Context the model is loaded with (default: -d + -p + -n + 1; a real "
                    "session's context sizes its buffers)");
    cmd->add_option("-b,--batch", o->bench.batch_sizes,
                    "Batched decode: sequences decoded together, comma-separated (e.g. 1,8,32)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("-t,--threads", o->gen.threads, "CPU threads (default: physical cores)");
    cmd->add_option("--kernel", o->gen.kernel, "auto | i2s | tl1 | tl2 | ref")
        ->capture_default_str();
    cmd->add_option("--device", o->gen.device, "auto | cpu | cuda[:N]");
    cmd->add_flag("--mmap", o->gen.mmap,
                  "CPU: read the weights in place from the file's mapping (no copy into huge "
                  "pages; pages shared with other processes, decode a few % slower)");
    cmd->add_option("--head", o->gen.head, "Output head: auto | f16 | q8_0 (see bitnet run --help)")
        ->check(CLI::IsMember({"auto", "f16", "q8_0"}))
        ->capture_default_str();
    cmd->add_flag("--json", o->json, "Machine-readable output on stdout");
    return {
        cmd, [o]() {
            // (in 64 bits: -d, -p and -n are ints each)
            o->gen.context = o->context > 0 ? o->context
                                            : std::int64_t{std::max(0, o->bench.depth)} +
                                                  std::max(0, o->bench.prompt_tokens) +
                                                  std::max(0, o->bench.gen_tokens) + 1;
            auto engine = load_engine(o->gen);
            o->bench.threads = o->gen.threads;
            const auto r = inference::run_benchmark(*engine, o->bench);
            const auto& m = engine->model();
            const std::string kernels =
                engine->backend().kernel_names().empty() ? "" : engine->backend().kernel_names()[0];
            if (o->json) {
                nlohmann::json j = {
                    {"model", m.file().path()},
                    {"model_bytes", m.file().file_size()},
                    {"backend", engine->backend().name()},
                    {"kernels", engine->backend().kernel_names()},
                    {"threads",
                     o->gen.threads > 0 ? o->gen.threads : cpu_features().physical_cores},
                    {"depth", o->bench.depth},
                    {"pp",
                     {{"tokens", o->bench.prompt_tokens},
                      {"tokens_per_s", r.pp.mean},
                      {"stddev", r.pp.stddev},
                      {"runs", r.pp.runs}}},
                    {"tg",
                     {{"tokens", o->bench.gen_tokens},
                      {"tokens_per_s", r.tg.mean},
                      {"stddev", r.tg.stddev},
                      {"runs", r.tg.runs}}},
                    {"batched", batched_json(r)},
                    {"weight_bytes_per_token", r.weight_bytes_per_token},
                    {"memory_bandwidth_gbs", r.bandwidth_gbs},
                    {"memory_bandwidth_runs_gbs", r.bandwidth_runs_gbs},
                    {"floor_tokens_per_s", r.floor_tokens_per_s},
                    {"tg_effective_gbs", r.tg_effective_gbs},
                    {"tg_percent_of_floor", r.tg_percent_of_floor},
                    {"full_weight_bytes_per_token", r.full_weight_bytes_per_token},
                    {"full_floor_tokens_per_s", r.full_floor_tokens_per_s},
                    {"tg_percent_of_full_floor", r.tg_percent_of_full_floor},
                };
                std::printf("%s\n", j.dump(2).c_str());
                return kExitOk;
            }
            std::printf("model: %s (%s), backend %s: %s\n", m.file().path().c_str(),
                        format_bytes(m.file().file_size()).c_str(),
                        engine->backend().name().c_str(), kernels.c_str());
            std::string per_run;
            for (double gbs : r.bandwidth_runs_gbs) {
                char run[32];
                std::snprintf(run, sizeof run, "%.1f", gbs);
                per_run += (per_run.empty() ? " (mean of read tests before each tg run: " : " / ") +
                           std::string(run);
            }
            if (!per_run.empty()) per_run += ")";
            std::printf(
                "memory read bandwidth %.1f GB/s%s; %s of weights per token -> floor %.1f tok/s\n",
                r.bandwidth_gbs, per_run.c_str(), format_bytes(r.weight_bytes_per_token).c_str(),
                r.floor_tokens_per_s);
            if (r.full_weight_bytes_per_token != r.weight_bytes_per_token)
                std::printf(
                    "(greedy tokens read the head's int8 screening rows; with the whole F16 head "
                    "a token reads %s -> floor %.1f tok/s, which tg reaches to %.1f%%)\n",
                    format_bytes(r.full_weight_bytes_per_token).c_str(), r.full_floor_tokens_per_s,
                    r.tg_percent_of_full_floor);
            // llama-bench's names: "pp512", "tg128 @ d2048" with tokens already in the cache.
            auto test_name = [&](std::string name) {
                if (o->bench.depth > 0) name += " @ d" + std::to_string(o->bench.depth);
                return name;
            };
            const int width = o->bench.depth > 0 ? 18 : 11;
            std::printf(
                "| %-*s |            t/s | GB/s  | %% of floor |\n|%s|----------------|"
                "-------|------------|\n",
                width, "test", std::string(static_cast<std::size_t>(width) + 2, '-').c_str());
            if (o->bench.prompt_tokens > 0)
                std::printf("| %-*s | %7.2f ± %5.2f |       |            |\n", width,
                            test_name("pp" + std::to_string(o->bench.prompt_tokens)).c_str(),
                            r.pp.mean, r.pp.stddev);
            if (o->bench.gen_tokens > 0)
                std::printf("| %-*s | %7.2f ± %5.2f | %5.1f | %9.1f%% |\n", width,
                            test_name("tg" + std::to_string(o->bench.gen_tokens)).c_str(),
                            r.tg.mean, r.tg.stddev, r.tg_effective_gbs, r.tg_percent_of_floor);
            // Batched rows: aggregate t/s over the sequences; GB/s and % of floor count each
            // step's single pass over all the weights (every row's logits).
            for (const auto& b : r.batched)
                std::printf(
                    "| %-*s | %7.2f ± %5.2f | %5.1f | %9.1f%% |\n", width,
                    test_name("tg" + std::to_string(o->bench.gen_tokens) + " x" +
                              std::to_string(b.batch))
                        .c_str(),
                    b.aggregate.mean, b.aggregate.stddev,
                    b.steps_per_s * static_cast<double>(r.full_weight_bytes_per_token) / 1e9,
                    b.percent_of_floor);
            return kExitOk;
        }};
}

}  // namespace bitnet::cli

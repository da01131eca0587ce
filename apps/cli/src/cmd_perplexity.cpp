// `bitnet perplexity -f TEXTFILE [-c 512] [--stride N] [--json]`: sliding-window perplexity
// (semantics in bitnet/inference/perplexity.hpp and docs/crossval.md).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bitnet/common/error.hpp"
#include "bitnet/common/progress.hpp"
#include "bitnet/inference/perplexity.hpp"
#include "commands.hpp"
#include "generation_options.hpp"

namespace bitnet::cli {

Command add_perplexity_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("perplexity", "Perplexity of a text file with sliding windows");
    struct Options {
        GenerationOptions gen;
        std::string text_file;
        std::int64_t window = 512;
        std::int64_t stride = 0;
        bool json = false;
        bool quiet = false;
    };
    auto o = std::make_shared<Options>();
    o->gen.head = "f16";  // every position's logits: no screening copy (run's auto) to make
    cmd->add_option(
        "-m,--model", o->gen.model,
        "GGUF model (default: BITNET_GGUF, else models/**/*.gguf, else the built-in demo model)");
    cmd->add_option("-f,--file", o->text_file, "UTF-8 text file")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("-c,--ctx-size", o->window, "Window size in tokens")->capture_default_str();
    cmd->add_option(
        "--stride", o->stride,
        "Sliding windows moving by this many tokens, every token scored once (default: llama.cpp's "
        "chunks, second half of each scored)");
    cmd->add_option("-t,--threads", o->gen.threads, "CPU threads");
    cmd->add_option("--kernel", o->gen.kernel, "auto | i2s | tl1 | tl2 | ref")
        ->capture_default_str();
    cmd->add_flag("--json", o->json, "Machine-readable output on stdout");
    cmd->add_flag("--no-progress", o->quiet, "No progress bar");
    return {
        cmd, [o]() {
            if (o->window < 2) fail(ErrorCode::InvalidArgument, "-c must be at least 2");
            const bool sliding = o->stride > 0;
            std::ifstream in(o->text_file, std::ios::binary);
            std::stringstream ss;
            ss << in.rdbuf();
            o->gen.context = o->window;
            auto engine = load_engine(o->gen);
            const auto tokens =
                engine->tokenizer().encode(ss.str(), engine->tokenizer().data().add_bos, false);
            ProgressBar bar("perplexity", 1, !o->quiet && !o->json);
            auto progress = [&bar](std::int64_t done, std::int64_t total) {
                (void)total;
                bar.update(done);
            };
            const auto bos = engine->tokenizer().special_tokens().bos;
            const auto r =
                sliding
                    ? inference::compute_perplexity(*engine, tokens, o->window, o->stride, progress)
                    : inference::compute_perplexity_chunks(
                          *engine, tokens, o->window,
                          engine->tokenizer().data().add_bos && bos ? *bos : -1, progress);
            const std::string mode = sliding
                                         ? "sliding windows, stride " + std::to_string(o->stride)
                                         : "llama.cpp chunks";
            bar.finish();
            if (o->json) {
                nlohmann::json j = {{"file", o->text_file},   {"tokens", tokens.size()},
                                    {"window", o->window},    {"mode", mode},
                                    {"windows", r.windows},   {"scored_tokens", r.scored_tokens},
                                    {"mean_nll", r.mean_nll}, {"perplexity", r.perplexity},
                                    {"seconds", r.seconds}};
                std::printf("%s\n", j.dump(2).c_str());
            } else {
                std::printf(
                    "perplexity %.4f over %lld scored tokens (%lld windows of %lld, %s; %.1f s)\n",
                    r.perplexity, static_cast<long long>(r.scored_tokens),
                    static_cast<long long>(r.windows), static_cast<long long>(o->window),
                    mode.c_str(), r.seconds);
            }
            return kExitOk;
        }};
}

}  // namespace bitnet::cli

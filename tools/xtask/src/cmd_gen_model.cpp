// `xtask gen-model`: writes a synthetic BitNet b1.58 GGUF with the real architecture, names,
// shapes and types, random ternary weights (deterministic per seed) and optionally a real
// tokenizer embedded from a tokenizer.json.
#include <cstdio>
#include <optional>

#include "bitnet/common/error.hpp"
#include "bitnet/common/progress.hpp"
#include "bitnet/common/timer.hpp"
#include "bitnet/models/synthetic_model.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"
#include "commands.hpp"

namespace bitnet::xtask {

Command add_gen_model_command(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "gen-model", "Write a synthetic BitNet b1.58 GGUF model (random ternary weights)");
    struct Options {
        std::string preset = "tiny";
        std::string format = "i2_s";
        std::string tokenizer;
        std::uint64_t seed = 1;
        std::string output;
        bool quiet = false;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("--preset", o->preset, "tiny | small | 2b4t")
        ->check(CLI::IsMember({"tiny", "small", "2b4t"}))
        ->capture_default_str();
    cmd->add_option("--format", o->format, "Ternary weight type: i2_s | tq2_0 | tq1_0 | f16")
        ->check(CLI::IsMember({"i2_s", "tq2_0", "tq1_0", "f16"}))
        ->capture_default_str();
    cmd->add_option("--tokenizer", o->tokenizer,
                    "tokenizer.json to embed (its vocabulary sets the vocab size)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--seed", o->seed, "Random seed (same seed, same file)")->capture_default_str();
    cmd->add_option("-o,--output", o->output, "Output .gguf path")->required();
    cmd->add_flag("-q,--quiet", o->quiet, "No progress bar");
    return {cmd, [o]() {
                Timer timer;
                // Every generated model carries a tokenizer: the given one, else a synthetic
                // byte-level BPE sized to the preset's vocabulary.
                std::optional<tokenizers::TokenizerData> tokenizer;
                if (!o->tokenizer.empty())
                    tokenizer = tokenizers::read_tokenizer_json(o->tokenizer);
                models::SyntheticModelOptions options;
                options.config = models::preset_config(
                    o->preset, tokenizer ? static_cast<std::uint32_t>(tokenizer->vocab_size()) : 0);
                if (!tokenizer)
                    tokenizer = tokenizers::synthetic_tokenizer(options.config.vocab_size);
                options.ternary_type = *quant::type_from_name(o->format);
                options.seed = o->seed;
                options.name = "bitnet synthetic " + o->preset + " (random weights, seed " +
                               std::to_string(o->seed) + ")";
                models::GgufWriter writer =
                    models::synthetic_model_writer(options, [&](models::GgufWriter& w) {
                        tokenizers::write_tokenizer_metadata(w, *tokenizer);
                    });
                ProgressBar bar("writing " + o->output, writer.total_bytes(), !o->quiet);
                writer.write(o->output,
                             [&bar](std::uint64_t done, std::uint64_t) { bar.update(done); });
                bar.finish();
                std::fprintf(stderr, "wrote %s: preset %s, %s weights, vocab %u, %s in %.1fs\n",
                             o->output.c_str(), o->preset.c_str(), o->format.c_str(),
                             options.config.vocab_size, format_bytes(writer.total_bytes()).c_str(),
                             timer.seconds());
                return 0;
            }};
}

}  // namespace bitnet::xtask

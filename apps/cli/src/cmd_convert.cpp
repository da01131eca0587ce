// `bitnet convert IN OUT`: Hugging Face BitNet checkpoint -> GGUF, or GGUF -> GGUF.
#include <cstdio>

#include "bitnet/common/progress.hpp"
#include "commands.hpp"
#include "convert.hpp"

namespace bitnet::cli {

Command add_convert_command(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "convert", "Convert a Hugging Face BitNet checkpoint to GGUF, or re-quantize a GGUF");
    auto o = std::make_shared<convert::ConvertOptions>();
    auto quiet = std::make_shared<bool>(false);
    cmd->add_option("IN", o->input,
                    "Checkpoint directory (config.json + model.safetensors), model.safetensors, "
                    "or a .gguf")
        ->required();
    cmd->add_option("OUT", o->output, "Output .gguf")->required();
    cmd->add_option("--to", o->to, "Ternary projections: i2_s | tq2_0 | tq1_0 | f16")
        ->check(CLI::IsMember({"i2_s", "tq2_0", "tq1_0", "f16"}))
        ->capture_default_str();
    cmd->add_option("--head", o->head,
                    "Embedding/output: f16 | q8_0 (default: f16; a GGUF keeps its own)")
        ->check(CLI::IsMember({"f16", "q8_0"}));
    cmd->add_option("--tokenizer", o->tokenizer,
                    "tokenizer.json to embed (default: the one beside the checkpoint)");
    cmd->add_option("--name", o->name, "general.name of the output");
    cmd->add_flag("-q,--quiet", *quiet, "No progress bar");
    return {cmd, [o, quiet]() {
                o->progress = !*quiet;
                const auto s = convert::convert_model(*o);
                if (s.source == "gguf")
                    std::fprintf(stderr,
                                 "wrote %s: %d tensors, %d re-quantized to %s, %s in %.1f s\n",
                                 o->output.c_str(), s.tensors, s.requantized, o->to.c_str(),
                                 format_bytes(s.bytes).c_str(), s.seconds);
                else
                    std::fprintf(stderr,
                                 "wrote %s: %d tensors; ternary projections as %s: %d already "
                                 "ternary (codes kept), %d ternarized from master weights "
                                 "(absmean); %s in %.1f s\n",
                                 o->output.c_str(), s.tensors, o->to.c_str(), s.ternary_exact,
                                 s.ternary_absmean, format_bytes(s.bytes).c_str(), s.seconds);
                return kExitOk;
            }};
}

}  // namespace bitnet::cli

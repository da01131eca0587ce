// `bitnet inspect FILE [--tensors] [--json]`: what is in a GGUF file.
#include <cstdio>

#include "bitnet/models/gguf_file.hpp"
#include "commands.hpp"
#include "model_summary.hpp"

namespace bitnet::cli {

Command add_inspect_command(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "inspect", "Show header, metadata, architecture, tensors and tokenizer of a GGUF file");
    struct Options {
        std::string path;
        bool tensors = false;
        bool json = false;
        bool metadata = false;
    };
    auto opts = std::make_shared<Options>();
    cmd->add_option("file", opts->path, "GGUF model file")->required();
    cmd->add_flag("--tensors", opts->tensors,
                  "List every tensor (name, type, shape, bytes, offset)");
    cmd->add_flag("--metadata", opts->metadata, "List every metadata key and value");
    cmd->add_flag("--json", opts->json, "Machine-readable output on stdout");
    return {cmd, [opts]() {
                auto file = models::GgufFile::open(opts->path);
                const auto summary = summarize_model(*file, opts->tensors || opts->json);
                if (opts->json) {
                    std::printf("%s\n", summary.dump(2).c_str());
                } else {
                    print_model_summary(summary, opts->tensors, opts->metadata);
                }
                return kExitOk;
            }};
}

}  // namespace bitnet::cli

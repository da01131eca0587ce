// `bitnet validate FILE [--strict] [--json]` (alias `compat-check`): every structural check of
// the loader plus per-tensor content checks. Exit 0 when the file is usable, 1 otherwise, with
// a one-line reason on stderr.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bitnet/common/error.hpp"
#include "bitnet/models/file_checks.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "commands.hpp"

namespace bitnet::cli {
namespace {

std::string one_line(std::string text) {
    for (char& c : text)
        if (c == '\n' || c == '\r') c = ' ';
    return text;
}

}  // namespace

Command add_validate_command(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("validate", "Check that a GGUF model file is well-formed and usable");
    cmd->alias("compat-check");
    struct Options {
        std::string path;
        bool strict = false;
        bool json = false;
    };
    auto opts = std::make_shared<Options>();
    cmd->add_option("file", opts->path, "GGUF model file")->required();
    cmd->add_flag("--strict", opts->strict,
                  "Treat warnings (zero scales, odd ternary fractions) as failures");
    cmd->add_flag("--json", opts->json, "Machine-readable report on stdout");
    return {cmd, [opts]() {
                nlohmann::json report = {{"file", opts->path}};
                std::unique_ptr<models::GgufFile> file;
                try {
                    file = models::GgufFile::open(opts->path);
                } catch (const Error& e) {
                    report["ok"] = false;
                    report["problem"] = one_line(e.what());
                    if (opts->json) std::printf("%s\n", report.dump(2).c_str());
                    std::fprintf(stderr, "invalid: %s\n", one_line(e.what()).c_str());
                    return kExitRuntime;
                }
                const models::FileReport result = models::check_model_file(*file, opts->strict);
                report["ok"] = result.ok();
                report["findings"] = nlohmann::json::array();
                for (const auto& f : result.findings)
                    report["findings"].push_back(
                        {{"fatal", f.fatal}, {"where", f.where}, {"message", one_line(f.message)}});
                std::size_t checked = 0;
                for (const auto& t : result.tensors) checked += t.checked;
                report["tensors_checked"] = checked;
                report["tensor_count"] = result.tensors.size();
                if (opts->json) std::printf("%s\n", report.dump(2).c_str());
                if (!result.ok()) {
                    std::fprintf(stderr, "invalid: %s: %s\n", opts->path.c_str(),
                                 one_line(result.first_problem()).c_str());
                    return kExitRuntime;
                }
                if (!opts->json) {
                    for (const auto& f : result.findings)
                        std::fprintf(stderr, "warning: %s: %s\n", f.where.c_str(),
                                     one_line(f.message).c_str());
                    std::printf(
                        "OK: %s: GGUF v%u, %zu tensors (%zu content-checked), architecture %s\n",
                        opts->path.c_str(), file->version(), result.tensors.size(), checked,
                        file->architecture().c_str());
                }
                return kExitOk;
            }};
}

}  // namespace bitnet::cli

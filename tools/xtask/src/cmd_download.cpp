// `xtask download-model`: fetches a model file from the Hugging Face hub (or HF_ENDPOINT).
#include <unistd.h>

#include <cstdio>

#include "bitnet/common/progress.hpp"
#include "bitnet/common/timer.hpp"
#include "commands.hpp"
#include "hf_download.hpp"

namespace bitnet::xtask {

Command add_download_command(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "download-model",
        "Download a GGUF model from the Hugging Face hub (resumable, checksum-verified)");
    auto o = std::make_shared<DownloadOptions>();
    auto quiet = std::make_shared<bool>(false);
    cmd->add_option("--id", o->repo_id, "Repository on the hub")->capture_default_str();
    cmd->add_option("--file", o->file, "File in the repository")->capture_default_str();
    cmd->add_option("--revision", o->revision, "Branch, tag or commit")->capture_default_str();
    cmd->add_option("--dir", o->dir, "Directory to download into")->capture_default_str();
    cmd->add_option("--sha256", o->expected_sha256,
                    "Expected SHA-256 (default: the hub's X-Linked-Etag when present)");
    cmd->add_option("--retries", o->max_attempts, "Attempts before giving up")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    cmd->add_option("--timeout", o->stall_timeout_s,
                    "Seconds without data before an attempt is abandoned")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
    cmd->add_flag("--force", o->force, "Download even if the file is already there");
    cmd->add_flag("-q,--quiet", *quiet, "No progress bar");
    cmd->footer(
        "Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (bearer "
        "token for gated or private models).");
    return {cmd, [o, quiet]() {
                Timer timer;
                o->progress = !*quiet;
                std::fprintf(stderr, "downloading %s\n", resolve_url(*o).c_str());
                const DownloadResult r = download_model(*o);
                if (!r.already_present)
                    std::fprintf(stderr, "saved %s (%s, %s, %d attempt(s), %.1f s)\n",
                                 r.path.c_str(), format_bytes(r.bytes).c_str(),
                                 r.verified ? "SHA-256 verified" : "size checked", r.attempts,
                                 timer.seconds());
                std::printf("%s\n", r.path.c_str());
                return 0;
            }};
}

}  // namespace bitnet::xtask

// Hugging Face model download over libcurl: {endpoint}/{id}/resolve/{revision}/{file}, following
// redirects, HF_TOKEN bearer auth (never forwarded to another host), resume of a partial
// download from `<file>.part` with an HTTP Range request, retries with exponential backoff on
// 5xx, timeouts and dropped connections (never on 4xx), size and SHA-256 checks against what the
// hub announces (X-Linked-Size / X-Linked-Etag) or a checksum given by the caller, and an atomic
// rename: the final name only ever holds a complete, verified file.
#pragma once

#include <cstdint>
#include <string>

namespace bitnet::xtask {

struct DownloadOptions {
    std::string endpoint;  // empty: $HF_ENDPOINT, else https://huggingface.co
    std::string repo_id = "microsoft/bitnet-b1.58-2B-4T-gguf";
    std::string file = "ggml-model-i2_s.gguf";
    std::string revision = "main";
    std::string dir = "models";
    std::string token;            // empty: $HF_TOKEN (if set)
    std::string expected_sha256;  // optional; else the hub's X-Linked-Etag when it is a SHA-256
    bool force = false;           // download even if the file is already there
    int max_attempts = 5;
    double initial_backoff_s = 1.0;  // doubled after every failed attempt
    long connect_timeout_s = 30;
    long stall_timeout_s = 60;  // an attempt fails when no byte arrives for this long
    bool progress = true;
};

struct DownloadResult {
    std::string path;
    std::uint64_t bytes = 0;
    std::string sha256;
    bool verified = false;         // a checksum was known and matched
    bool already_present = false;  // nothing was downloaded
    int attempts = 0;
};

std::string resolve_url(const DownloadOptions& options);

// Throws bitnet::Error: NotFound (404), PermissionDenied-like messages for 401/403, Io for
// network failures after the last attempt, InvalidFormat for a size or checksum mismatch (the
// partial file is removed in that case).
DownloadResult download_model(const DownloadOptions& options);

}  // namespace bitnet::xtask

// Which model a command uses when -m is not given: BITNET_GGUF, then the first GGUF found under
// ./models/ (where `xtask download-model` puts it), then the built-in demo model. The choice is
// always said on stderr, with how to change it.
#pragma once

#include <string>

namespace bitnet::cli {

struct ModelChoice {
    std::string path;
    std::string reason;  // one line for stderr
    bool builtin = false;
};

// `flag`: the -m value (may be empty). `models_dir`: searched recursively for *.gguf; the
// official file name ggml-model-i2_s.gguf wins, else the first path in sorted order.
ModelChoice discover_model(const std::string& flag, const std::string& models_dir = "models");

}  // namespace bitnet::cli

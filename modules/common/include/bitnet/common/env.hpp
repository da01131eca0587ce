// bitnet::EnvConfig — the one place that reads BITNET_* environment variables.
// Nothing else in the engine calls getenv for configuration. Values are validated here so a
// typo such as BITNET_THREADS=two is reported once, naming the variable, instead of ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace bitnet {

struct EnvConfig {
    std::optional<std::string> gguf;       // BITNET_GGUF: model path used when -m is not given
    std::optional<std::string> tokenizer;  // BITNET_TOKENIZER: tokenizer.json to use instead
    std::optional<std::string> device;     // BITNET_DEVICE: auto | cpu | cuda[:N]
    std::optional<int> threads;            // BITNET_THREADS: positive integer
    std::optional<std::uint64_t> seed;     // BITNET_SEED: unsigned 64-bit integer
    bool deterministic = false;            // BITNET_DETERMINISTIC: 1/true/yes/on
    bool strict_mode = false;              // BITNET_STRICT_MODE: every fallback becomes an error

    // Reads the process environment. Throws bitnet::Error naming the variable on a bad value.
    static EnvConfig from_environment();
    // Same, with an injectable lookup (tests use it instead of setenv).
    static EnvConfig from_lookup(const std::function<const char*(const char*)>& lookup);
};

// The environment as read once per process (cached on first call).
const EnvConfig& env_config();

}  // namespace bitnet

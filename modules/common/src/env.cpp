#include "bitnet/common/env.hpp"

#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "bitnet/common/error.hpp"

namespace bitnet {
namespace {

std::optional<std::string> read_string(const std::function<const char*(const char*)>& lookup,
                                       const char* name) {
    const char* value = lookup(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
}

std::optional<std::uint64_t> read_unsigned(const std::function<const char*(const char*)>& lookup,
                                           const char* name, std::uint64_t min_value) {
    auto text = read_string(lookup, name);
    if (!text) return std::nullopt;
    bool all_digits = text->size() <= 20;
    for (char c : *text) all_digits = all_digits && c >= '0' && c <= '9';
    errno = 0;
    unsigned long long parsed = all_digits ? std::strtoull(text->c_str(), nullptr, 10) : 0;
    if (!all_digits || errno == ERANGE || parsed < min_value) {
        fail(ErrorCode::InvalidArgument,
             std::string("environment variable ") + name + "='" + *text +
                 "' is not a valid number (expected an integer >= " + std::to_string(min_value) +
                 "); fix or unset it");
    }
    return parsed;
}

bool read_flag(const std::function<const char*(const char*)>& lookup, const char* name) {
    auto text = read_string(lookup, name);
    if (!text) return false;
    std::string_view v = *text;
    if (v == "1" || v == "true" || v == "yes" || v == "on" || v == "TRUE" || v == "ON") return true;
    if (v == "0" || v == "false" || v == "no" || v == "off" || v == "FALSE" || v == "OFF")
        return false;
    fail(ErrorCode::InvalidArgument, std::string("environment variable ") + name + "='" + *text +
                                         "' is not a boolean; use 1 or 0");
}

}  // namespace

EnvConfig EnvConfig::from_lookup(const std::function<const char*(const char*)>& lookup) {
    EnvConfig config;
    config.gguf = read_string(lookup, "BITNET_GGUF");
    config.tokenizer = read_string(lookup, "BITNET_TOKENIZER");
    config.device = read_string(lookup, "BITNET_DEVICE");
    if (auto threads = read_unsigned(lookup, "BITNET_THREADS", 1)) {
        if (*threads > 4096)
            fail(ErrorCode::InvalidArgument,
                 "environment variable BITNET_THREADS=" + std::to_string(*threads) +
                     " is larger than 4096; use the number of cores");
        config.threads = static_cast<int>(*threads);
    }
    config.seed = read_unsigned(lookup, "BITNET_SEED", 0);
    config.deterministic = read_flag(lookup, "BITNET_DETERMINISTIC");
    config.strict_mode = read_flag(lookup, "BITNET_STRICT_MODE");
    return config;
}

EnvConfig EnvConfig::from_environment() {
    return from_lookup([](const char* name) { return std::getenv(name); });
}

const EnvConfig& env_config() {
    static const EnvConfig config = EnvConfig::from_environment();
    return config;
}

}  // namespace bitnet

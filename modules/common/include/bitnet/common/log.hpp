// bitnet::log — the logging facade. All engine logging goes through here (spdlog underneath,
// always to stderr so stdout stays clean for generated text and --json output).
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace bitnet::log {

enum class Level { Trace, Debug, Info, Warn, Error, Off };

// Sets the process-wide level; the CLI maps -v / -q onto it. Default: Info.
void set_level(Level level);
Level level();
// Parses "trace|debug|info|warn|error|off"; throws bitnet::Error for anything else.
Level parse_level(std::string_view name);

// Returns the engine's logger (created on first use, writes to stderr).
spdlog::logger& logger();

template <typename... Args>
void debug(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    logger().debug(fmt, std::forward<Args>(args)...);
}
template <typename... Args>
void info(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    logger().info(fmt, std::forward<Args>(args)...);
}
template <typename... Args>
void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    logger().warn(fmt, std::forward<Args>(args)...);
}
template <typename... Args>
void error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    logger().error(fmt, std::forward<Args>(args)...);
}

}  // namespace bitnet::log

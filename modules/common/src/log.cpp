#include "bitnet/common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "bitnet/common/error.hpp"

namespace bitnet::log {
namespace {

spdlog::level::level_enum to_spdlog(Level level) {
    switch (level) {
        case Level::Trace:
            return spdlog::level::trace;
        case Level::Debug:
            return spdlog::level::debug;
        case Level::Info:
            return spdlog::level::info;
        case Level::Warn:
            return spdlog::level::warn;
        case Level::Error:
            return spdlog::level::err;
        case Level::Off:
            return spdlog::level::off;
    }
    return spdlog::level::info;
}

Level g_level = Level::Info;

}  // namespace

spdlog::logger& logger() {
    static std::shared_ptr<spdlog::logger> instance = [] {
        auto created = spdlog::stderr_color_mt("bitnet");
        created->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
        created->set_level(to_spdlog(g_level));
        return created;
    }();
    return *instance;
}

void set_level(Level new_level) {
    g_level = new_level;
    logger().set_level(to_spdlog(new_level));
}

Level level() {
    return g_level;
}

Level parse_level(std::string_view name) {
    if (name == "trace") return Level::Trace;
    if (name == "debug") return Level::Debug;
    if (name == "info") return Level::Info;
    if (name == "warn") return Level::Warn;
    if (name == "error") return Level::Error;
    if (name == "off") return Level::Off;
    fail(ErrorCode::InvalidArgument, "unknown log level '" + std::string(name) +
                                         "'; use trace, debug, info, warn, error or off");
}

}  // namespace bitnet::log

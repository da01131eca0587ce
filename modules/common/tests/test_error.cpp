#include <catch2/catch.hpp>

#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"

using namespace bitnet;

TEST_CASE("fail() throws an Error that carries its code and message") {
    try {
        fail(ErrorCode::InvalidFormat, "model.gguf: bad magic");
        FAIL("fail() returned");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidFormat);
        CHECK(std::string(e.what()) == "model.gguf: bad magic");
    }
}

TEST_CASE("every error code has a human-readable name") {
    for (auto code : {ErrorCode::InvalidArgument, ErrorCode::Io, ErrorCode::InvalidFormat,
                      ErrorCode::Unsupported, ErrorCode::NotFound, ErrorCode::OutOfMemory,
                      ErrorCode::Internal}) {
        CHECK_FALSE(error_code_name(code).empty());
        CHECK(error_code_name(code) != "unknown error");
    }
}

TEST_CASE("log levels parse from their names and reject anything else") {
    CHECK(log::parse_level("debug") == log::Level::Debug);
    CHECK(log::parse_level("off") == log::Level::Off);
    CHECK_THROWS_AS(log::parse_level("loud"), Error);
    log::set_level(log::Level::Warn);
    CHECK(log::level() == log::Level::Warn);
    CHECK(log::logger().level() == spdlog::level::warn);
    log::set_level(log::Level::Info);
}

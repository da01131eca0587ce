#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "bitnet/common/env.hpp"
#include "bitnet/common/error.hpp"

using namespace bitnet;

namespace {
EnvConfig read(const std::map<std::string, std::string>& vars) {
    return EnvConfig::from_lookup([&vars](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
    });
}
}  // namespace

TEST_CASE("an empty environment gives defaults") {
    EnvConfig c = read({});
    CHECK_FALSE(c.gguf);
    CHECK_FALSE(c.threads);
    CHECK_FALSE(c.seed);
    CHECK_FALSE(c.strict_mode);
    CHECK_FALSE(c.deterministic);
}

TEST_CASE("BITNET_* variables are read and typed") {
    EnvConfig c = read({{"BITNET_GGUF", "/m.gguf"},
                        {"BITNET_TOKENIZER", "/t.json"},
                        {"BITNET_DEVICE", "cuda:1"},
                        {"BITNET_THREADS", "6"},
                        {"BITNET_SEED", "18446744073709551615"},
                        {"BITNET_DETERMINISTIC", "yes"},
                        {"BITNET_STRICT_MODE", "1"}});
    CHECK(*c.gguf == "/m.gguf");
    CHECK(*c.tokenizer == "/t.json");
    CHECK(*c.device == "cuda:1");
    CHECK(*c.threads == 6);
    CHECK(*c.seed == 18446744073709551615ull);
    CHECK(c.deterministic);
    CHECK(c.strict_mode);
}

TEST_CASE("bad BITNET_* values are errors that name the variable") {
    auto message_of = [](const std::map<std::string, std::string>& vars) {
        try {
            read(vars);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK_THAT(message_of({{"BITNET_THREADS", "two"}}), Catch::Contains("BITNET_THREADS"));
    CHECK_THAT(message_of({{"BITNET_THREADS", "0"}}), Catch::Contains("BITNET_THREADS"));
    CHECK_THAT(message_of({{"BITNET_THREADS", "-3"}}), Catch::Contains("BITNET_THREADS"));
    CHECK_THAT(message_of({{"BITNET_SEED", "99999999999999999999999"}}),
               Catch::Contains("BITNET_SEED"));
    CHECK_THAT(message_of({{"BITNET_STRICT_MODE", "maybe"}}),
               Catch::Contains("BITNET_STRICT_MODE"));
}

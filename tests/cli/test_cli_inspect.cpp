#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "run_command.hpp"

using namespace bitnet;

TEST_CASE("bitnet inspect --json describes a generated small model") {
    test::TempDir dir("inspect");
    const std::string path = dir.file("small.gguf");
    const auto gen = test::run_command(
        std::string(XTASK_PATH) + " gen-model --preset small --seed 3 -q -o " + test::quoted(path));
    INFO(gen.err);
    REQUIRE(gen.exit_code == 0);
    const auto r =
        test::run_command(std::string(BITNET_CLI_PATH) + " inspect --json " + test::quoted(path));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["tensor_count"] == 2 + 4 * 11);
    CHECK(j["blocks_with_tensors"] == 4);
    CHECK(j["architecture"]["name"] == "bitnet-b1.58");
    CHECK(j["architecture"]["loadable"] == true);
    CHECK(j["architecture"]["vocab_size"] == 512);
    CHECK(j["tensor_types"]["I2_S"]["count"] == 4 * 7);
    CHECK(j["tensors"].size() == 2 + 4 * 11);
    CHECK(j["type_ids_read_as"] == "bitnet.cpp");

    const auto human = test::run_command(std::string(BITNET_CLI_PATH) + " inspect --tensors " +
                                         test::quoted(path));
    REQUIRE(human.exit_code == 0);
    CHECK_THAT(human.out, Catch::Contains("blk.3.ffn_down.weight"));
    CHECK_THAT(human.out, Catch::Contains("4 blocks"));
}

TEST_CASE("bitnet inspect shows the bitnet.cpp fixture's architecture and tokenizer") {
    BITNET_REQUIRE_SHARED("fixtures/bitnet-cpp/mini-bitnet-i2_s.gguf");
    const std::string path =
        (test::shared_dir() / "fixtures/bitnet-cpp/mini-bitnet-i2_s.gguf").string();
    const auto r =
        test::run_command(std::string(BITNET_CLI_PATH) + " inspect --json " + test::quoted(path));
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["architecture"]["name"] == "bitnet");
    CHECK(j["architecture"]["ffn_activation"] == "silu");
    CHECK(j["tokenizer"]["tokens"] == 128256);
    CHECK(j["tokenizer"]["model"] == "gpt2");
}

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "run_command.hpp"

using namespace bitnet;

namespace {
std::string bitnet_cli() {
    return BITNET_CLI_PATH;
}
}  // namespace

TEST_CASE(
    "bitnet tokenize / detokenize round-trip through a generated model's embedded tokenizer") {
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama2/tokenizer.json");
    test::TempDir dir("cli-tok");
    const std::string model = dir.file("tiny-llama2.gguf");
    const std::string tok =
        (test::shared_dir() / "fixtures/tokenizers/llama2/tokenizer.json").string();
    REQUIRE(test::run_command(std::string(XTASK_PATH) + " gen-model --preset tiny -q --tokenizer " +
                              test::quoted(tok) + " -o " + test::quoted(model))
                .exit_code == 0);
    const std::string text = "Hello wörld, 1234!";
    const auto from_model = test::run_command(bitnet_cli() + " tokenize --json -m " +
                                              test::quoted(model) + " " + test::quoted(text));
    const auto from_json = test::run_command(bitnet_cli() + " tokenize --json --tokenizer " +
                                             test::quoted(tok) + " " + test::quoted(text));
    REQUIRE(from_model.exit_code == 0);
    REQUIRE(from_json.exit_code == 0);
    const auto ids = nlohmann::json::parse(from_model.out)["ids"];
    CHECK(ids == nlohmann::json::parse(from_json.out)["ids"]);
    CHECK(ids[0] == 1);  // LLaMA 2 BOS
    std::string id_list;
    for (const auto& id : ids) id_list += std::to_string(id.get<int>()) + ",";
    const auto back = test::run_command(bitnet_cli() + " detokenize --skip-special -m " +
                                        test::quoted(model) + " " + id_list);
    REQUIRE(back.exit_code == 0);
    CHECK(back.out == text + "\n");
}

TEST_CASE("bitnet tokenize --ids-only prints the LLaMA 3 ids with BOS") {
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama3/tokenizer.json");
    const std::string tok =
        (test::shared_dir() / "fixtures/tokenizers/llama3/tokenizer.json").string();
    const auto r = test::run_command(bitnet_cli() + " tokenize --ids-only --tokenizer " +
                                     test::quoted(tok) + " 'Hello, world!'");
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == "128000 9906 11 1917 0\n");
    const auto no_bos =
        test::run_command(bitnet_cli() + " tokenize --ids-only --no-bos --tokenizer " +
                          test::quoted(tok) + " 'Hello'");
    CHECK(no_bos.out == "9906\n");
}

TEST_CASE("tokenize/detokenize errors: no tokenizer, bad ids, ids out of range") {
    const auto none = test::run_command("env -u BITNET_GGUF -u BITNET_TOKENIZER " + bitnet_cli() +
                                        " tokenize hello");
    CHECK(none.exit_code == 2);
    CHECK_THAT(none.err, Catch::Contains("--tokenizer"));
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama3/tokenizer.json");
    const std::string tok =
        (test::shared_dir() / "fixtures/tokenizers/llama3/tokenizer.json").string();
    const auto bad = test::run_command(bitnet_cli() + " detokenize --tokenizer " +
                                       test::quoted(tok) + " 12,abc");
    CHECK(bad.exit_code == 2);
    CHECK_THAT(bad.err, Catch::Contains("'abc'"));
    const auto range = test::run_command(bitnet_cli() + " detokenize --tokenizer " +
                                         test::quoted(tok) + " 999999");
    CHECK(range.exit_code == 2);
    CHECK_THAT(range.err, Catch::Contains("outside the vocabulary"));
}

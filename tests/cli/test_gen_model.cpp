#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "bitnet/models/gguf_file.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"
#include "run_command.hpp"

using namespace bitnet;

TEST_CASE("xtask gen-model is deterministic per seed") {
    test::TempDir dir("gen");
    auto gen = [&](const std::string& name, int seed) {
        const std::string path = dir.file(name);
        const auto r =
            test::run_command(std::string(XTASK_PATH) + " gen-model --preset tiny -q --seed " +
                              std::to_string(seed) + " -o " + test::quoted(path));
        REQUIRE(r.exit_code == 0);
        return test::read_text(path);
    };
    const std::string a = gen("a.gguf", 1), b = gen("b.gguf", 1), c = gen("c.gguf", 2);
    CHECK(a == b);
    CHECK(a != c);
}

TEST_CASE("xtask gen-model embeds the LLaMA 3 tokenizer and sizes the vocabulary from it") {
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama3/tokenizer.json");
    test::TempDir dir("gen-tok");
    const std::string path = dir.file("tiny-llama3.gguf");
    const std::string tok =
        (test::shared_dir() / "fixtures/tokenizers/llama3/tokenizer.json").string();
    const auto r =
        test::run_command(std::string(XTASK_PATH) + " gen-model --preset tiny -q --tokenizer " +
                          test::quoted(tok) + " -o " + test::quoted(path));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto file = models::GgufFile::open(path);
    CHECK(file->tensor("token_embd.weight").ne[1] == 128256);
    const auto data = tokenizers::read_gguf_tokenizer(*file);
    const auto original = tokenizers::read_tokenizer_json(tok);
    CHECK(data.tokens == original.tokens);
    CHECK(data.merges == original.merges);
    CHECK(data.token_types == original.token_types);
    CHECK(data.bos == original.bos);
    CHECK(data.eot == original.eot);
    CHECK(data.chat_template == original.chat_template);
    const auto v =
        test::run_command(std::string(BITNET_CLI_PATH) + " validate " + test::quoted(path));
    CHECK(v.exit_code == 0);
}

TEST_CASE("xtask gen-model writes every ternary format") {
    test::TempDir dir("gen-formats");
    for (const char* format : {"i2_s", "tq2_0", "tq1_0", "f16"}) {
        const std::string path = dir.file(std::string(format) + ".gguf");
        const auto r =
            test::run_command(std::string(XTASK_PATH) + " gen-model --preset small -q --format " +
                              format + " -o " + test::quoted(path));
        REQUIRE(r.exit_code == 0);
        const auto v =
            test::run_command(std::string(BITNET_CLI_PATH) + " validate " + test::quoted(path));
        INFO(format << ": " << v.err);
        CHECK(v.exit_code == 0);
    }
}

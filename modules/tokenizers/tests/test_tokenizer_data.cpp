#include <catch2/catch.hpp>

#include <fstream>

#include "bitnet/common/error.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/tokenizers/tokenizer.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"
#include "test_support.hpp"

using namespace bitnet;

TEST_CASE("the LLaMA 3 tokenizer.json reads as byte-level BPE with its special tokens") {
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama3/tokenizer.json");
    auto data = tokenizers::read_tokenizer_json(
        (test::shared_dir() / "fixtures/tokenizers/llama3/tokenizer.json").string());
    CHECK(data.model == "gpt2");
    CHECK(data.pre == "llama-bpe");
    CHECK(data.vocab_size() == 128256);
    CHECK(data.merges.size() == 280147);
    CHECK(data.bos == 128000);
    CHECK(data.eos.has_value());
    CHECK(data.eot == 128009);
    CHECK(data.tokens[128006] == "<|start_header_id|>");
    CHECK(data.token_types[128006] == static_cast<int>(tokenizers::TokenType::Control));
    CHECK(data.token_types[0] == static_cast<int>(tokenizers::TokenType::Normal));
    CHECK_FALSE(data.chat_template.empty());
}

TEST_CASE("the LLaMA 2 tokenizer.json reads as SentencePiece BPE with byte tokens and scores") {
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama2/tokenizer.json");
    auto data = tokenizers::read_tokenizer_json(
        (test::shared_dir() / "fixtures/tokenizers/llama2/tokenizer.json").string());
    CHECK(data.model == "llama");
    CHECK(data.vocab_size() == 32000);
    CHECK(data.bos == 1);
    CHECK(data.eos == 2);
    CHECK(data.unk == 0);
    CHECK(data.tokens[3] == "<0x00>");
    CHECK(data.token_types[3] == static_cast<int>(tokenizers::TokenType::Byte));
    REQUIRE(data.scores.size() == 32000);
    // The first merge ("▁ t") gives "▁t" the highest merge score.
    auto t = data.id_of("\xE2\x96\x81t");
    REQUIRE(t);
    CHECK(data.scores[*t] == -1.0f);
}

TEST_CASE("tokenizer data survives a GGUF metadata round trip") {
    tokenizers::TokenizerData data;
    data.model = "gpt2";
    data.pre = "llama-bpe";
    data.tokens = {"a", "b", "ab", "<|bos|>"};
    data.token_types = {1, 1, 1, 3};
    data.merges = {"a b"};
    data.bos = 3;
    data.chat_template = "{{ x }}";
    models::GgufWriter writer;
    writer.set_string("general.architecture", "bitnet-b1.58");
    tokenizers::write_tokenizer_metadata(writer, data);
    auto bytes = writer.to_bytes();
    auto file = models::GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf");
    auto back = tokenizers::read_gguf_tokenizer(*file);
    CHECK(back.model == data.model);
    CHECK(back.pre == data.pre);
    CHECK(back.tokens == data.tokens);
    CHECK(back.token_types == data.token_types);
    CHECK(back.merges == data.merges);
    CHECK(back.bos == 3);
    CHECK_FALSE(back.eos);
    CHECK(back.chat_template == data.chat_template);
}

TEST_CASE("a malformed tokenizer.json is a clear error naming the file") {
    test::TempDir dir("tok-bad");
    const std::string path = dir.file("tokenizer.json");
    std::ofstream(path)
        << "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 5}, \"merges\": []}, "
           "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}";
    try {
        tokenizers::read_tokenizer_json(path);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Catch::Contains(path));
        CHECK_THAT(e.what(), Catch::Contains("contiguous"));
    }
    std::ofstream(path) << "{not json";
    CHECK_THROWS_AS(tokenizers::read_tokenizer_json(path), Error);
}

TEST_CASE("the synthetic tokenizer is a working byte-level BPE of the requested size") {
    for (std::uint32_t vocab : {259u, 512u, 128256u}) {
        auto tok = tokenizers::create_tokenizer(tokenizers::synthetic_tokenizer(vocab));
        CHECK(tok->vocab_size() == vocab);
        const std::string text = "the quick brown fox, 42 ümlauts";
        const auto ids = tok->encode(text, true, false);
        CHECK(ids.front() == *tok->special_tokens().bos);
        CHECK(tok->decode(ids, true) == text);
        if (vocab >= 512) CHECK(ids.size() < text.size());  // letter pairs merged
        CHECK(tok->is_end_of_generation(*tok->special_tokens().eot));
    }
    CHECK_THROWS_AS(tokenizers::synthetic_tokenizer(100), Error);
}

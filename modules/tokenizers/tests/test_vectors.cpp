#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/gguf_writer.hpp"
#include "bitnet/tokenizers/tokenizer.hpp"
#include "test_support.hpp"

using namespace bitnet;

namespace {

struct Vector {
    std::string text;
    std::vector<std::int32_t> ids;
};

std::vector<Vector> read_vectors(const std::string& path) {
    std::vector<Vector> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        const auto j = nlohmann::json::parse(line);
        out.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<std::int32_t>>()});
    }
    return out;
}

// Every vector must encode to exactly its ids and decode back to its text.
void check_all_vectors(const tokenizers::Tokenizer& tok, const std::vector<Vector>& vectors) {
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < vectors.size(); ++i) {
        const Vector& v = vectors[i];
        const auto ids = tok.encode(v.text, false, false);
        if (ids != v.ids) {
            ++mismatches;
            UNSCOPED_INFO("line " << i + 1
                                  << " encodes differently: " << nlohmann::json(v.text).dump()
                                  << "\n  expected " << nlohmann::json(v.ids).dump()
                                  << "\n  got      " << nlohmann::json(ids).dump());
        }
        const std::string text = tok.decode(v.ids);
        if (text != v.text) {
            ++mismatches;
            UNSCOPED_INFO("line " << i + 1
                                  << " decodes differently: " << nlohmann::json(text).dump());
        }
    }
    CHECK(mismatches == 0);
    CHECK(vectors.size() > 100);
}

std::unique_ptr<tokenizers::Tokenizer> through_gguf(const std::string& tokenizer_json,
                                                    std::vector<std::uint8_t>& storage) {
    models::GgufWriter writer;
    writer.set_string("general.architecture", "bitnet-b1.58");
    tokenizers::write_tokenizer_metadata(writer, tokenizers::read_tokenizer_json(tokenizer_json));
    storage = writer.to_bytes();
    auto file = models::GgufFile::parse(storage.data(), storage.size(), "tokenizer.gguf");
    return tokenizers::load_tokenizer(*file);
}

}  // namespace

TEST_CASE("LLaMA 3 vectors: tokenizer.json encodes and decodes every line exactly") {
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama3/vectors.jsonl");
    const auto dir = test::shared_dir() / "fixtures/tokenizers/llama3";
    auto tok = tokenizers::load_tokenizer_json((dir / "tokenizer.json").string());
    check_all_vectors(*tok, read_vectors((dir / "vectors.jsonl").string()));
}

TEST_CASE("LLaMA 3 vectors: the same through GGUF metadata") {
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama3/vectors.jsonl");
    const auto dir = test::shared_dir() / "fixtures/tokenizers/llama3";
    std::vector<std::uint8_t> storage;
    auto tok = through_gguf((dir / "tokenizer.json").string(), storage);
    check_all_vectors(*tok, read_vectors((dir / "vectors.jsonl").string()));
}

TEST_CASE("LLaMA 2 vectors: tokenizer.json encodes and decodes every line exactly") {
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama2/vectors.jsonl");
    const auto dir = test::shared_dir() / "fixtures/tokenizers/llama2";
    auto tok = tokenizers::load_tokenizer_json((dir / "tokenizer.json").string());
    check_all_vectors(*tok, read_vectors((dir / "vectors.jsonl").string()));
}

TEST_CASE("LLaMA 2 vectors: the same through GGUF metadata") {
    BITNET_REQUIRE_SHARED("fixtures/tokenizers/llama2/vectors.jsonl");
    const auto dir = test::shared_dir() / "fixtures/tokenizers/llama2";
    std::vector<std::uint8_t> storage;
    auto tok = through_gguf((dir / "tokenizer.json").string(), storage);
    check_all_vectors(*tok, read_vectors((dir / "vectors.jsonl").string()));
}

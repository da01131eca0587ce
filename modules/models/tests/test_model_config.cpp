#include <catch2/catch.hpp>

#include <cstring>

#include "bitnet/common/error.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/model_config.hpp"
#include "bitnet/models/synthetic_model.hpp"

using namespace bitnet;

namespace {

std::unique_ptr<models::GgufFile> parse_owned(const std::vector<std::uint8_t>& bytes) {
    return models::GgufFile::parse(bytes.data(), bytes.size(), "model.gguf");
}

std::string config_error(const std::vector<std::uint8_t>& bytes) {
    auto f = parse_owned(bytes);
    try {
        models::read_model_config(*f);
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("the 2b4t preset has the exact 2B4T shapes and 332 tensors") {
    const auto c = models::preset_config("2b4t");
    CHECK(c.hidden == 2560);
    CHECK(c.block_count == 30);
    CHECK(c.ffn_hidden == 6912);
    CHECK(c.head_count == 20);
    CHECK(c.head_count_kv == 5);
    CHECK(c.head_dim == 128);
    CHECK(c.vocab_size == 128256);
    std::size_t required = 0;
    for (const auto& e : models::expected_tensors(c)) required += !e.optional;
    CHECK(required == 332);
}

TEST_CASE("a synthetic small model reads back with the config it was written from") {
    models::SyntheticModelOptions o;
    o.config = models::preset_config("small");
    const auto bytes = models::synthetic_model_writer(o).to_bytes();
    auto f = parse_owned(bytes);
    const auto c = models::read_model_config(*f);
    CHECK(c.architecture == models::Architecture::BitnetB158);
    CHECK(c.hidden == 256);
    CHECK(c.block_count == 4);
    CHECK(c.head_count == 4);
    CHECK(c.head_count_kv == 2);
    CHECK(c.ffn_hidden == 512);
    CHECK(c.vocab_size == 512);
    CHECK(c.rope_freq_base == 500000.0f);
    CHECK(c.tied_output);
    CHECK(c.ffn_activation == models::FfnActivation::ReluSquared);
}

TEST_CASE("synthetic models are deterministic per seed and differ across seeds") {
    models::SyntheticModelOptions o;
    o.config = models::preset_config("tiny");
    o.seed = 5;
    const auto a = models::synthetic_model_writer(o).to_bytes();
    const auto b = models::synthetic_model_writer(o).to_bytes();
    o.seed = 6;
    const auto c = models::synthetic_model_writer(o).to_bytes();
    CHECK(a == b);
    CHECK(a != c);
}

TEST_CASE("every ternary format writes a loadable model") {
    for (auto type :
         {quant::TypeId::I2_S, quant::TypeId::TQ2_0, quant::TypeId::TQ1_0, quant::TypeId::F16}) {
        models::SyntheticModelOptions o;
        o.config =
            models::preset_config("small");  // TQ formats need rows that are multiples of 256
        o.ternary_type = type;
        const auto bytes = models::synthetic_model_writer(o).to_bytes();
        auto f = parse_owned(bytes);
        CHECK_NOTHROW(models::read_model_config(*f));
        CHECK(f->tensor("blk.0.ffn_down.weight").type_id == static_cast<std::uint32_t>(type));
    }
}

TEST_CASE("unsupported architectures and missing keys are named in the error") {
    models::GgufWriter w;
    w.set_string("general.architecture", "llama");
    CHECK_THAT(config_error(w.to_bytes()), Catch::Contains("unsupported architecture 'llama'"));

    models::GgufWriter w2;
    w2.set_string("general.architecture", "bitnet-b1.58");
    CHECK_THAT(config_error(w2.to_bytes()), Catch::Contains("bitnet-b1.58.context_length"));
}

TEST_CASE("TQ formats refuse presets whose rows are not multiples of 256") {
    models::SyntheticModelOptions o;
    o.config = models::preset_config("tiny");
    o.ternary_type = quant::TypeId::TQ2_0;
    CHECK_THROWS_WITH(models::synthetic_model_writer(o), Catch::Contains("multiples of 256"));
}

TEST_CASE("a tensor whose shape disagrees with the config is named with both shapes") {
    models::SyntheticModelOptions o;
    o.config = models::preset_config("tiny");
    // Write the file claiming a larger FFN than its tensors have.
    const auto bytes = models::synthetic_model_writer(o, [](models::GgufWriter& w) {
                           w.set_u32("test.marker", 1);
                       }).to_bytes();
    auto f = parse_owned(bytes);
    const auto good = models::read_model_config(*f);
    models::ModelConfig wrong = good;
    wrong.ffn_hidden = 512;
    models::SyntheticModelOptions o2;
    o2.config = wrong;
    auto mismatched = models::synthetic_model_writer(o2).to_bytes();
    // Patch the feed_forward_length back to 384 so the tensors (512) disagree with it.
    const auto f2 = parse_owned(mismatched);
    for (const auto& m : f2->metadata()) {
        if (m.key == "bitnet-b1.58.feed_forward_length") {
            const std::uint64_t value_at = m.offset + 8 + m.key.size() + 4;
            const std::uint32_t v = 384;
            std::memcpy(mismatched.data() + value_at, &v, 4);
        }
    }
    const std::string message = config_error(mismatched);
    CHECK_THAT(message, Catch::Contains("blk.0.ffn_gate.weight"));
    CHECK_THAT(message, Catch::Contains("[128, 512]"));
    CHECK_THAT(message, Catch::Contains("[128, 384]"));
}

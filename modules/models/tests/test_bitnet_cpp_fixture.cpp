#include <catch2/catch.hpp>

#include <cmath>

#include "bitnet/models/file_checks.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/model_config.hpp"
#include "bitnet/quantization/formats.hpp"
#include "test_support.hpp"

using namespace bitnet;

TEST_CASE("the file written by bitnet.cpp loads unchanged with the documented config") {
    BITNET_REQUIRE_SHARED("fixtures/bitnet-cpp/mini-bitnet-i2_s.gguf");
    auto file = models::GgufFile::open(
        (test::shared_dir() / "fixtures/bitnet-cpp/mini-bitnet-i2_s.gguf").string());
    CHECK(file->provenance() == quant::FileProvenance::BitnetCpp);
    const auto c = models::read_model_config(*file);
    CHECK(c.architecture == models::Architecture::Bitnet);
    CHECK(c.hidden == 128);
    CHECK(c.block_count == 4);
    CHECK(c.head_count == 2);
    CHECK(c.head_count_kv == 1);
    CHECK(c.head_dim == 64);
    CHECK(c.ffn_hidden == 384);
    CHECK(c.vocab_size == 128256);
    CHECK(c.rope_freq_base == 500000.0f);
    CHECK(c.ffn_activation == models::FfnActivation::Silu);
    CHECK(c.tied_output);

    const auto& q = file->tensor("blk.0.attn_q.weight");
    CHECK(q.type_id == static_cast<std::uint32_t>(quant::TypeId::I2_S));
    CHECK(q.size_bytes == q.n_elements / 4 + 32);
    const float scale = quant::i2s_scale(q.data, static_cast<std::int64_t>(q.n_elements));
    CHECK(std::isfinite(scale));
    CHECK(scale > 0.0f);

    const auto report = models::check_model_file(*file, false);
    INFO(report.first_problem());
    CHECK(report.ok());
}

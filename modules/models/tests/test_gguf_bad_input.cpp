#include <catch2/catch.hpp>

#include "bad_gguf.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/models/file_checks.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/gguf_writer.hpp"

using namespace bitnet;

TEST_CASE("the valid tiny model passes every check") {
    const auto bytes = test::valid_tiny_model_bytes();
    auto file = models::GgufFile::parse(bytes.data(), bytes.size(), "tiny.gguf");
    const auto report = models::check_model_file(*file, true);
    INFO(report.first_problem());
    CHECK(report.ok());
}

TEST_CASE("every corrupt file is refused with a clear error naming the file") {
    for (const auto& bad : test::bad_gguf_cases()) {
        DYNAMIC_SECTION(bad.name) {
            const std::string label = bad.name + ".gguf";
            if (bad.structural) {
                try {
                    models::GgufFile::parse(bad.bytes.data(), bad.bytes.size(), label);
                    FAIL("accepted a corrupt file: " << bad.name);
                } catch (const Error& e) {
                    INFO(e.what());
                    CHECK(e.code() == ErrorCode::InvalidFormat);
                    CHECK_THAT(e.what(), Catch::StartsWith(label + ": "));
                    CHECK_THAT(e.what(), Catch::Contains(bad.expected_fragment));
                    CHECK(std::string(e.what()).find('\n') == std::string::npos);
                }
            } else {
                auto file = models::GgufFile::parse(bad.bytes.data(), bad.bytes.size(), label);
                const auto report = models::check_model_file(*file, false);
                CHECK_FALSE(report.ok());
                CHECK_THAT(report.first_problem(), Catch::Contains(bad.expected_fragment));
            }
        }
    }
}

TEST_CASE("every truncation point of a valid file is an error, never a crash") {
    const auto good = test::valid_tiny_model_bytes();
    // Every prefix up to the end of the tensor infos, then a stride through the data.
    auto first = models::GgufFile::parse(good.data(), good.size(), "tiny");
    const std::size_t header_end = first->data_offset();
    for (std::size_t size = 0; size < good.size(); size += (size < header_end ? 1 : 997)) {
        std::vector<std::uint8_t> cut(good.begin(),
                                      good.begin() + static_cast<std::ptrdiff_t>(size));
        CHECK_THROWS_AS(models::GgufFile::parse(cut.data(), cut.size(), "cut"), Error);
    }
}

TEST_CASE("TL1/TL2 tensors of bitnet.cpp files are recognised and refused with the fix") {
    models::GgufWriter w;
    w.set_string("general.architecture", "bitnet-b1.58");
    w.add_tensor_sized("blk.0.attn_q.weight", 39, {256, 256}, 256 * 256 / 4, {});
    const auto bytes = w.to_bytes();
    auto file = models::GgufFile::parse(bytes.data(), bytes.size(), "tl2.gguf");
    CHECK(file->tensors()[0].traits.name == "TL2");
    const auto report = models::check_model_file(*file, false);
    CHECK_FALSE(report.ok());
    CHECK_THAT(report.first_problem(), Catch::Contains("convert"));
}

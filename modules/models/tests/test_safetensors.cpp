#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bitnet/common/error.hpp"
#include "bitnet/models/safetensors_file.hpp"
#include "test_support.hpp"

using namespace bitnet;
using nlohmann::json;

namespace {

// Writes header length + header + data exactly as given (tests forge broken files with it).
std::string write_raw(const test::TempDir& dir, const std::string& name, const std::string& header,
                      const std::string& data, std::int64_t header_len = -1) {
    const std::string path = dir.file(name);
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t len =
        header_len < 0 ? header.size() : static_cast<std::uint64_t>(header_len);
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << header << data;
    return path;
}

std::string bytes_of(const void* p, std::size_t n) {
    return std::string(static_cast<const char*>(p), n);
}

}  // namespace

TEST_CASE("safetensors: F32, F16 and BF16 tensors read back as their values") {
    test::TempDir dir("st-ok");
    const float f32[3] = {1.5f, -2.0f, 0.25f};
    const std::uint16_t f16[2] = {0x3C00, 0xC000};   // 1.0, -2.0
    const std::uint16_t bf16[2] = {0x3FC0, 0xBF80};  // 1.5, -1.0
    const std::string data = bytes_of(f32, 12) + bytes_of(f16, 4) + bytes_of(bf16, 4);
    const json header = {{"__metadata__", {{"format", "pt"}}},
                         {"a", {{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 12}}}},
                         {"b", {{"dtype", "F16"}, {"shape", {1, 2}}, {"data_offsets", {12, 16}}}},
                         {"c", {{"dtype", "BF16"}, {"shape", {2}}, {"data_offsets", {16, 20}}}}};
    const auto f =
        models::SafetensorsFile::open(write_raw(dir, "ok.safetensors", header.dump(), data));
    REQUIRE(f->tensors().size() == 3);
    CHECK(f->metadata().at("format") == "pt");
    CHECK(f->to_f32(f->tensor("a")) == std::vector<float>{1.5f, -2.0f, 0.25f});
    CHECK(f->to_f32(f->tensor("b")) == std::vector<float>{1.0f, -2.0f});
    CHECK(f->tensor("b").shape == std::vector<std::int64_t>{1, 2});
    CHECK(f->to_f32(f->tensor("c")) == std::vector<float>{1.5f, -1.0f});
    CHECK_THROWS_WITH(f->tensor("missing"), Catch::Contains("'missing' is missing"));
}

TEST_CASE("safetensors: every broken file is a clear error naming the problem") {
    test::TempDir dir("st-bad");
    const std::string data(16, '\0');
    auto entry = [](const char* dtype, json shape, std::uint64_t b, std::uint64_t e) {
        return json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", {b, e}}};
    };
    struct Case {
        std::string name, header, data;
        std::int64_t header_len;
        std::string message;
    };
    const std::vector<Case> cases = {
        {"short", "", "", -1, "fewer than the 8-byte header length"},
        {"len-past-eof", json{{"a", entry("F32", {4}, 0, 16)}}.dump(), data, 1 << 20,
         "runs past the end"},
        {"bad-json", "{\"a\": [", data, -1, "does not parse"},
        {"not-object", "[1,2]", data, -1, "not an object"},
        {"no-offsets", json{{"a", {{"dtype", "F32"}, {"shape", {4}}}}}.dump(), data, -1,
         "needs dtype, shape and data_offsets"},
        {"unknown-dtype", json{{"a", entry("Q4", {4}, 0, 16)}}.dump(), data, -1, "dtype 'Q4'"},
        {"negative-shape", json{{"a", entry("F32", {-4}, 0, 16)}}.dump(), data, -1,
         "not a non-negative integer"},
        {"past-data", json{{"a", entry("F32", {8}, 0, 32)}}.dump(), data, -1,
         "outside the 16 bytes"},
        {"truncated", json{{"a", entry("F32", {4}, 0, 16)}}.dump(), data.substr(0, 10), -1,
         "outside the 10 bytes"},
        {"size-mismatch", json{{"a", entry("F32", {3}, 0, 16)}}.dump(), data, -1,
         "holds 16 bytes but its shape and F32 need 12"},
        {"overlap", json{{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {2}, 4, 12)}}.dump(),
         data, -1, "overlap"},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        const std::string path =
            c.name == "short" ? [&] {
                const std::string p = dir.file("short.safetensors");
                std::ofstream(p, std::ios::binary) << "abc";
                return p;
            }()
                              : write_raw(dir, c.name + ".safetensors", c.header, c.data, c.header_len);
        try {
            models::SafetensorsFile::open(path);
            FAIL("no error for " << c.name);
        } catch (const Error& e) {
            CHECK_THAT(e.what(), Catch::Contains(c.message) && Catch::Contains(path));
        }
    }
    // A dtype the converter cannot read is refused when its values are asked for.
    const std::int8_t ints[4] = {1, -1, 0, 1};
    const auto f = models::SafetensorsFile::open(write_raw(
        dir, "i8.safetensors", json{{"q", entry("I8", {4}, 0, 4)}}.dump(), bytes_of(ints, 4)));
    CHECK_THROWS_WITH(f->to_f32(f->tensor("q")), Catch::Contains("F32, F16 and BF16"));
}

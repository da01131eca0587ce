#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/gguf_writer.hpp"
#include "bitnet/quantization/fp16.hpp"
#include "bitnet/quantization/type_traits.hpp"
#include "test_support.hpp"

using namespace bitnet;
using quant::TypeId;

namespace {

std::vector<float> random_values(std::size_t n, std::uint32_t seed, bool ternary) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> trit(-1, 1);
    std::vector<float> v(n);
    for (auto& x : v) x = ternary ? 0.25f * static_cast<float>(trit(rng)) : normal(rng);
    if (ternary) v[0] = 0.25f;
    return v;
}

}  // namespace

TEST_CASE(
    "quantize -> write -> read -> dequantize equals the scalar reference for every writable type") {
    test::TempDir dir("roundtrip");
    const std::vector<TypeId> types = {TypeId::F32,  TypeId::F16,   TypeId::BF16,  TypeId::Q8_0,
                                       TypeId::Q4_0, TypeId::TQ2_0, TypeId::TQ1_0, TypeId::I2_S};
    const std::uint64_t cols = 256, rows = 6;
    const std::uint64_t n = cols * rows;
    std::map<TypeId, std::vector<float>> inputs;
    models::GgufWriter writer;
    writer.set_string("general.architecture", "bitnet-b1.58");
    for (TypeId id : types) {
        const bool ternary = id == TypeId::TQ2_0 || id == TypeId::TQ1_0 || id == TypeId::I2_S;
        inputs[id] = random_values(n, static_cast<std::uint32_t>(id) + 1, ternary);
        const quant::TypeTraits& t = quant::traits(id);
        const std::vector<float>& x = inputs[id];
        writer.add_tensor(std::string(t.name) + ".weight", t.id, {cols, rows},
                          [&t, &x](std::uint8_t* out, std::uint64_t) {
                              t.quantize(x.data(), static_cast<std::int64_t>(x.size()), out);
                          });
    }
    const std::string path = dir.file("all-types.gguf");
    writer.write(path);
    auto file = models::GgufFile::open(path);
    REQUIRE(file->tensors().size() == types.size());
    for (TypeId id : types) {
        const quant::TypeTraits& t = quant::traits(id);
        const auto& info = file->tensor(std::string(t.name) + ".weight");
        CHECK(info.type_id == t.id);
        CHECK(info.size_bytes == quant::tensor_bytes(t, n));
        CHECK(info.file_offset % file->alignment() == 0);
        // Reference: the same quantize + dequantize in memory, without the file.
        std::vector<std::uint8_t> packed(quant::tensor_bytes(t, n));
        t.quantize(inputs[id].data(), static_cast<std::int64_t>(n), packed.data());
        std::vector<float> expected(n), actual(n);
        t.dequantize(packed.data(), static_cast<std::int64_t>(n), expected.data());
        t.dequantize(info.data, static_cast<std::int64_t>(n), actual.data());
        CHECK(std::memcmp(actual.data(), expected.data(), n * 4) == 0);
        if (id == TypeId::I2_S || id == TypeId::TQ2_0 || id == TypeId::TQ1_0 || id == TypeId::F32)
            CHECK(actual == inputs[id]);  // lossless for these inputs
    }
}

TEST_CASE("metadata of every value type round-trips") {
    models::GgufWriter w;
    w.set_u8("a.u8", 200);
    w.set_u32("a.u32", 4000000000u);
    w.set_i32("a.i32", -5);
    w.set_u64("a.u64", 1ull << 40);
    w.set_f32("a.f32", 0.5f);
    w.set_bool("a.bool", true);
    w.set_string("a.string", "h\xC3\xA9llo");
    w.set_string_array("a.strings", {"x", "", "zz"});
    w.set_i32_array("a.ints", {1, -2, 3});
    w.set_f32_array("a.floats", {1.5f, -2.0f});
    const auto bytes = w.to_bytes();
    auto f = models::GgufFile::parse(bytes.data(), bytes.size(), "mem");
    CHECK(f->version() == 3);
    CHECK(f->get_u64("a.u8") == 200);
    CHECK(f->get_u64("a.u32") == 4000000000u);
    CHECK(f->get("a.i32").to_i64("a.i32") == -5);
    CHECK_THROWS_AS(f->get_u64("a.i32"), Error);  // negative into unsigned
    CHECK(f->get_u64("a.u64") == 1ull << 40);
    CHECK(f->get_f64("a.f32") == 0.5);
    CHECK(f->get("a.bool").to_bool("a.bool"));
    CHECK(f->get_string("a.string") == "h\xC3\xA9llo");
    CHECK(f->get("a.strings").to_string_array("a.strings") ==
          std::vector<std::string_view>{"x", "", "zz"});
    CHECK(f->get("a.ints").to_int_array("a.ints") == std::vector<std::int64_t>{1, -2, 3});
    CHECK(f->get("a.floats").to_float_array("a.floats") == std::vector<float>{1.5f, -2.0f});
    CHECK_THROWS_AS(f->get_string("a.u8"), Error);
    try {
        f->get("missing.key");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::NotFound);
        CHECK_THAT(e.what(), Catch::Contains("missing.key"));
    }
}

TEST_CASE("a file with no tensors and no metadata is valid") {
    models::GgufWriter w;
    const auto bytes = w.to_bytes();
    auto f = models::GgufFile::parse(bytes.data(), bytes.size(), "empty");
    CHECK(f->tensors().empty());
    CHECK(f->metadata().empty());
}

TEST_CASE("GGUF v2 files read like v3") {
    models::GgufWriter w;
    w.set_u32("x", 7);
    auto bytes = w.to_bytes();
    const std::uint32_t v2 = 2;
    std::memcpy(bytes.data() + 4, &v2, 4);
    auto f = models::GgufFile::parse(bytes.data(), bytes.size(), "v2");
    CHECK(f->version() == 2);
    CHECK(f->get_u64("x") == 7);
}

TEST_CASE("custom alignment is honoured by writer and reader") {
    models::GgufWriter w(64);
    w.set_u32("general.alignment", 64);
    w.add_tensor("a", 0, {3}, {});
    w.add_tensor("b", 0, {5}, {});
    const auto bytes = w.to_bytes();
    auto f = models::GgufFile::parse(bytes.data(), bytes.size(), "align64");
    CHECK(f->alignment() == 64);
    CHECK(f->data_offset() % 64 == 0);
    CHECK(f->tensor("b").offset == 64);
}

TEST_CASE("an aborted write leaves no file behind") {
    test::TempDir dir("abort");
    models::GgufWriter w;
    w.add_tensor("a", 0, {8},
                 [](std::uint8_t*, std::uint64_t) { throw std::runtime_error("boom"); });
    const std::string path = dir.file("out.gguf");
    CHECK_THROWS(w.write(path));
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK(std::filesystem::is_empty(dir.path()));
}

#include <catch2/catch.hpp>

#include "bitnet/common/error.hpp"
#include "bitnet/quantization/type_traits.hpp"

using namespace bitnet::quant;

TEST_CASE("type 39 is TL2 in bitnet.cpp files and MXFP4 upstream") {
    auto bitnet_cpp = find_type(39, FileProvenance::BitnetCpp);
    auto upstream = find_type(39, FileProvenance::Upstream);
    REQUIRE(bitnet_cpp);
    REQUIRE(upstream);
    CHECK(bitnet_cpp->name == "TL2");
    CHECK(upstream->name == "MXFP4");
    CHECK(upstream->block_size == 32);
    CHECK(upstream->bytes_per_block == 17);
    CHECK_FALSE(bitnet_cpp->usable);
    CHECK_THAT(std::string(bitnet_cpp->note), Catch::Contains("i2_s"));
}

TEST_CASE("ids 36..38 exist only in bitnet.cpp files") {
    CHECK(find_type(36, FileProvenance::BitnetCpp)->name == "I2_S");
    CHECK(find_type(37, FileProvenance::BitnetCpp)->name == "I8_S");
    CHECK(find_type(38, FileProvenance::BitnetCpp)->name == "TL1");
    CHECK_FALSE(find_type(36, FileProvenance::Upstream));
    CHECK_FALSE(find_type(38, FileProvenance::Upstream));
}

TEST_CASE("retired and unknown ids are not types") {
    for (std::uint32_t id : {4u, 5u, 31u, 32u, 33u, 40u, 1000u}) {
        CHECK_FALSE(find_type(id, FileProvenance::BitnetCpp));
        CHECK_FALSE(find_type(id, FileProvenance::Upstream));
    }
}

TEST_CASE("block sizes and bytes per block match ggml for the implemented types") {
    struct Expected {
        TypeId id;
        std::int64_t block;
        std::uint64_t bytes;
    };
    for (auto e : {Expected{TypeId::F32, 1, 4}, Expected{TypeId::F16, 1, 2},
                   Expected{TypeId::BF16, 1, 2}, Expected{TypeId::Q8_0, 32, 34},
                   Expected{TypeId::Q4_0, 32, 18}, Expected{TypeId::Q6_K, 256, 210},
                   Expected{TypeId::IQ2_S, 256, 82}, Expected{TypeId::TQ2_0, 256, 66},
                   Expected{TypeId::TQ1_0, 256, 54}, Expected{TypeId::I2_S, 128, 32}}) {
        const TypeTraits& t = traits(e.id);
        CHECK(t.block_size == e.block);
        CHECK(t.bytes_per_block == e.bytes);
    }
}

TEST_CASE("an I2_S tensor occupies n/4 + 32 bytes") {
    const TypeTraits& t = traits(TypeId::I2_S);
    CHECK(tensor_bytes(t, 2560ull * 2560) == 2560ull * 2560 / 4 + 32);
    CHECK(row_bytes(t, 2560) == 640);
    CHECK_THROWS_AS(tensor_bytes(t, 100), bitnet::Error);  // not a multiple of 128
}

TEST_CASE("tensor byte counts that overflow 64 bits are errors, not wraparound") {
    CHECK_THROWS_AS(tensor_bytes(traits(TypeId::F32), 1ull << 63), bitnet::Error);
    CHECK(tensor_bytes(traits(TypeId::F32), 1ull << 61) == 1ull << 63);
}

TEST_CASE("every implemented type has both directions or is marked read-only") {
    for (const TypeTraits& t : all_types(FileProvenance::BitnetCpp)) {
        if (t.quantize != nullptr) CHECK(t.dequantize != nullptr);
        CHECK(t.usable == (t.dequantize != nullptr));
        if (!t.usable) CHECK_FALSE(t.note.empty());
    }
}

TEST_CASE("type names parse case-insensitively") {
    CHECK(type_from_name("i2_s") == TypeId::I2_S);
    CHECK(type_from_name("TQ1_0") == TypeId::TQ1_0);
    CHECK_FALSE(type_from_name("q9_9"));
}

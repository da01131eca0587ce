#include <catch2/catch.hpp>

#include <fstream>

#include "bitnet/common/error.hpp"
#include "bitnet/common/mapped_file.hpp"
#include "test_support.hpp"

using namespace bitnet;

TEST_CASE("a mapped file exposes exactly the bytes on disk") {
    test::TempDir dir("mmap");
    std::string path = dir.file("data.bin");
    std::ofstream(path, std::ios::binary) << "GGUF\x03";
    MappedFile file(path);
    REQUIRE(file.size() == 5);
    CHECK(file.data()[0] == 'G');
    CHECK(file.data()[4] == 3);
    MappedFile moved = std::move(file);
    CHECK(moved.size() == 5);
    CHECK(file.size() == 0);
}

TEST_CASE("an empty file maps to an empty span") {
    test::TempDir dir("mmap-empty");
    std::string path = dir.file("empty.bin");
    std::ofstream(path, std::ios::binary).close();
    MappedFile file(path);
    CHECK(file.size() == 0);
    CHECK(file.bytes().empty());
}

TEST_CASE("mapping a missing file is a NotFound error naming the path") {
    try {
        MappedFile file("/nonexistent/dir/model.gguf");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::NotFound);
        CHECK_THAT(e.what(), Catch::Contains("/nonexistent/dir/model.gguf"));
    }
}

TEST_CASE("mapping a directory is an Io error") {
    test::TempDir dir("mmap-dir");
    CHECK_THROWS_AS(MappedFile(dir.path().string()), Error);
}

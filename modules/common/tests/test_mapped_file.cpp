#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <vector>

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

namespace {

// A file of `size` pseudo-random bytes (not a multiple of the page or huge-page size).
std::vector<std::uint8_t> write_random_file(const std::string& path, std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    std::uint32_t state = 12345;
    for (auto& b : bytes) {
        state = state * 1664525u + 1013904223u;
        b = static_cast<std::uint8_t>(state >> 24);
    }
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(size));
    return bytes;
}

// A temporary file of `size` pseudo-random bytes, with its contents.
struct RandomFile {
    RandomFile(const char* name, std::size_t size)
        : dir(name), path(dir.file("weights.bin")), bytes(write_random_file(path, size)) {}
    test::TempDir dir;
    std::string path;
    std::vector<std::uint8_t> bytes;
};

}  // namespace

TEST_CASE("copying a mapped file into huge pages keeps its bytes at the same addresses") {
    const std::size_t size = (5u << 20) + 12345;
    const RandomFile source("mmap-huge", size);
    const std::vector<std::uint8_t>& expected = source.bytes;
    MappedFile file(source.path);
    const std::uint8_t* before = file.data();
    REQUIRE(file.copy_to_huge_pages());
    CHECK(file.copied());
    CHECK(file.data() == before);
    CHECK(std::memcmp(file.data(), expected.data(), size) == 0);
    CHECK(file.copy_to_huge_pages());  // a second call is a no-op

    // A released range maps back to the file: it reads the file's bytes, not zeros.
    const std::size_t at = (1u << 20) + 100, n = 3u << 20;
    file.advise_dont_need(file.data() + at, n);
    CHECK(std::memcmp(file.data(), expected.data(), size) == 0);

    MappedFile moved = std::move(file);
    CHECK(moved.copied());
    CHECK(std::memcmp(moved.data(), expected.data(), size) == 0);
}

TEST_CASE("an empty file has nothing to copy") {
    test::TempDir dir("mmap-huge-empty");
    const std::string path = dir.file("empty.bin");
    std::ofstream(path, std::ios::binary).close();
    MappedFile file(path);
    CHECK_FALSE(file.copy_to_huge_pages());
    CHECK_FALSE(file.copied());
}

TEST_CASE("ranges released before the copy are not copied and still read the file") {
    const std::size_t size = (7u << 20) + 999;
    const RandomFile source("mmap-huge-released", size);
    MappedFile file(source.path);
    // Two released ranges: one inside the first copy window, one across the end of the file.
    file.advise_dont_need(file.data() + 4096 * 3 + 17, 4096 * 40);
    file.advise_dont_need(file.data() + (5u << 20), size - (5u << 20));
    REQUIRE(file.copy_to_huge_pages());
    CHECK(std::memcmp(file.data(), source.bytes.data(), size) == 0);
}

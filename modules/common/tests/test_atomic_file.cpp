#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "bitnet/common/atomic_file.hpp"
#include "bitnet/common/error.hpp"
#include "test_support.hpp"

using namespace bitnet;

namespace {
std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("a committed write replaces the target in one step") {
    test::TempDir dir("atomic");
    std::string path = dir.file("out.bin");
    std::ofstream(path) << "old";
    {
        AtomicFileWriter writer(path);
        writer.write("new contents", 12);
        CHECK(slurp(path) == "old");  // not visible before commit
        writer.commit();
        CHECK_FALSE(std::filesystem::exists(writer.temp_path()));
    }
    CHECK(slurp(path) == "new contents");
}

TEST_CASE("an abandoned write leaves the old file and no temp file") {
    test::TempDir dir("atomic-abandon");
    std::string path = dir.file("out.bin");
    std::ofstream(path) << "old";
    std::string temp;
    {
        AtomicFileWriter writer(path);
        temp = writer.temp_path();
        writer.write("partial", 7);
    }
    CHECK(slurp(path) == "old");
    CHECK_FALSE(std::filesystem::exists(temp));
}

TEST_CASE("writing into a missing directory is an Io error naming the path") {
    try {
        AtomicFileWriter writer("/nonexistent-dir/out.gguf");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::Io);
        CHECK_THAT(e.what(), Catch::Contains("/nonexistent-dir/out.gguf"));
    }
}

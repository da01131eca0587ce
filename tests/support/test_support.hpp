// Helpers shared by every test executable: where ../shared lives, scratch directories.
#pragma once

#include <catch2/catch.hpp>

#include <unistd.h>
#include <filesystem>
#include <random>
#include <string>

namespace bitnet::test {

// The read-only shared data directory (CMake cache variable BITNET_SHARED_DIR).
inline std::filesystem::path shared_dir() {
    return BITNET_SHARED_DIR;
}
inline std::filesystem::path binary_dir() {
    return BITNET_BINARY_DIR;
}

// Skips the current test with a message when ../shared (or a file in it) is missing.
#define BITNET_REQUIRE_SHARED(relative_path)                                                  \
    do {                                                                                      \
        if (!std::filesystem::exists(::bitnet::test::shared_dir() / (relative_path))) {       \
            WARN("SKIPPED: " << (::bitnet::test::shared_dir() / (relative_path)).string()     \
                             << " is absent (set -DBITNET_SHARED_DIR=... to run this test)"); \
            return;                                                                           \
        }                                                                                     \
    } while (0)

// A fresh scratch directory under the build tree, removed when the object goes out of scope.
class TempDir {
  public:
    explicit TempDir(const std::string& name) {
        path_ = std::filesystem::temp_directory_path() /
                ("bitnet-test-" + name + "-" + std::to_string(::getpid()) + "-" +
                 std::to_string(std::random_device{}()));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

}  // namespace bitnet::test

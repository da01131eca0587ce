// SHA-256 (FIPS 180-4), for model file identities in cross-validation reports and download
// checksums.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace bitnet {

class Sha256 {
  public:
    Sha256();
    void update(std::span<const std::uint8_t> bytes);
    void update(const void* data, std::size_t size);
    std::array<std::uint8_t, 32> finish();
    static std::string hex(const std::array<std::uint8_t, 32>& digest);

  private:
    void block(const std::uint8_t* p);
    std::uint32_t h_[8];
    std::uint8_t buffer_[64];
    std::size_t buffered_ = 0;
    std::uint64_t length_ = 0;
};

// Hex digest of a whole file (memory-mapped). Throws bitnet::Error if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace bitnet

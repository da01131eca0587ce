// Corrupt GGUF files for the bad-input tests: each case is a small, otherwise valid model with
// one defect, the error fragment the reader must report, and whether the container reader
// itself must refuse it (structural) or only `bitnet validate`'s content checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bitnet::test {

struct BadGgufCase {
    std::string name;  // file-name friendly label
    std::vector<std::uint8_t> bytes;
    std::string expected_fragment;  // must appear in the error message
    bool structural;                // GgufFile::parse must throw
};

// A valid tiny bitnet-b1.58 model (I2_S) held in memory.
std::vector<std::uint8_t> valid_tiny_model_bytes();

std::vector<BadGgufCase> bad_gguf_cases();

}  // namespace bitnet::test

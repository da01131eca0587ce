// The reference-logits file: what any engine can write so ours can be checked against it.
//
//   bytes 0..7   magic "BNLOGIT1"
//   bytes 8..11  u32 little-endian: length H of the JSON header
//   bytes 12..   H bytes of UTF-8 JSON:
//                {"format": "bitnet-logits", "version": 1, "producer": "...",
//                 "model_sha256": "<hex>", "n_vocab": V, "tokens": [ids...],
//                 "positions": [p...],            // which token positions have logits
//                 "greedy": [ids...]}             // optional: greedy continuation
//   then         positions.size() x V float32 little-endian logits, row per position
//
// docs/crossval.md has a 20-line Python writer for other engines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bitnet::crossval {

struct LogitsFile {
    std::string producer;
    std::string model_sha256;
    std::int64_t n_vocab = 0;
    std::vector<std::int32_t> tokens;
    std::vector<std::int64_t> positions;
    std::vector<std::int32_t> greedy;
    std::vector<float> logits;  // positions.size() * n_vocab

    const float* row(std::size_t i) const {
        return logits.data() + i * static_cast<std::size_t>(n_vocab);
    }
};

// Writes atomically (temp file + rename).
void write_logits_file(const std::string& path, const LogitsFile& file);
// Validates magic, header fields and the data size; errors name the file and field.
LogitsFile read_logits_file(const std::string& path);

}  // namespace bitnet::crossval

// A synthetic model of the "tiny" preset with the attention shape a test needs, written and
// parsed in memory (no file): the whole-model tests' common start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/synthetic_model.hpp"

namespace bitnet::models::test {

struct InMemoryModel {
    std::vector<std::uint8_t> bytes;  // what `file` reads (a move keeps the buffer in place)
    std::shared_ptr<const GgufFile> file;
};

// `heads` query heads of `head_dim` over `kv_heads` KV heads (RoPE over the whole head);
// ffn_hidden 0 keeps the preset's.
inline InMemoryModel tiny_model(std::uint32_t heads, std::uint32_t kv_heads, std::uint32_t head_dim,
                                std::uint32_t ffn_hidden, std::uint64_t seed,
                                const std::string& name) {
    ModelConfig config = preset_config("tiny", 300);
    config.head_count = heads;
    config.head_count_kv = kv_heads;
    config.head_dim = head_dim;
    config.rope_dim = head_dim;
    if (ffn_hidden > 0) config.ffn_hidden = ffn_hidden;
    SyntheticModelOptions options;
    options.config = config;
    options.seed = seed;
    InMemoryModel m;
    m.bytes = synthetic_model_writer(options).to_bytes();
    m.file = std::shared_ptr<const GgufFile>(GgufFile::parse(m.bytes.data(), m.bytes.size(), name));
    return m;
}

}  // namespace bitnet::models::test

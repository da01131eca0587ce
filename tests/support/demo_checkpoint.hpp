// The demo model's Hugging Face checkpoint, rebuilt for a test: config.json and the tokenizer
// files are committed (assets/demo-model/checkpoint); model.safetensors is written from the
// committed GGUF (ternary values and norms are exact there) plus the committed BF16 embedding
// (F16 cannot hold all of it), and the manifest of the file PyTorch exported (per-tensor
// SHA-256, committed) lets a test prove the rebuilt tensors are that file's.
#pragma once

#include <filesystem>
#include <string>

#include "convert.hpp"
#include "test_support.hpp"

namespace bitnet::test {

inline std::filesystem::path demo_dir() {
    return std::filesystem::path(BITNET_SOURCE_DIR) / "assets/demo-model";
}

inline std::filesystem::path demo_checkpoint(const TempDir& dir, const std::string& name = "ckpt") {
    namespace fs = std::filesystem;
    const fs::path out = dir.file(name);
    fs::create_directories(out);
    for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
        fs::copy_file(demo_dir() / "checkpoint" / f, out / f, fs::copy_options::overwrite_existing);
    convert::write_hf_weights((demo_dir() / "bitnet-demo-kjv-i2_s.gguf").string(),
                              (out / "model.safetensors").string(),
                              (demo_dir() / "checkpoint/model.embed_tokens.safetensors").string());
    return out;
}

}  // namespace bitnet::test

// Writes small synthetic models (real architecture, random ternary weights, synthetic
// tokenizer) for tests that need a model file on disk.
#pragma once

#include <string>

#include "bitnet/models/synthetic_model.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"
#include "test_support.hpp"

namespace bitnet::test {

// A model of `config`'s shape, written as `name` in `dir`.
inline std::string write_synthetic_model_config(const TempDir& dir,
                                                const models::ModelConfig& config,
                                                std::uint64_t seed, const std::string& name,
                                                quant::TypeId type = quant::TypeId::I2_S) {
    models::SyntheticModelOptions options;
    options.config = config;
    options.ternary_type = type;
    options.seed = seed;
    const auto tokenizer = tokenizers::synthetic_tokenizer(options.config.vocab_size);
    const std::string path = dir.file(name);
    models::synthetic_model_writer(options, [&](models::GgufWriter& w) {
        tokenizers::write_tokenizer_metadata(w, tokenizer);
    }).write(path);
    return path;
}

inline std::string write_synthetic_model(const TempDir& dir, const std::string& preset,
                                         std::uint64_t seed = 1,
                                         quant::TypeId type = quant::TypeId::I2_S,
                                         const std::string& name = "") {
    return write_synthetic_model_config(
        dir, models::preset_config(preset), seed,
        name.empty() ? preset + "-" + std::to_string(seed) + ".gguf" : name, type);
}

}  // namespace bitnet::test

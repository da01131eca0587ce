// Writes small synthetic models (real architecture, random ternary weights, synthetic
// tokenizer) for tests that need a model file on disk.
#pragma once

#include <string>

#include "bitnet/models/synthetic_model.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"
#include "test_support.hpp"

namespace bitnet::test {

inline std::string write_synthetic_model(const TempDir& dir, const std::string& preset,
                                         std::uint64_t seed = 1,
                                         quant::TypeId type = quant::TypeId::I2_S,
                                         const std::string& name = "") {
    models::SyntheticModelOptions options;
    options.config = models::preset_config(preset);
    options.ternary_type = type;
    options.seed = seed;
    const auto tokenizer = tokenizers::synthetic_tokenizer(options.config.vocab_size);
    const std::string path =
        dir.file(name.empty() ? preset + "-" + std::to_string(seed) + ".gguf" : name);
    models::synthetic_model_writer(options, [&](models::GgufWriter& w) {
        tokenizers::write_tokenizer_metadata(w, tokenizer);
    }).write(path);
    return path;
}

}  // namespace bitnet::test

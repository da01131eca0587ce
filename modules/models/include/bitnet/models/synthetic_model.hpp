// Synthetic models: GGUF files with the real architecture, tensor names, shapes and types and
// random ternary weights (deterministic per seed, independent of thread count). Used by
// `xtask gen-model`, tests and benchmarks — real weights cannot be downloaded everywhere.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "bitnet/models/gguf_writer.hpp"
#include "bitnet/models/model_config.hpp"
#include "bitnet/quantization/type_traits.hpp"

namespace bitnet::models {

// tiny: hidden 128, 2 layers; small: hidden 256, 4 layers; 2b4t: the exact 2B4T shapes.
// vocab_size 0 keeps the preset's synthetic vocabulary (512 / 512 / 128256).
ModelConfig preset_config(const std::string& preset, std::uint32_t vocab_size = 0);

struct SyntheticModelOptions {
    ModelConfig config;
    quant::TypeId ternary_type = quant::TypeId::I2_S;  // I2_S, TQ2_0, TQ1_0 or F16
    quant::TypeId embedding_type = quant::TypeId::F16;
    std::uint64_t seed = 1;
    std::string name = "bitnet synthetic";
};

// Builds the writer: metadata (architecture keys first, then `add_metadata`, e.g. a tokenizer)
// and every tensor of expected_tensors(config) with a deterministic random fill.
GgufWriter synthetic_model_writer(const SyntheticModelOptions& options,
                                  const std::function<void(GgufWriter&)>& add_metadata = {});

}  // namespace bitnet::models

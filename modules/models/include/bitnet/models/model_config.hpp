// The BitNet architectures the engine loads, described as data: hyperparameter keys, tensor
// names and expected shapes (BITNET_MODEL.md). The loader, `bitnet validate` and
// `xtask gen-model` all read this one table, so a file we write is by construction a file we load.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/gguf_writer.hpp"

namespace bitnet::models {

enum class Architecture {
    BitnetB158,  // "bitnet-b1.58": bitnet.cpp's converter (2B4T): relu^2 FFN
    Bitnet,      // "bitnet": upstream llama.cpp / bitnet.cpp 2024 fork: silu-gated FFN
};

enum class FfnActivation { ReluSquared, Silu };

// What a tensor is for, which decides the types it may have.
enum class TensorRole { Embedding, Norm, Ternary, Scale, Output };

struct ModelConfig {
    Architecture architecture = Architecture::BitnetB158;
    std::string architecture_name;  // as in general.architecture
    std::uint32_t context_length = 0;
    std::uint32_t hidden = 0;  // embedding_length
    std::uint32_t block_count = 0;
    std::uint32_t ffn_hidden = 0;  // feed_forward_length
    std::uint32_t head_count = 0;
    std::uint32_t head_count_kv = 0;
    std::uint32_t head_dim = 0;  // rope.dimension_count if present, else hidden/head_count
    std::uint32_t rope_dim = 0;
    std::uint32_t vocab_size = 0;
    float rope_freq_base = 10000.0f;
    float rms_eps = 1e-5f;
    FfnActivation ffn_activation = FfnActivation::ReluSquared;
    bool tied_output = true;         // no output.weight: logits use token_embd
    bool has_scale_tensors = false;  // `bitnet` files with blk.N.*.scale
};

struct ExpectedTensor {
    std::string name;
    std::vector<std::uint64_t> ne;
    TensorRole role;
    bool optional;
};

// "bitnet-b1.58" / "bitnet" -> Architecture; nullopt for anything else.
std::optional<Architecture> architecture_from_name(const std::string& name);
std::string supported_architectures();  // "bitnet-b1.58, bitnet" for messages

// Reads hyperparameters from `file` and checks every tensor of the architecture against them
// (presence, shape, role-appropriate type). Throws bitnet::Error naming the file and the key
// or tensor, and what is wrong.
ModelConfig read_model_config(const GgufFile& file);

// Every tensor the architecture defines for `config`, in the canonical file order.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);

// Types a tensor of this role may have in files the engine loads.
bool type_allowed_for_role(TensorRole role, std::uint32_t type_id);
std::string role_name(TensorRole role);

// The canonical names.
std::string block_tensor_name(std::uint32_t block, const char* suffix);

// general.file_type for a model whose projections have this type (40 = bitnet.cpp's I2_S).
std::uint32_t file_type_for(quant::TypeId ternary_type);
// The general.* and architecture keys of a model file, in bitnet.cpp's layout (shared by
// gen-model and convert, so every file we write has the same keys as the real 2B4T file).
void write_model_metadata(GgufWriter& writer, const ModelConfig& config, quant::TypeId ternary_type,
                          const std::string& name);

}  // namespace bitnet::models

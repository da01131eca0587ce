// `bitnet convert`: Hugging Face BitNet checkpoints (config.json + model.safetensors, or a
// sharded model.safetensors.index.json) to GGUF `bitnet-b1.58`, and GGUF to GGUF
// re-quantization of the ternary projections (i2_s, tq2_0, tq1_0, f16) and the head (f16, q8_0).
// The output is written through a temp file and renamed; any error leaves no output file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bitnet::convert {

struct ConvertOptions {
    std::string input;        // checkpoint directory, model.safetensors, or a .gguf
    std::string output;       // .gguf
    std::string to = "i2_s";  // ternary projections: i2_s | tq2_0 | tq1_0 | f16
    std::string head;         // embedding/output: f16 | q8_0 (empty: f16, or as stored for GGUF)
    std::string tokenizer;    // tokenizer.json (default: the one beside the checkpoint)
    std::string name;         // general.name (default: the checkpoint directory's name)
    bool progress = true;
};

struct ConvertSummary {
    std::string source;  // "hf-checkpoint" or "gguf"
    int tensors = 0;
    int ternary_exact = 0;    // projections already ternary: codes kept, scale = max|W|
    int ternary_absmean = 0;  // projections ternarized from master weights (absmean)
    int requantized = 0;      // GGUF: tensors whose type changed
    std::uint64_t bytes = 0;  // of the output file
    double seconds = 0;
};

ConvertSummary convert_model(const ConvertOptions& options);

// BitNet b1.58's weight rule for master weights: gamma = max(mean|W|, 1e-5) (mean in double),
// code = clamp(round-half-even(W / gamma), -1, 1); returns gamma and writes code * gamma.
// Weights that are already ternary (every |w| is 0 or max|W|) are kept and max|W| returned.
float ternarize(std::vector<float>& weights, bool& already_ternary);

// The inverse direction for the weights only: writes `path` (a Hugging Face model.safetensors,
// BF16, BitNet names) from a bitnet-b1.58 GGUF whose values are all exact in BF16 (throws
// InvalidFormat naming the first tensor that is not). Tensors present in `exact_from` (a BF16
// safetensors file) are copied from it byte for byte instead — for values the GGUF cannot hold
// exactly (an F16 embedding loses BF16 values below F16's normal range). The demo model rebuilds
// its checkpoint this way in tests instead of carrying a 22 MB file (docs/demo-model.md).
void write_hf_weights(const std::string& gguf_path, const std::string& path,
                      const std::string& exact_from = "");

}  // namespace bitnet::convert

// A structured description of a GGUF model file (header, architecture, tensors, tokenizer,
// memory estimate) shared by `inspect` (human and --json output) and `validate`.
#pragma once

#include <nlohmann/json.hpp>

#include "bitnet/models/gguf_file.hpp"

namespace bitnet::cli {

nlohmann::json summarize_model(const models::GgufFile& file, bool include_tensors);
// Human-readable rendering of summarize_model's result.
void print_model_summary(const nlohmann::json& summary, bool include_tensors,
                         bool include_metadata);

}  // namespace bitnet::cli

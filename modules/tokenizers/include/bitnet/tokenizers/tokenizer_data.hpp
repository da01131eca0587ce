// TokenizerData — a tokenizer as plain data (vocabulary, token types, merges, special ids,
// chat template), read from a Hugging Face tokenizer.json (+ tokenizer_config.json beside it)
// or from GGUF `tokenizer.*` metadata, and written back as GGUF metadata. The encoders of
// issue 3 are built from this; gen-model and convert embed it into the files they write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/gguf_writer.hpp"

namespace bitnet::tokenizers {

// tokenizer.ggml.token_type values.
enum class TokenType : std::int32_t {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6
};

struct TokenizerData {
    std::string model;  // "gpt2" (byte-level BPE) or "llama" (SentencePiece-style BPE)
    std::string pre;    // pre-tokenizer: "llama-bpe" for LLaMA 3, "default" otherwise
    std::vector<std::string> tokens;
    std::vector<std::int32_t> token_types;
    std::vector<float> scores;        // SentencePiece: higher merges first; empty for gpt2
    std::vector<std::string> merges;  // "a b", highest priority first
    std::optional<std::int32_t> bos, eos, eot, unk, pad;
    bool add_bos = true;
    bool add_eos = false;
    std::string chat_template;

    std::size_t vocab_size() const { return tokens.size(); }
    std::optional<std::int32_t> id_of(const std::string& token) const;
};

// Reads a Hugging Face tokenizer.json; a tokenizer_config.json in the same directory adds the
// chat template, bos/eos names and add_bos. Throws bitnet::Error naming the file and field.
TokenizerData read_tokenizer_json(const std::string& path);

// A small self-contained byte-level BPE tokenizer for synthetic models that have no real one:
// the 256 byte tokens, merges of common English letter pairs, then <|begin_of_text|>,
// <|end_of_text|>, <|eot_id|> and reserved tokens up to `vocab_size` (>= 259), with the 2B4T
// chat template. Deterministic.
TokenizerData synthetic_tokenizer(std::uint32_t vocab_size);

// Reads the `tokenizer.*` keys of a GGUF file. Throws NotFound when there are none.
TokenizerData read_gguf_tokenizer(const models::GgufFile& file);

// Writes the `tokenizer.*` keys that llama.cpp and bitnet.cpp read.
void write_tokenizer_metadata(models::GgufWriter& writer, const TokenizerData& data);

}  // namespace bitnet::tokenizers

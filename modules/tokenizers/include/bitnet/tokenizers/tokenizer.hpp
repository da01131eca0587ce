// Tokenizer — text <-> token ids for the models the engine runs. One interface, two backends
// chosen from the tokenizer data: byte-level BPE with the LLaMA 3 pre-tokenizer
// (tokenizer.ggml.model = gpt2) and SentencePiece-style BPE with byte fallback (llama).
//
// Input text that is not valid UTF-8 is not rejected: each invalid byte sequence is replaced by
// U+FFFD before encoding (documented in docs/tokenizers.md), so nothing is dropped silently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/models/gguf_file.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"

namespace bitnet::tokenizers {

struct SpecialTokens {
    std::optional<std::int32_t> bos, eos, eot, unk, pad;
};

class Tokenizer {
  public:
    virtual ~Tokenizer() = default;

    // add_bos: prepend the BOS token (when the vocabulary has one).
    // parse_special: split out special/added tokens written literally in the text
    // (e.g. "<|eot_id|>"); otherwise they are encoded as plain text.
    virtual std::vector<std::int32_t> encode(std::string_view text, bool add_bos,
                                             bool parse_special) const = 0;
    // The text of the ids. Control tokens are rendered as their text unless skip_special.
    // Throws bitnet::Error(InvalidArgument) for an id outside the vocabulary. Byte sequences
    // that do not form valid UTF-8 become U+FFFD.
    std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const;
    // The raw bytes of one token (may be a fragment of a UTF-8 character).
    virtual std::string token_to_piece(std::int32_t id) const = 0;
    // For SentencePiece: the leading space added by encode is removed from the first piece.
    virtual bool strips_leading_space() const { return false; }

    std::size_t vocab_size() const { return data_.tokens.size(); }
    SpecialTokens special_tokens() const {
        return {data_.bos, data_.eos, data_.eot, data_.unk, data_.pad};
    }
    bool is_control(std::int32_t id) const;
    // True for ids that end a generation (eos, eot).
    bool is_end_of_generation(std::int32_t id) const;
    const TokenizerData& data() const { return data_; }
    // "byte-level BPE (LLaMA 3)" / "SentencePiece BPE"
    virtual std::string description() const = 0;

  protected:
    explicit Tokenizer(TokenizerData data) : data_(std::move(data)) {}
    void check_id(std::int32_t id) const;
    TokenizerData data_;
};

// Picks the backend from data.model ("gpt2" or "llama"). Throws for unknown models (in strict
// mode there is no fallback; outside it, an unknown model is still an error: guessing would
// produce wrong ids silently).
std::unique_ptr<Tokenizer> create_tokenizer(TokenizerData data);
std::unique_ptr<Tokenizer> load_tokenizer(const models::GgufFile& file);
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path);

}  // namespace bitnet::tokenizers

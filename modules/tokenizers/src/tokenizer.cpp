// The parts of Tokenizer shared by both backends, and the factory.
#include "bitnet/tokenizers/tokenizer.hpp"

#include "backends.hpp"
#include "bitnet/common/error.hpp"
#include "unicode.hpp"

namespace bitnet::tokenizers {

void Tokenizer::check_id(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= data_.tokens.size())
        fail(ErrorCode::InvalidArgument, "token id " + std::to_string(id) +
                                             " is outside the vocabulary (0.." +
                                             std::to_string(data_.tokens.size() - 1) + ")");
}

bool Tokenizer::is_control(std::int32_t id) const {
    return id >= 0 && static_cast<std::size_t>(id) < data_.token_types.size() &&
           data_.token_types[static_cast<std::size_t>(id)] ==
               static_cast<std::int32_t>(TokenType::Control);
}

bool Tokenizer::is_end_of_generation(std::int32_t id) const {
    return (data_.eos && id == *data_.eos) || (data_.eot && id == *data_.eot);
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special) const {
    std::string bytes;
    for (std::int32_t id : ids) {
        check_id(id);
        if (skip_special && is_control(id)) continue;
        bytes += token_to_piece(id);
    }
    if (strips_leading_space() && !bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
    return unicode::sanitize_utf8(bytes);
}

std::unique_ptr<Tokenizer> create_tokenizer(TokenizerData data) {
    if (data.tokens.empty()) fail(ErrorCode::InvalidFormat, "tokenizer has an empty vocabulary");
    if (data.token_types.empty())
        data.token_types.assign(data.tokens.size(), static_cast<std::int32_t>(TokenType::Normal));
    if (data.model == "gpt2") return make_byte_level_bpe(std::move(data));
    if (data.model == "llama") return make_sentencepiece_bpe(std::move(data));
    fail(ErrorCode::Unsupported,
         "tokenizer model '" + data.model +
             "' is not supported (supported: gpt2 = byte-level BPE, llama = SentencePiece BPE); "
             "pass --tokenizer tokenizer.json with a supported tokenizer");
}

std::unique_ptr<Tokenizer> load_tokenizer(const models::GgufFile& file) {
    try {
        return create_tokenizer(read_gguf_tokenizer(file));
    } catch (const Error& e) {
        const std::string what = e.what();
        if (what.rfind(file.path(), 0) == 0) throw;
        fail(e.code(), file.path() + ": " + what);
    }
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path) {
    try {
        return create_tokenizer(read_tokenizer_json(path));
    } catch (const Error& e) {
        const std::string what = e.what();
        if (what.rfind(path, 0) == 0) throw;
        fail(e.code(), path + ": " + what);
    }
}

}  // namespace bitnet::tokenizers

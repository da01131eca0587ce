#include <string>

#include "bitnet/common/error.hpp"
#include "bitnet/tokenizers/tokenizer.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"
#include "unicode.hpp"

namespace bitnet::tokenizers {

TokenizerData synthetic_tokenizer(std::uint32_t vocab_size) {
    constexpr std::uint32_t kSpecials = 3;
    if (vocab_size < 256 + kSpecials)
        fail(ErrorCode::InvalidArgument,
             "a synthetic tokenizer needs a vocabulary of at least 259 tokens");
    TokenizerData d;
    d.model = "gpt2";
    d.pre = "llama-bpe";
    // GPT-2 byte alphabet: printable Latin-1 bytes stand for themselves, the rest map to U+0100..
    char32_t next = 256;
    std::string mapped[256];
    for (int b = 0; b < 256; ++b) {
        const bool printable =
            (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        unicode::append_utf8(mapped[b], printable ? static_cast<char32_t>(b) : next++);
        d.tokens.push_back(mapped[b]);
    }
    // Merges of letter pairs, most common English letters first; the space-prefixed variants
    // ("Ġt") come first so words start merging at their leading space.
    const std::string letters = "etaoinshrdlucmfwypvbgkjqxz";
    const std::uint32_t merge_budget = vocab_size - kSpecials;
    for (char a : letters) {
        if (d.tokens.size() >= merge_budget) break;
        d.merges.push_back(mapped[' '] + " " + std::string(1, a));
        d.tokens.push_back(mapped[' '] + std::string(1, a));
    }
    for (char a : letters) {
        for (char b : letters) {
            if (d.tokens.size() >= merge_budget) break;
            d.merges.push_back(std::string(1, a) + " " + std::string(1, b));
            d.tokens.push_back(std::string(1, a) + std::string(1, b));
        }
    }
    d.token_types.assign(d.tokens.size(), static_cast<std::int32_t>(TokenType::Normal));
    for (const char* special : {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"}) {
        d.tokens.push_back(special);
        d.token_types.push_back(static_cast<std::int32_t>(TokenType::Control));
    }
    for (std::uint32_t i = 0; d.tokens.size() < vocab_size; ++i) {
        d.tokens.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
        d.token_types.push_back(static_cast<std::int32_t>(TokenType::Control));
    }
    const auto special_base = static_cast<std::int32_t>(d.merges.size() + 256);
    d.bos = special_base;
    d.eos = special_base + 1;
    d.eot = special_base + 2;
    d.add_bos = true;
    d.chat_template =
        "{% for message in messages %}{{ message['role'] | capitalize + ': ' + message['content'] "
        "| trim + "
        "'<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";
    return d;
}

}  // namespace bitnet::tokenizers

// UTF-8 and Unicode character classes for the tokenizers (internal).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::tokenizers::unicode {

inline constexpr char32_t kReplacement = 0xFFFD;

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if the bytes there are not
// a complete, valid sequence (overlong, surrogate, > U+10FFFF, truncated, stray continuation).
std::size_t valid_sequence_length(std::string_view s, std::size_t i);

// Replaces every invalid byte sequence with U+FFFD (one per maximal invalid subpart, as the
// Unicode standard recommends). Valid input is returned unchanged.
std::string sanitize_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);
// Length (0..3) of a trailing sequence that is the valid start of a character whose remaining
// bytes have not arrived yet (streaming decode holds these back).
std::size_t incomplete_suffix_length(std::string_view s);

// Decodes valid UTF-8 (call sanitize_utf8 first) into code points and their byte offsets.
void decode_utf8(std::string_view s, std::vector<char32_t>& cps,
                 std::vector<std::uint32_t>& offsets);
void append_utf8(std::string& out, char32_t cp);

// Character classes of the LLaMA 3 pre-tokenizer regex, from the generated UCD tables.
bool is_letter(char32_t cp);  // \p{L}
bool is_number(char32_t cp);  // \p{N}
// \s as the Rust regex engines of tiktoken / HF tokenizers define it: Unicode White_Space.
// (JavaScript's \s adds U+FEFF; the test vectors do not tell the two apart.)
bool is_whitespace(char32_t cp);

}  // namespace bitnet::tokenizers::unicode

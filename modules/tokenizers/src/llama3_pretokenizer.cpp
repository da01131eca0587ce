#include "llama3_pretokenizer.hpp"

#include "unicode.hpp"

namespace bitnet::tokenizers {
namespace {

using unicode::is_letter;
using unicode::is_number;
using unicode::is_whitespace;

bool is_newline(char32_t c) {
    return c == '\r' || c == '\n';
}
// [^\s\p{L}\p{N}]
bool is_other(char32_t c) {
    return !is_whitespace(c) && !is_letter(c) && !is_number(c);
}
char32_t lower_ascii(char32_t c) {
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

// Length (in code points) of the match starting at i, trying the alternatives in order.
std::size_t match_at(const std::vector<char32_t>& cp, std::size_t i) {
    const std::size_t n = cp.size();
    auto at = [&](std::size_t k) -> char32_t { return k < n ? cp[k] : 0; };

    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (cp[i] == '\'' && i + 1 < n) {
        const char32_t a = lower_ascii(at(i + 1)), b = lower_ascii(at(i + 2));
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    {
        std::size_t k = i;
        if (!is_letter(cp[k]) && !is_newline(cp[k]) && !is_number(cp[k])) ++k;
        if (k < n && is_letter(cp[k])) {
            while (k < n && is_letter(cp[k])) ++k;
            return k - i;
        }
    }
    // \p{N}{1,3}
    if (is_number(cp[i])) {
        std::size_t k = i + 1;
        while (k < n && k < i + 3 && is_number(cp[k])) ++k;
        return k - i;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    {
        std::size_t k = i;
        if (cp[k] == ' ') ++k;
        if (k < n && is_other(cp[k])) {
            while (k < n && is_other(cp[k])) ++k;
            while (k < n && is_newline(cp[k])) ++k;
            return k - i;
        }
    }
    // The remaining alternatives all start with whitespace.
    std::size_t run_end = i;
    while (run_end < n && is_whitespace(cp[run_end])) ++run_end;
    if (run_end > i) {
        // \s*[\r\n]+ : backtrack to the last newline inside the whitespace run.
        for (std::size_t k = run_end; k > i; --k)
            if (is_newline(cp[k - 1])) return k - i;
        // \s+(?!\S) : the whole run at the end of the text, else all but its last character.
        if (run_end == n) return run_end - i;
        if (run_end - i >= 2) return run_end - i - 1;
        // \s+
        return run_end - i;
    }
    // Unreachable for valid input (every code point is L, N, \s or other); be safe.
    return 1;
}

}  // namespace

void split_llama3(std::string_view text, std::vector<Piece>& pieces) {
    thread_local std::vector<char32_t> cps;
    thread_local std::vector<std::uint32_t> offsets;
    unicode::decode_utf8(text, cps, offsets);
    for (std::size_t i = 0; i < cps.size();) {
        const std::size_t len = match_at(cps, i);
        pieces.push_back({offsets[i], offsets[i + len]});
        i += len;
    }
}

}  // namespace bitnet::tokenizers

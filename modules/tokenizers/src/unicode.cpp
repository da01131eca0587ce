#include "unicode.hpp"

#include <array>
#include <memory>

namespace bitnet::tokenizers::unicode {
namespace {

struct CodepointRange {
    char32_t first;
    char32_t last;
};

#include "unicode_tables.inc"

constexpr std::uint8_t kLetter = 1, kNumber = 2, kSpace = 4;
constexpr char32_t kMaxCodepoint = 0x10FFFF;

// One flag byte per code point (1.1 MB), built once from the range tables: constant-time
// classification in the pre-tokenizer's inner loop.
const std::uint8_t* flags() {
    static const std::unique_ptr<std::uint8_t[]> table = [] {
        auto t = std::make_unique<std::uint8_t[]>(kMaxCodepoint + 1);
        auto mark = [&t](const auto& ranges, std::uint8_t bit) {
            for (const CodepointRange& r : ranges)
                for (char32_t c = r.first; c <= r.last; ++c) t[c] |= bit;
        };
        mark(kLetterRanges, kLetter);
        mark(kNumberRanges, kNumber);
        mark(kWhiteSpaceRanges, kSpace);
        return t;
    }();
    return table.get();
}

}  // namespace

bool is_letter(char32_t cp) {
    return cp <= kMaxCodepoint && (flags()[cp] & kLetter);
}
bool is_number(char32_t cp) {
    return cp <= kMaxCodepoint && (flags()[cp] & kNumber);
}
bool is_whitespace(char32_t cp) {
    return cp <= kMaxCodepoint && (flags()[cp] & kSpace);
}

std::size_t valid_sequence_length(std::string_view s, std::size_t i) {
    const auto byte = [&s](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) return 1;
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;  // no overlongs
        if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;  // no overlongs
        if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < len; ++k)
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
    return len;
}

// Length of the maximal prefix of an invalid sequence at s[i] that could have started a valid
// one (so "\xE2\x82" followed by 'x' is one replacement, not two).
static std::size_t invalid_subpart_length(std::string_view s, std::size_t i) {
    const auto byte = [&s](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = byte(i);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF)
        len = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else
        return 1;
    std::size_t k = 1;
    if (i + k < s.size() && byte(i + k) >= lo && byte(i + k) <= hi) {
        ++k;
        while (k < len && i + k < s.size() && (byte(i + k) & 0xC0) == 0x80) ++k;
    }
    return k;
}

std::size_t incomplete_suffix_length(std::string_view s) {
    for (std::size_t k = 1; k <= 3 && k <= s.size(); ++k) {
        const std::size_t start = s.size() - k;
        const auto b0 = static_cast<unsigned char>(s[start]);
        const std::size_t expected = (b0 >= 0xC2 && b0 <= 0xDF)   ? 2
                                     : (b0 >= 0xE0 && b0 <= 0xEF) ? 3
                                     : (b0 >= 0xF0 && b0 <= 0xF4) ? 4
                                                                  : 0;
        if (expected == 0) continue;
        // A valid prefix that simply ran out of bytes: its maximal subpart reaches the end.
        if (expected > k && invalid_subpart_length(s, start) == k) return k;
        return 0;
    }
    return 0;
}

bool is_valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = valid_sequence_length(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string sanitize_utf8(std::string_view s) {
    if (is_valid_utf8(s)) return std::string(s);
    std::string out;
    out.reserve(s.size() + 16);
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = valid_sequence_length(s, i);
        if (n > 0) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            append_utf8(out, kReplacement);
            i += invalid_subpart_length(s, i);
        }
    }
    return out;
}

void decode_utf8(std::string_view s, std::vector<char32_t>& cps,
                 std::vector<std::uint32_t>& offsets) {
    cps.clear();
    offsets.clear();
    for (std::size_t i = 0; i < s.size();) {
        const auto b0 = static_cast<unsigned char>(s[i]);
        char32_t cp;
        std::size_t n;
        if (b0 < 0x80) {
            cp = b0;
            n = 1;
        } else if (b0 < 0xE0) {
            cp = b0 & 0x1F;
            n = 2;
        } else if (b0 < 0xF0) {
            cp = b0 & 0x0F;
            n = 3;
        } else {
            cp = b0 & 0x07;
            n = 4;
        }
        for (std::size_t k = 1; k < n && i + k < s.size(); ++k)
            cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
        cps.push_back(cp);
        offsets.push_back(static_cast<std::uint32_t>(i));
        i += n;
    }
    offsets.push_back(static_cast<std::uint32_t>(s.size()));
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

}  // namespace bitnet::tokenizers::unicode

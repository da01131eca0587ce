#include <catch2/catch.hpp>

#include <random>

#include "bitnet/common/error.hpp"
#include "bitnet/tokenizers/streaming_detokenizer.hpp"
#include "tokenizer_fixtures.hpp"

using namespace bitnet;

namespace {

// Random strings over a mix of scripts, whitespace, combining marks and emoji (no surrogates).
std::string random_unicode(std::mt19937& rng, bool allow_space_marker) {
    static const std::vector<std::pair<char32_t, char32_t>> ranges = {
        {0x20, 0x7E},     {0x20, 0x7E},       {0x20, 0x7E},       {0x09, 0x0D},
        {0xA0, 0x17F},    {0x300, 0x36F},     {0x370, 0x3FF},     {0x400, 0x4FF},
        {0x590, 0x5FF},   {0x600, 0x6FF},     {0x900, 0x97F},     {0x2000, 0x206F},
        {0x2500, 0x259F}, {0x3040, 0x30FF},   {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},
        {0xFE00, 0xFFFD}, {0x1F300, 0x1FAFF}, {0x10000, 0x10FFFF}};
    std::uniform_int_distribution<std::size_t> pick(0, ranges.size() - 1);
    std::uniform_int_distribution<int> length(0, 40);
    std::string out;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) {
        const auto& r = ranges[pick(rng)];
        char32_t cp = std::uniform_int_distribution<char32_t>(r.first, r.second)(rng);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
        if (!allow_space_marker && cp == 0x2581) cp = 'y';
        std::string utf8;
        if (cp < 0x80)
            utf8 += static_cast<char>(cp);
        else if (cp < 0x800) {
            utf8 += static_cast<char>(0xC0 | (cp >> 6));
            utf8 += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            utf8 += static_cast<char>(0xE0 | (cp >> 12));
            utf8 += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            utf8 += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            utf8 += static_cast<char>(0xF0 | (cp >> 18));
            utf8 += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            utf8 += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            utf8 += static_cast<char>(0x80 | (cp & 0x3F));
        }
        out += utf8;
    }
    return out;
}

std::string stream(const tokenizers::Tokenizer& tok, const std::vector<std::int32_t>& ids) {
    tokenizers::StreamingDetokenizer detok(tok);
    std::string out;
    for (auto id : ids) {
        const std::string part = detok.push(id);
        out += part;
    }
    return out + detok.flush();
}

}  // namespace

TEST_CASE("decode(encode(s)) == s for 10,000 random Unicode strings (LLaMA 3)") {
    const auto* tok = test::llama3_tokenizer();
    if (!tok) {
        WARN("SKIPPED: ../shared tokenizer fixtures absent");
        return;
    }
    std::mt19937 rng(20261122);
    for (int i = 0; i < 10000; ++i) {
        const std::string s = random_unicode(rng, true);
        const auto ids = tok->encode(s, false, false);
        REQUIRE(tok->decode(ids) == s);
        REQUIRE(stream(*tok, ids) == s);
    }
}

TEST_CASE("decode(encode(s)) == s for 10,000 random Unicode strings (LLaMA 2, without U+2581)") {
    // U+2581 is SentencePiece's space marker: a literal one in the input decodes as a space.
    const auto* tok = test::llama2_tokenizer();
    if (!tok) {
        WARN("SKIPPED: ../shared tokenizer fixtures absent");
        return;
    }
    std::mt19937 rng(7);
    for (int i = 0; i < 10000; ++i) {
        const std::string s = random_unicode(rng, false);
        const auto ids = tok->encode(s, false, false);
        REQUIRE(tok->decode(ids) == s);
        REQUIRE(stream(*tok, ids) == s);
    }
}

TEST_CASE("streaming never emits a partial UTF-8 character") {
    const auto* tok = test::llama3_tokenizer();
    if (!tok) {
        WARN("SKIPPED: ../shared tokenizer fixtures absent");
        return;
    }
    const std::string text = "emoji 👨‍👩‍👧 and 你好，世界 and é́";
    const auto ids = tok->encode(text, false, false);
    tokenizers::StreamingDetokenizer detok(*tok);
    std::string out;
    bool held_back = false;
    for (auto id : ids) {
        const std::string part = detok.push(id);
        // Every returned chunk is valid UTF-8 by itself.
        CHECK(tok->decode(tok->encode(part, false, false)) == part);
        held_back = held_back || (part.empty() && !tok->token_to_piece(id).empty());
        out += part;
    }
    out += detok.flush();
    CHECK(out == text);
    CHECK(held_back);  // some emoji/CJK bytes were split across tokens and waited
}

TEST_CASE("a byte sequence that never completes becomes U+FFFD, in decode and in streaming") {
    const auto* tok = test::llama3_tokenizer();
    if (!tok) {
        WARN("SKIPPED: ../shared tokenizer fixtures absent");
        return;
    }
    // Encode a 4-byte emoji, then drop its last token: the remaining bytes are an unfinished
    // character.
    auto ids = tok->encode("a😀", false, false);
    REQUIRE(ids.size() >= 2);
    ids.pop_back();
    const std::string decoded = tok->decode(ids);
    CHECK(decoded.rfind("\xEF\xBF\xBD") != std::string::npos);
    CHECK(stream(*tok, ids) == decoded);
}

TEST_CASE("invalid UTF-8 input is encoded as U+FFFD, not dropped") {
    const auto* tok = test::llama3_tokenizer();
    if (!tok) {
        WARN("SKIPPED: ../shared tokenizer fixtures absent");
        return;
    }
    CHECK(tok->encode("ab\xFF"
                      "cd",
                      false, false) == tok->encode("ab\xEF\xBF\xBD"
                                                   "cd",
                                                   false, false));
    CHECK(tok->encode("x\xE2\x82", false, false) ==
          tok->encode("x\xEF\xBF\xBD", false, false));  // truncated
    CHECK(tok->encode("\xC0\xAF", false, false) ==
          tok->encode("\xEF\xBF\xBD\xEF\xBF\xBD", false, false));  // overlong
}

TEST_CASE("empty text encodes to nothing, or to just BOS") {
    for (const auto* tok : {test::llama3_tokenizer(), test::llama2_tokenizer()}) {
        if (!tok) {
            WARN("SKIPPED: ../shared tokenizer fixtures absent");
            return;
        }
        CHECK(tok->encode("", false, false).empty());
        const auto with_bos = tok->encode("", true, false);
        REQUIRE(with_bos.size() == 1);
        CHECK(with_bos[0] == *tok->special_tokens().bos);
        CHECK(tok->decode(std::vector<std::int32_t>{}).empty());
    }
}

TEST_CASE("a 1 MB string without spaces and 100k repeated emoji round-trip") {
    const auto* tok = test::llama3_tokenizer();
    if (!tok) {
        WARN("SKIPPED: ../shared tokenizer fixtures absent");
        return;
    }
    std::mt19937 rng(3);
    std::string letters(1 << 20, 'a');
    for (char& c : letters) c = static_cast<char>('a' + rng() % 26);
    auto ids = tok->encode(letters, false, false);
    CHECK(ids.size() < letters.size() * 3 / 4);  // merges happened
    CHECK(tok->decode(ids) == letters);
    std::string emoji;
    for (int i = 0; i < 100000; ++i) emoji += "😀";
    ids = tok->encode(emoji, false, false);
    CHECK(tok->decode(ids) == emoji);
    const auto* spm = test::llama2_tokenizer();
    if (spm) CHECK(spm->decode(spm->encode(letters, false, false)) == letters);
}

TEST_CASE("special tokens are split out only when asked") {
    const auto* tok = test::llama3_tokenizer();
    if (!tok) {
        WARN("SKIPPED: ../shared tokenizer fixtures absent");
        return;
    }
    const std::string text = "hi<|eot_id|>there";
    const auto parsed = tok->encode(text, false, true);
    const auto plain = tok->encode(text, false, false);
    CHECK(std::count(parsed.begin(), parsed.end(), 128009) == 1);
    CHECK(std::count(plain.begin(), plain.end(), 128009) == 0);
    CHECK(tok->decode(parsed) == text);
    CHECK(tok->decode(plain) == text);
    CHECK(tok->decode(parsed, true) == "hithere");
    const auto with_bos = tok->encode(text, true, true);
    CHECK(with_bos.front() == 128000);
}

TEST_CASE("ids outside the vocabulary are a clear error") {
    const auto* tok = test::llama3_tokenizer();
    if (!tok) {
        WARN("SKIPPED: ../shared tokenizer fixtures absent");
        return;
    }
    try {
        tok->decode(std::vector<std::int32_t>{1, 128256});
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidArgument);
        CHECK_THAT(e.what(), Catch::Contains("128256"));
    }
    CHECK_THROWS_AS(tok->token_to_piece(-1), Error);
    tokenizers::StreamingDetokenizer detok(*tok);
    CHECK_THROWS_AS(detok.push(200000), Error);
}

TEST_CASE("merges that reference unknown tokens are a load error naming the merge") {
    tokenizers::TokenizerData data;
    data.model = "gpt2";
    data.pre = "llama-bpe";
    for (int b = 0; b < 256; ++b)
        data.tokens.push_back("tok" + std::to_string(b));  // placeholder bytes
    data.token_types.assign(data.tokens.size(), 1);
    data.merges = {"tok1 nothere"};
    try {
        tokenizers::create_tokenizer(data);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Catch::Contains("merge 0 'tok1 nothere'"));
        CHECK_THAT(e.what(), Catch::Contains("unknown token 'nothere'"));
    }
    data.model = "wordpiece";
    CHECK_THROWS_WITH(tokenizers::create_tokenizer(data), Catch::Contains("not supported"));
}

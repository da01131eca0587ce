// SentencePiece-style BPE (LLaMA 1/2): spaces become U+2581, a leading one is prepended, symbols
// are UTF-8 characters merged by merge rank (or by token score when the data has no merges),
// and characters with no token fall back to <0xNN> byte tokens.
#include <array>
#include <cstdio>
#include <string>

#include "backends.hpp"
#include "bitnet/common/error.hpp"
#include "bpe_merger.hpp"
#include "special_splitter.hpp"
#include "unicode.hpp"

namespace bitnet::tokenizers {
namespace {

const std::string kSpaceMarker = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

class SentencePieceBpe final : public Tokenizer {
  public:
    explicit SentencePieceBpe(TokenizerData data) : Tokenizer(std::move(data)), specials_(data_) {
        for (std::size_t i = 0; i < data_.tokens.size(); ++i)
            index_.emplace(data_.tokens[i], static_cast<std::int32_t>(i));
        merger_ = std::make_unique<BpeMerger>(data_, index_, "tokenizer");
        byte_token_.fill(-1);
        for (int b = 0; b < 256; ++b) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            if (const auto it = index_.find(std::string_view(name)); it != index_.end())
                byte_token_[static_cast<std::size_t>(b)] = it->second;
        }
        // Merging word by word is exact when no token continues past a word into the next "▁"
        // (no token has the marker right after another character); then no merge can cross
        // such a boundary. It turns one long merge over the whole text into many short ones.
        words_are_independent_ = true;
        for (const std::string& t : data_.tokens) {
            for (std::size_t p = t.find(kSpaceMarker, 1); p != std::string::npos;
                 p = t.find(kSpaceMarker, p + 1)) {
                if (p < kSpaceMarker.size() ||
                    t.compare(p - kSpaceMarker.size(), kSpaceMarker.size(), kSpaceMarker) != 0) {
                    words_are_independent_ = false;
                    break;
                }
            }
            if (!words_are_independent_) break;
        }
        pieces_.resize(data_.tokens.size());
        for (std::size_t id = 0; id < data_.tokens.size(); ++id) {
            const std::string& t = data_.tokens[id];
            if (data_.token_types[id] == static_cast<std::int32_t>(TokenType::Byte) &&
                t.size() == 6) {
                pieces_[id] =
                    std::string(1, static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16)));
                continue;
            }
            std::string piece;
            for (std::size_t i = 0; i < t.size();) {
                if (t.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
                    piece += ' ';
                    i += kSpaceMarker.size();
                } else {
                    piece += t[i++];
                }
            }
            pieces_[id] = piece;
        }
    }

    std::vector<std::int32_t> encode(std::string_view text, bool add_bos,
                                     bool parse_special) const override {
        std::vector<std::int32_t> ids;
        if (add_bos && data_.bos) ids.push_back(*data_.bos);
        const std::string clean = unicode::sanitize_utf8(text);
        if (!parse_special) {
            encode_text(clean, true, ids);
            return ids;
        }
        bool after_special =
            true;  // like llama.cpp: text at the start or after a special token gets the prefix
        for (const Fragment& f : specials_.split(clean)) {
            if (f.id >= 0) {
                ids.push_back(f.id);
                after_special = true;
            } else {
                encode_text(f.text, after_special, ids);
                after_special = false;
            }
        }
        return ids;
    }

    std::string token_to_piece(std::int32_t id) const override {
        check_id(id);
        return pieces_[static_cast<std::size_t>(id)];
    }

    bool strips_leading_space() const override { return true; }
    std::string description() const override { return "SentencePiece BPE with byte fallback"; }

  private:
    void encode_text(std::string_view text, bool add_prefix, std::vector<std::int32_t>& ids) const {
        thread_local std::string normalized;
        thread_local std::vector<Symbol> symbols;
        if (text.empty()) return;  // no prefix for empty text: "" encodes to nothing
        normalized.clear();
        if (add_prefix) normalized += kSpaceMarker;
        for (char c : text) {
            if (c == ' ') {
                normalized += kSpaceMarker;
            } else {
                normalized += c;
            }
        }
        symbols.clear();
        for (std::size_t i = 0; i < normalized.size();) {
            const std::size_t n = unicode::valid_sequence_length(normalized, i);
            const auto it = index_.find(std::string_view(normalized).substr(i, n));
            symbols.push_back({it == index_.end() ? -1 : it->second, static_cast<std::uint32_t>(i),
                               static_cast<std::uint32_t>(i + n)});
            i += n;
        }
        merge_words(normalized, symbols);
        for (const Symbol& s : symbols) {
            if (s.id >= 0) {
                ids.push_back(s.id);
                continue;
            }
            for (std::uint32_t i = s.begin; i < s.end; ++i) {
                const std::int32_t byte_id = byte_token_[static_cast<unsigned char>(normalized[i])];
                if (byte_id >= 0) {
                    ids.push_back(byte_id);
                } else if (data_.unk) {
                    ids.push_back(*data_.unk);
                    break;  // one <unk> per character, never a silent drop
                } else {
                    fail(ErrorCode::InvalidArgument,
                         "the text contains a character with no token, no byte token and no <unk>");
                }
            }
        }
    }

    void merge_words(const std::string& normalized, std::vector<Symbol>& symbols) const {
        if (!words_are_independent_) {
            merger_->merge(symbols);
            return;
        }
        thread_local std::vector<Symbol> word, merged;
        merged.clear();
        auto is_marker = [&normalized](const Symbol& sym) {
            return normalized.compare(sym.begin, sym.end - sym.begin, kSpaceMarker) == 0;
        };
        std::size_t start = 0;
        for (std::size_t i = 1; i <= symbols.size(); ++i) {
            if (i < symbols.size() && !(is_marker(symbols[i]) && !is_marker(symbols[i - 1])))
                continue;
            word.assign(symbols.begin() + static_cast<std::ptrdiff_t>(start),
                        symbols.begin() + static_cast<std::ptrdiff_t>(i));
            merger_->merge(word);
            merged.insert(merged.end(), word.begin(), word.end());
            start = i;
        }
        symbols.swap(merged);
    }

    bool words_are_independent_ = false;
    SpecialSplitter specials_;
    TokenIndex index_;
    std::unique_ptr<BpeMerger> merger_;
    std::array<std::int32_t, 256> byte_token_{};
    std::vector<std::string> pieces_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_bpe(TokenizerData data) {
    return std::make_unique<SentencePieceBpe>(std::move(data));
}

}  // namespace bitnet::tokenizers

// Byte-level BPE (GPT-2 style, LLaMA 3 pre-tokenizer): text -> pieces -> bytes mapped to the
// GPT-2 printable alphabet -> merges by rank -> ids.
#include <array>

#include "backends.hpp"
#include "bitnet/common/error.hpp"
#include "bpe_merger.hpp"
#include "llama3_pretokenizer.hpp"
#include "special_splitter.hpp"
#include "unicode.hpp"

namespace bitnet::tokenizers {
namespace {

// GPT-2's byte -> code point table: printable Latin-1 bytes map to themselves, the other 68
// bytes to U+0100.. in byte order.
std::array<char32_t, 256> byte_to_codepoint() {
    std::array<char32_t, 256> map{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
        const bool printable =
            (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        map[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
    }
    return map;
}

class ByteLevelBpe final : public Tokenizer {
  public:
    explicit ByteLevelBpe(TokenizerData data) : Tokenizer(std::move(data)), specials_(data_) {
        if (!data_.pre.empty() && data_.pre != "llama-bpe" && data_.pre != "llama3")
            fail(ErrorCode::Unsupported,
                 "byte-level BPE pre-tokenizer '" + data_.pre +
                     "' is not supported (supported: llama-bpe, the LLaMA 3 pattern)");
        for (std::size_t i = 0; i < data_.tokens.size(); ++i)
            index_.emplace(data_.tokens[i], static_cast<std::int32_t>(i));
        merger_ = std::make_unique<BpeMerger>(data_, index_, "tokenizer");
        const auto map = byte_to_codepoint();
        std::array<std::int32_t, 0x200> inverse{};
        inverse.fill(-1);
        for (int b = 0; b < 256; ++b) {
            std::string mapped;
            unicode::append_utf8(mapped, map[static_cast<std::size_t>(b)]);
            mapped_[static_cast<std::size_t>(b)] = mapped;
            const auto it = index_.find(mapped);
            if (it == index_.end())
                fail(ErrorCode::InvalidFormat, "byte-level vocabulary has no token for byte 0x" +
                                                   hex(b) + " ('" + mapped +
                                                   "'); the tokenizer is incomplete");
            byte_token_[static_cast<std::size_t>(b)] = it->second;
            inverse[map[static_cast<std::size_t>(b)]] = b;
        }
        // Each token's bytes, for decoding. Added tokens are stored as their literal text.
        pieces_.resize(data_.tokens.size());
        std::vector<char32_t> cps;
        std::vector<std::uint32_t> offsets;
        for (std::size_t id = 0; id < data_.tokens.size(); ++id) {
            const std::int32_t type = data_.token_types[id];
            const std::string& t = data_.tokens[id];
            if (type == static_cast<std::int32_t>(TokenType::Control) ||
                type == static_cast<std::int32_t>(TokenType::UserDefined)) {
                pieces_[id] = t;
                continue;
            }
            unicode::decode_utf8(unicode::sanitize_utf8(t), cps, offsets);
            std::string bytes;
            bool mappable = true;
            for (char32_t c : cps) {
                if (c < inverse.size() && inverse[c] >= 0) {
                    bytes += static_cast<char>(inverse[c]);
                } else {
                    mappable = false;
                    break;
                }
            }
            pieces_[id] = mappable ? bytes : t;
        }
    }

    std::vector<std::int32_t> encode(std::string_view text, bool add_bos,
                                     bool parse_special) const override {
        std::vector<std::int32_t> ids;
        if (add_bos && data_.bos) ids.push_back(*data_.bos);
        const std::string clean = unicode::sanitize_utf8(text);
        if (!parse_special) {
            encode_text(clean, ids);
            return ids;
        }
        for (const Fragment& f : specials_.split(clean)) {
            if (f.id >= 0) {
                ids.push_back(f.id);
            } else {
                encode_text(f.text, ids);
            }
        }
        return ids;
    }

    std::string token_to_piece(std::int32_t id) const override {
        check_id(id);
        return pieces_[static_cast<std::size_t>(id)];
    }

    std::string description() const override { return "byte-level BPE (LLaMA 3 pre-tokenizer)"; }

  private:
    static std::string hex(int b) {
        const char* digits = "0123456789ABCDEF";
        return {digits[b >> 4], digits[b & 15]};
    }

    void encode_text(std::string_view text, std::vector<std::int32_t>& ids) const {
        thread_local std::vector<Piece> pieces;
        thread_local std::vector<Symbol> symbols;
        thread_local std::string mapped;
        pieces.clear();
        split_llama3(text, pieces);
        for (const Piece& p : pieces) {
            const std::string_view piece = text.substr(p.begin, p.end - p.begin);
            // LLaMA 3 ignores merges for pieces that are a token as a whole (HF ignore_merges).
            mapped.clear();
            for (unsigned char b : piece) mapped += mapped_[b];
            if (const auto it = index_.find(mapped); it != index_.end()) {
                ids.push_back(it->second);
                continue;
            }
            symbols.clear();
            for (std::size_t i = 0; i < piece.size(); ++i)
                symbols.push_back({byte_token_[static_cast<unsigned char>(piece[i])],
                                   static_cast<std::uint32_t>(i),
                                   static_cast<std::uint32_t>(i + 1)});
            merger_->merge(symbols);
            for (const Symbol& s : symbols) ids.push_back(s.id);
        }
    }

    SpecialSplitter specials_;
    TokenIndex index_;
    std::unique_ptr<BpeMerger> merger_;
    std::array<std::string, 256> mapped_;
    std::array<std::int32_t, 256> byte_token_{};
    std::vector<std::string> pieces_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_level_bpe(TokenizerData data) {
    return std::make_unique<ByteLevelBpe>(std::move(data));
}

}  // namespace bitnet::tokenizers

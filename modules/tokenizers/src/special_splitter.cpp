#include "special_splitter.hpp"

#include <algorithm>

#include "bitnet/tokenizers/tokenizer.hpp"

namespace bitnet::tokenizers {

SpecialSplitter::SpecialSplitter(const TokenizerData& data) {
    for (std::size_t id = 0; id < data.tokens.size(); ++id) {
        const std::int32_t type = id < data.token_types.size() ? data.token_types[id] : 1;
        if (type != static_cast<std::int32_t>(TokenType::Control) &&
            type != static_cast<std::int32_t>(TokenType::UserDefined))
            continue;
        const std::string& t = data.tokens[id];
        if (t.empty()) continue;
        by_first_byte_[static_cast<unsigned char>(t[0])].emplace_back(
            t, static_cast<std::int32_t>(id));
    }
    for (auto& list : by_first_byte_)
        std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
            return a.first.size() > b.first.size();
        });
}

std::vector<Fragment> SpecialSplitter::split(std::string_view text) const {
    std::vector<Fragment> out;
    std::size_t plain_start = 0;
    for (std::size_t i = 0; i < text.size();) {
        const auto& candidates = by_first_byte_[static_cast<unsigned char>(text[i])];
        bool matched = false;
        for (const auto& [token, id] : candidates) {
            if (text.compare(i, token.size(), token) == 0) {
                if (i > plain_start) out.push_back({text.substr(plain_start, i - plain_start), -1});
                out.push_back({{}, id});
                i += token.size();
                plain_start = i;
                matched = true;
                break;
            }
        }
        if (!matched) ++i;
    }
    if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
    return out;
}

}  // namespace bitnet::tokenizers

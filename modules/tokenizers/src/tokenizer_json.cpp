// tokenizer.json (Hugging Face `tokenizers`) -> TokenizerData.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "bitnet/common/error.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"

namespace bitnet::tokenizers {
namespace {

using nlohmann::json;

json parse_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorCode::NotFound, path + ": cannot open tokenizer file");
    try {
        return json::parse(in);
    } catch (const json::exception& e) {
        fail(ErrorCode::InvalidFormat, path + ": not valid JSON (" + e.what() + ")");
    }
}

bool mentions(const json& node, const std::string& type) {
    if (node.is_object()) {
        if (node.contains("type") && node["type"] == type) return true;
        for (const auto& [k, v] : node.items()) {
            (void)k;
            if (mentions(v, type)) return true;
        }
    } else if (node.is_array()) {
        for (const auto& v : node)
            if (mentions(v, type)) return true;
    }
    return false;
}

// bos_token / eos_token in tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> token_name(const json& config, const char* field) {
    if (!config.contains(field)) return std::nullopt;
    const json& v = config[field];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
        return v["content"].get<std::string>();
    return std::nullopt;
}

bool is_byte_token(const std::string& t) {
    return t.size() == 6 && t.rfind("<0x", 0) == 0 && t[5] == '>' &&
           std::isxdigit(static_cast<unsigned char>(t[3])) &&
           std::isxdigit(static_cast<unsigned char>(t[4]));
}

}  // namespace

std::optional<std::int32_t> TokenizerData::id_of(const std::string& token) const {
    for (std::size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] == token) return static_cast<std::int32_t>(i);
    return std::nullopt;
}

TokenizerData read_tokenizer_json(const std::string& path) {
    const json root = parse_json_file(path);
    if (!root.is_object() || !root.contains("model") || !root["model"].is_object())
        fail(ErrorCode::InvalidFormat,
             path + ": no 'model' object; not a Hugging Face tokenizer.json");
    const json& model = root["model"];
    const std::string type = model.value("type", "");
    if (type != "BPE")
        fail(ErrorCode::Unsupported,
             path + ": model.type '" + type + "' is not supported (only BPE)");
    if (!model.contains("vocab") || !model["vocab"].is_object())
        fail(ErrorCode::InvalidFormat, path + ": model.vocab is missing or not an object");

    TokenizerData data;
    const bool byte_fallback = model.value("byte_fallback", false);
    data.model = byte_fallback ? "llama" : "gpt2";
    if (!byte_fallback && !mentions(root, "ByteLevel"))
        fail(ErrorCode::Unsupported,
             path + ": a BPE tokenizer without ByteLevel or byte_fallback is not supported");
    const std::string pretok = root.contains("pre_tokenizer") ? root["pre_tokenizer"].dump() : "";
    data.pre = pretok.find("\\\\p{N}{1,3}") != std::string::npos ? "llama-bpe" : "default";

    // Vocabulary by id: model.vocab plus added_tokens (which may extend it).
    std::map<std::int64_t, std::string> by_id;
    for (const auto& [token, id] : model["vocab"].items()) {
        if (!id.is_number_integer() || id.get<std::int64_t>() < 0)
            fail(ErrorCode::InvalidFormat,
                 path + ": model.vocab['" + token + "'] is not a non-negative id");
        by_id[id.get<std::int64_t>()] = token;
    }
    std::map<std::int64_t, bool> added_special;
    if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
        for (const json& t : root["added_tokens"]) {
            if (!t.contains("id") || !t.contains("content"))
                fail(ErrorCode::InvalidFormat,
                     path + ": an added_tokens entry lacks id or content");
            const auto id = t["id"].get<std::int64_t>();
            by_id[id] = t["content"].get<std::string>();
            added_special[id] = t.value("special", false);
        }
    }
    if (by_id.empty()) fail(ErrorCode::InvalidFormat, path + ": the vocabulary is empty");
    const std::int64_t vocab = by_id.rbegin()->first + 1;
    if (static_cast<std::size_t>(vocab) != by_id.size())
        fail(ErrorCode::InvalidFormat, path + ": token ids are not contiguous (" +
                                           std::to_string(by_id.size()) + " tokens, highest id " +
                                           std::to_string(vocab - 1) + ")");
    const std::string unk_name = model.contains("unk_token") && model["unk_token"].is_string()
                                     ? model["unk_token"].get<std::string>()
                                     : "";
    data.tokens.reserve(vocab);
    data.token_types.reserve(vocab);
    for (const auto& [id, token] : by_id) {
        data.tokens.push_back(token);
        TokenType tt = TokenType::Normal;
        if (auto it = added_special.find(id); it != added_special.end())
            tt = it->second ? TokenType::Control : TokenType::UserDefined;
        if (!unk_name.empty() && token == unk_name) tt = TokenType::Unknown;
        if (byte_fallback && is_byte_token(token)) tt = TokenType::Byte;
        data.token_types.push_back(static_cast<std::int32_t>(tt));
    }

    std::map<std::string, std::size_t> merge_rank;
    if (model.contains("merges") && model["merges"].is_array()) {
        for (const json& m : model["merges"]) {
            std::string merge;
            if (m.is_string()) {
                merge = m.get<std::string>();
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                merge = m[0].get<std::string>() + " " + m[1].get<std::string>();
            } else {
                fail(ErrorCode::InvalidFormat, path + ": model.merges entry " +
                                                   std::to_string(data.merges.size()) +
                                                   " is malformed");
            }
            data.merges.push_back(std::move(merge));
        }
    }
    if (data.model == "llama") {
        // SentencePiece merges by score; a merge's priority becomes the score of its result.
        std::map<std::string, std::size_t> index;
        for (std::size_t i = 0; i < data.tokens.size(); ++i) index.emplace(data.tokens[i], i);
        data.scores.assign(data.tokens.size(), 0.0f);
        for (std::size_t rank = 0; rank < data.merges.size(); ++rank) {
            const std::string& m = data.merges[rank];
            const auto space = m.find(' ');
            auto it = index.find(m.substr(0, space) + m.substr(space + 1));
            if (it != index.end() && data.scores[it->second] == 0.0f)
                data.scores[it->second] = -static_cast<float>(rank + 1);
        }
    }

    // tokenizer_config.json next to tokenizer.json: names of bos/eos, add_bos, chat template.
    json config = json::object();
    const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
    if (std::filesystem::exists(config_path)) config = parse_json_file(config_path.string());
    auto lookup = [&data](const std::optional<std::string>& name) -> std::optional<std::int32_t> {
        return name ? data.id_of(*name) : std::nullopt;
    };
    data.bos = lookup(token_name(config, "bos_token"));
    data.eos = lookup(token_name(config, "eos_token"));
    if (!data.bos) data.bos = lookup(data.model == "llama" ? "<s>" : "<|begin_of_text|>");
    if (!data.eos) data.eos = lookup(data.model == "llama" ? "</s>" : "<|end_of_text|>");
    data.eot = lookup("<|eot_id|>");
    if (!unk_name.empty()) data.unk = lookup(unk_name);
    data.pad = lookup(token_name(config, "pad_token"));
    if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
        data.add_bos = config["add_bos_token"].get<bool>();
    if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean())
        data.add_eos = config["add_eos_token"].get<bool>();
    if (config.contains("chat_template") && config["chat_template"].is_string())
        data.chat_template = config["chat_template"].get<std::string>();
    return data;
}

}  // namespace bitnet::tokenizers

// TokenizerData <-> GGUF `tokenizer.*` metadata.
#include "bitnet/common/error.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"

namespace bitnet::tokenizers {
namespace {

std::optional<std::int32_t> optional_id(const models::GgufFile& file, const char* key,
                                        std::size_t vocab) {
    const models::GgufValue* v = file.find(key);
    if (v == nullptr) return std::nullopt;
    const std::uint64_t id = v->to_u64(key);
    if (id >= vocab)
        fail(ErrorCode::InvalidFormat, file.path() + ": " + key + " = " + std::to_string(id) +
                                           " is outside the vocabulary of " +
                                           std::to_string(vocab) + " tokens");
    return static_cast<std::int32_t>(id);
}

}  // namespace

TokenizerData read_gguf_tokenizer(const models::GgufFile& file) {
    TokenizerData data;
    const models::GgufValue* model = file.find("tokenizer.ggml.model");
    if (model == nullptr)
        fail(ErrorCode::NotFound, file.path() +
                                      ": no tokenizer.ggml.model key; the file carries no "
                                      "tokenizer — pass --tokenizer tokenizer.json");
    data.model = std::string(model->to_string("tokenizer.ggml.model"));
    if (const auto* pre = file.find("tokenizer.ggml.pre"))
        data.pre = std::string(pre->to_string("tokenizer.ggml.pre"));
    for (auto s : file.get("tokenizer.ggml.tokens").to_string_array("tokenizer.ggml.tokens"))
        data.tokens.emplace_back(s);
    const std::size_t vocab = data.tokens.size();
    if (const auto* types = file.find("tokenizer.ggml.token_type")) {
        for (auto t : types->to_int_array("tokenizer.ggml.token_type"))
            data.token_types.push_back(static_cast<std::int32_t>(t));
        if (data.token_types.size() != vocab)
            fail(ErrorCode::InvalidFormat, file.path() + ": tokenizer.ggml.token_type has " +
                                               std::to_string(data.token_types.size()) +
                                               " entries for " + std::to_string(vocab) + " tokens");
    }
    if (const auto* scores = file.find("tokenizer.ggml.scores")) {
        data.scores = scores->to_float_array("tokenizer.ggml.scores");
        if (data.scores.size() != vocab)
            fail(ErrorCode::InvalidFormat, file.path() + ": tokenizer.ggml.scores has " +
                                               std::to_string(data.scores.size()) +
                                               " entries for " + std::to_string(vocab) + " tokens");
    }
    if (const auto* merges = file.find("tokenizer.ggml.merges"))
        for (auto s : merges->to_string_array("tokenizer.ggml.merges")) data.merges.emplace_back(s);
    data.bos = optional_id(file, "tokenizer.ggml.bos_token_id", vocab);
    data.eos = optional_id(file, "tokenizer.ggml.eos_token_id", vocab);
    data.eot = optional_id(file, "tokenizer.ggml.eot_token_id", vocab);
    data.unk = optional_id(file, "tokenizer.ggml.unknown_token_id", vocab);
    data.pad = optional_id(file, "tokenizer.ggml.padding_token_id", vocab);
    if (const auto* v = file.find("tokenizer.ggml.add_bos_token"))
        data.add_bos = v->to_bool("tokenizer.ggml.add_bos_token");
    if (const auto* v = file.find("tokenizer.ggml.add_eos_token"))
        data.add_eos = v->to_bool("tokenizer.ggml.add_eos_token");
    if (const auto* v = file.find("tokenizer.chat_template"))
        data.chat_template = std::string(v->to_string("tokenizer.chat_template"));
    return data;
}

void write_tokenizer_metadata(models::GgufWriter& writer, const TokenizerData& data) {
    writer.set_string("tokenizer.ggml.model", data.model);
    if (!data.pre.empty()) writer.set_string("tokenizer.ggml.pre", data.pre);
    writer.set_string_array("tokenizer.ggml.tokens", data.tokens);
    writer.set_i32_array("tokenizer.ggml.token_type", data.token_types);
    if (!data.scores.empty()) writer.set_f32_array("tokenizer.ggml.scores", data.scores);
    if (!data.merges.empty()) writer.set_string_array("tokenizer.ggml.merges", data.merges);
    auto set_id = [&writer](const char* key, const std::optional<std::int32_t>& id) {
        if (id) writer.set_u32(key, static_cast<std::uint32_t>(*id));
    };
    set_id("tokenizer.ggml.bos_token_id", data.bos);
    set_id("tokenizer.ggml.eos_token_id", data.eos);
    set_id("tokenizer.ggml.eot_token_id", data.eot);
    set_id("tokenizer.ggml.unknown_token_id", data.unk);
    set_id("tokenizer.ggml.padding_token_id", data.pad);
    writer.set_bool("tokenizer.ggml.add_bos_token", data.add_bos);
    writer.set_bool("tokenizer.ggml.add_eos_token", data.add_eos);
    if (!data.chat_template.empty())
        writer.set_string("tokenizer.chat_template", data.chat_template);
}

}  // namespace bitnet::tokenizers

#include "bitnet/tokenizers/chat_template.hpp"

#include "bitnet/common/error.hpp"

namespace bitnet::tokenizers {
namespace {

std::string trim(std::string_view s) {
    const auto is_space = [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    };
    std::size_t b = 0, e = s.size();
    while (b < e && is_space(s[b])) ++b;
    while (e > b && is_space(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
}

void check_role(const std::string& role) {
    if (role != "system" && role != "user" && role != "assistant")
        fail(ErrorCode::InvalidArgument,
             "chat message role '" + role + "' is not one of system, user, assistant");
}

}  // namespace

std::optional<ChatFormat> chat_format_from_name(std::string_view name) {
    if (name == "bitnet") return ChatFormat::Bitnet;
    if (name == "llama3") return ChatFormat::Llama3;
    return std::nullopt;
}

std::string chat_format_name(ChatFormat format) {
    return format == ChatFormat::Bitnet ? "bitnet" : "llama3";
}

ChatFormat detect_chat_format(std::string_view t) {
    auto has = [&t](std::string_view marker) { return t.find(marker) != std::string_view::npos; };
    if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatFormat::Llama3;
    // 2B4T: roles rendered as "User: ...<|eot_id|>" (capitalized role names, "Assistant: ").
    if (has("<|eot_id|>") && (has("Assistant: ") || has("capitalize"))) return ChatFormat::Bitnet;
    if (t.empty())
        fail(ErrorCode::Unsupported,
             "the model has no chat template (tokenizer.chat_template); pass --chat-format "
             "bitnet|llama3");
    fail(ErrorCode::Unsupported,
         "unrecognized chat template (known: bitnet 2B4T, llama3); pass --chat-format "
         "bitnet|llama3");
}

std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
    std::string out = "<|begin_of_text|>";
    for (const ChatMessage& m : messages) {
        check_role(m.role);
        if (format == ChatFormat::Llama3) {
            out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) +
                   "<|eot_id|>";
        } else {
            std::string role = m.role;
            role[0] = static_cast<char>(role[0] - 'a' + 'A');
            out += role + ": " + trim(m.content) + "<|eot_id|>";
        }
    }
    if (add_generation_prompt)
        out += format == ChatFormat::Llama3 ? "<|start_header_id|>assistant<|end_header_id|>\n\n"
                                            : "Assistant: ";
    return out;
}

}  // namespace bitnet::tokenizers

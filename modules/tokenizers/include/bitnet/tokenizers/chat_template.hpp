// Chat prompt formats. No Jinja engine: the model's tokenizer.chat_template is recognised by
// its markers and rendered by hand for the formats we know (like llama.cpp's
// llama_chat_apply_template). The rendered text contains special tokens literally; encode it
// with parse_special = true and add_bos = false.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::tokenizers {

enum class ChatFormat {
    Bitnet,  // BitNet b1.58 2B4T: "<|begin_of_text|>User: hi<|eot_id|>Assistant: "
    Llama3,  // "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>..."
};

struct ChatMessage {
    std::string role;  // system | user | assistant
    std::string content;
};

// "bitnet" / "llama3" (for --chat-format); nullopt otherwise.
std::optional<ChatFormat> chat_format_from_name(std::string_view name);
std::string chat_format_name(ChatFormat format);

// Recognises a Jinja chat template. Throws bitnet::Error(Unsupported) for an empty or unknown
// template, telling the user to pass --chat-format bitnet|llama3.
ChatFormat detect_chat_format(std::string_view jinja_template);

// Renders the conversation; with add_generation_prompt, ends with the assistant's turn opener.
// Throws bitnet::Error(InvalidArgument) for an unknown role.
std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

}  // namespace bitnet::tokenizers

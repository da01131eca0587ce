// The OpenAI-compatible wire format: request bodies of /v1/completions and
// /v1/chat/completions turned into generation requests (every field checked, errors naming the
// field), and results turned into response objects, stream chunks and error bodies.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "bitnet/inference/engine.hpp"
#include "bitnet/tokenizers/chat_template.hpp"

namespace bitnet::server {

enum class Endpoint { Completions, ChatCompletions };

struct ApiRequest {
    Endpoint endpoint = Endpoint::Completions;
    inference::GenerationRequest generation;
    bool stream = false;
    std::int64_t max_tokens = 16;  // as asked; clamped to the context when queued
};

// A request the client got wrong: HTTP 400 with this message and the offending parameter.
struct RequestError {
    std::string message;
    std::string param;
};

// Parses and validates a request body. `chat_format` renders chat messages (nullopt: the
// model has no known template, so chat requests are refused with a clear message).
// `seed_source` gives a seed when the request has none.
std::variant<ApiRequest, RequestError> parse_request(Endpoint endpoint, const std::string& body,
                                                     std::optional<tokenizers::ChatFormat> format,
                                                     std::uint64_t default_seed);

// "stop" for end of generation or a stop string, "length" for the token or context limit.
std::string finish_reason(inference::StopReason reason);

struct ResponseIds {
    std::string id;  // cmpl-N / chatcmpl-N
    std::int64_t created = 0;
    std::string model;
};

nlohmann::json completion_response(Endpoint endpoint, const ResponseIds& ids,
                                   const inference::GenerationResult& result);
// One stream chunk: text (or a chat delta); `finish` set on the last one; `first` adds the
// chat role.
nlohmann::json stream_chunk(Endpoint endpoint, const ResponseIds& ids, const std::string& text,
                            const std::optional<std::string>& finish, bool first);
nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param = "");

}  // namespace bitnet::server

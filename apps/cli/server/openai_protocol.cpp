#include "openai_protocol.hpp"

#include "bitnet/common/error.hpp"

namespace bitnet::server {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxStops = 4;             // as OpenAI
constexpr std::int64_t kMaxTokensCap = 1 << 20;  // beyond any context; larger is surely a mistake

// Typed field access that names the field in its complaint.
class Fields {
  public:
    explicit Fields(const json& body) : body_(body) {}
    const json* get(const char* key) const {
        auto it = body_.find(key);
        return it == body_.end() || it->is_null() ? nullptr : &*it;
    }
    std::optional<double> number(const char* key, double lo, double hi) const {
        const json* v = get(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_number()) throw RequestError{std::string(key) + " must be a number", key};
        const double d = v->get<double>();
        if (!(d >= lo && d <= hi))
            throw RequestError{std::string(key) + " must be between " + fmt(lo) + " and " +
                                   fmt(hi) + " (got " + fmt(d) + ")",
                               key};
        return d;
    }
    std::optional<std::int64_t> integer(const char* key, std::int64_t lo, std::int64_t hi) const {
        const json* v = get(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_number_integer())
            throw RequestError{std::string(key) + " must be an integer", key};
        const auto i = v->is_number_unsigned()
                           ? static_cast<std::int64_t>(std::min<std::uint64_t>(
                                 v->get<std::uint64_t>(), static_cast<std::uint64_t>(INT64_MAX)))
                           : v->get<std::int64_t>();
        if (i < lo || i > hi)
            throw RequestError{std::string(key) + " must be between " + std::to_string(lo) +
                                   " and " + std::to_string(hi) + " (got " + std::to_string(i) +
                                   ")",
                               key};
        return i;
    }
    std::optional<bool> boolean(const char* key) const {
        const json* v = get(key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_boolean()) throw RequestError{std::string(key) + " must be true or false", key};
        return v->get<bool>();
    }

  private:
    static std::string fmt(double d) {
        std::string s = std::to_string(d);
        while (s.size() > 1 && s.back() == '0') s.pop_back();
        if (!s.empty() && s.back() == '.') s.pop_back();
        return s;
    }
    const json& body_;
};

std::string text_of(const json& v, const std::string& what) {
    if (v.is_string()) return v.get<std::string>();
    // Chat content may be an array of parts; only text parts are understood.
    if (v.is_array()) {
        std::string text;
        for (const json& part : v) {
            if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
                !part["text"].is_string())
                throw RequestError{what + " may only contain text parts", "messages"};
            text += part["text"].get<std::string>();
        }
        return text;
    }
    throw RequestError{what + " must be a string", "messages"};
}

std::string prompt_of(const json& body) {
    auto it = body.find("prompt");
    if (it == body.end() || it->is_null()) throw RequestError{"prompt is required", "prompt"};
    if (it->is_string()) return it->get<std::string>();
    if (it->is_array() && it->size() == 1 && (*it)[0].is_string())
        return (*it)[0].get<std::string>();
    throw RequestError{"prompt must be a string (or an array of one string)", "prompt"};
}

std::vector<tokenizers::ChatMessage> messages_of(const json& body) {
    auto it = body.find("messages");
    if (it == body.end() || !it->is_array() || it->empty())
        throw RequestError{"messages must be a non-empty array", "messages"};
    std::vector<tokenizers::ChatMessage> messages;
    for (std::size_t i = 0; i < it->size(); ++i) {
        const json& m = (*it)[i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
            throw RequestError{where + " needs a string role", "messages"};
        const std::string role = m["role"].get<std::string>();
        if (role != "system" && role != "user" && role != "assistant")
            throw RequestError{
                where + ".role must be system, user or assistant (got '" + role + "')", "messages"};
        if (!m.contains("content")) throw RequestError{where + " needs content", "messages"};
        messages.push_back({role, text_of(m["content"], where + ".content")});
    }
    return messages;
}

std::vector<std::string> stops_of(const json* v) {
    if (v == nullptr) return {};
    if (v->is_string()) return {v->get<std::string>()};
    if (v->is_array() && v->size() <= kMaxStops) {
        std::vector<std::string> stops;
        for (const json& s : *v) {
            if (!s.is_string() || s.get<std::string>().empty())
                throw RequestError{"stop must hold non-empty strings", "stop"};
            stops.push_back(s.get<std::string>());
        }
        return stops;
    }
    throw RequestError{"stop must be a string or an array of up to 4 strings", "stop"};
}

}  // namespace

std::variant<ApiRequest, RequestError> parse_request(Endpoint endpoint, const std::string& body,
                                                     std::optional<tokenizers::ChatFormat> format,
                                                     std::uint64_t default_seed) {
    json j;
    try {
        j = json::parse(body);
    } catch (const json::parse_error& e) {
        return RequestError{std::string("the body is not valid JSON: ") + e.what(), ""};
    }
    if (!j.is_object()) return RequestError{"the body must be a JSON object", ""};
    try {
        ApiRequest r;
        r.endpoint = endpoint;
        const Fields f(j);
        auto& g = r.generation;
        // OpenAI semantics: plain temperature + nucleus sampling unless asked otherwise.
        g.sampling.temperature = static_cast<float>(f.number("temperature", 0, 2).value_or(1.0));
        g.sampling.top_p = static_cast<float>(f.number("top_p", 0, 1).value_or(1.0));
        if (g.sampling.top_p <= 0) throw RequestError{"top_p must be greater than 0", "top_p"};
        g.sampling.top_k = static_cast<int>(f.integer("top_k", 0, 1 << 30).value_or(0));
        g.sampling.min_p = static_cast<float>(f.number("min_p", 0, 1).value_or(0.0));
        g.sampling.repeat_penalty =
            static_cast<float>(f.number("repeat_penalty", 0.01, 10).value_or(1.0));
        const auto seed = f.integer("seed", INT64_MIN, INT64_MAX);
        g.sampling.seed = seed ? static_cast<std::uint64_t>(*seed) : default_seed;
        if (f.integer("n", 1, 1).value_or(1) != 1)
            throw RequestError{"n must be 1", "n"};  // (integer() already refused others)
        const char* max_key =
            endpoint == Endpoint::ChatCompletions && j.contains("max_completion_tokens")
                ? "max_completion_tokens"
                : "max_tokens";
        r.max_tokens = f.integer(max_key, 1, kMaxTokensCap)
                           .value_or(endpoint == Endpoint::Completions ? 16 : kMaxTokensCap);
        r.stream = f.boolean("stream").value_or(false);
        g.stop = stops_of(f.get("stop"));
        if (endpoint == Endpoint::Completions) {
            g.prompt = prompt_of(j);
        } else {
            if (!format)
                throw RequestError{
                    "this model has no chat template bitnet knows; start the server with "
                    "--chat-format bitnet|llama3, or use /v1/completions",
                    "messages"};
            g.prompt = tokenizers::render_chat(*format, messages_of(j), true);
            g.add_bos = false;  // the template starts with <|begin_of_text|>
            g.parse_special = true;
        }
        return r;
    } catch (const RequestError& e) {
        return e;
    } catch (const Error& e) {
        return RequestError{e.what(), ""};
    }
}

std::string finish_reason(inference::StopReason reason) {
    switch (reason) {
        case inference::StopReason::EndOfGeneration:
        case inference::StopReason::StopString:
            return "stop";
        case inference::StopReason::Length:
        case inference::StopReason::ContextFull:
            return "length";
        case inference::StopReason::Cancelled:
            return "cancelled";
    }
    return "stop";
}

nlohmann::json completion_response(Endpoint endpoint, const ResponseIds& ids,
                                   const inference::GenerationResult& result) {
    json choice = {{"index", 0}, {"finish_reason", finish_reason(result.stop_reason)}};
    if (endpoint == Endpoint::Completions) {
        choice["text"] = result.text;
        choice["logprobs"] = nullptr;
    } else {
        choice["message"] = {{"role", "assistant"}, {"content", result.text}};
    }
    const auto prompt = static_cast<std::int64_t>(result.prompt_tokens.size());
    const auto completion = static_cast<std::int64_t>(result.tokens.size());
    return {{"id", ids.id},
            {"object", endpoint == Endpoint::Completions ? "text_completion" : "chat.completion"},
            {"created", ids.created},
            {"model", ids.model},
            {"choices", json::array({choice})},
            {"usage",
             {{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}}}};
}

nlohmann::json stream_chunk(Endpoint endpoint, const ResponseIds& ids, const std::string& text,
                            const std::optional<std::string>& finish, bool first) {
    json choice = {{"index", 0}, {"finish_reason", finish ? json(*finish) : json(nullptr)}};
    if (endpoint == Endpoint::Completions) {
        choice["text"] = text;
        choice["logprobs"] = nullptr;
    } else {
        json delta = json::object();
        if (first) delta["role"] = "assistant";
        if (!text.empty() || (first && !finish)) delta["content"] = text;
        choice["delta"] = delta;
    }
    return {
        {"id", ids.id},
        {"object", endpoint == Endpoint::Completions ? "text_completion" : "chat.completion.chunk"},
        {"created", ids.created},
        {"model", ids.model},
        {"choices", json::array({choice})}};
}

nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param) {
    return {{"error",
             {{"message", message},
              {"type", type},
              {"param", param.empty() ? json(nullptr) : json(param)},
              {"code", nullptr}}}};
}

}  // namespace bitnet::server

// `bitnet serve` through HTTP on loopback: the OpenAI wire format, bad input, authentication,
// a client that vanishes mid-stream, and overload. Expectations come from the engine itself
// (the same request without the server) and from the OpenAI format.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "bitnet/common/timer.hpp"
#include "model_files.hpp"
#include "server_fixture.hpp"

using namespace bitnet;
using nlohmann::json;

namespace {

httplib::Result post(httplib::Client& c, const std::string& path, const json& body,
                     const httplib::Headers& headers = {}) {
    return c.Post(path.c_str(), headers, body.dump(), "application/json");
}

std::string engine_text(inference::Engine& engine, const std::string& prompt, int n,
                        std::uint64_t seed, float temperature) {
    inference::GenerationRequest r;
    r.prompt = prompt;
    r.n_predict = n;
    r.sampling.seed = seed;
    r.sampling.temperature = temperature;
    r.sampling.top_k = 0;  // the server's OpenAI defaults
    r.sampling.top_p = 1.0f;
    r.sampling.min_p = 0.0f;
    r.sampling.repeat_penalty = 1.0f;
    return engine.generate(r).text;
}

// Sends a streaming request on a raw socket, reads until the first event, then hangs up.
bool stream_then_hang_up(int port, const std::string& body) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
    const std::string request =
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) return false;
    std::string got;
    char buf[4096];
    while (got.find("data: ") == std::string::npos) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return got.find("data: ") != std::string::npos;
}

}  // namespace

TEST_CASE("completions answer as the engine does, in the OpenAI format") {
    test::TempDir dir("serve-basic");
    const std::string model = test::write_synthetic_model(dir, "tiny", 31);
    server::ServerOptions options;
    options.model_name = "tiny-test";
    test::TestServer srv(model, options);
    auto c = srv.client();

    auto health = c.Get("/health");
    REQUIRE(health);
    CHECK(health->status == 200);
    CHECK(json::parse(health->body)["status"] == "ok");
    auto models = c.Get("/v1/models");
    REQUIRE(models);
    CHECK(json::parse(models->body)["data"][0]["id"] == "tiny-test");

    auto res = post(c, "/v1/completions",
                    {{"prompt", "the quick brown"}, {"max_tokens", 12}, {"temperature", 0}});
    REQUIRE(res);
    REQUIRE(res->status == 200);
    const json j = json::parse(res->body);
    CHECK(j["object"] == "text_completion");
    CHECK(j["model"] == "tiny-test");
    const std::string text = j["choices"][0]["text"];
    auto alone = test::load_engine(model, 128);
    CHECK(text == engine_text(*alone, "the quick brown", 12, 0, 0.0f));
    const auto usage = j["usage"];
    CHECK(usage["total_tokens"].get<int>() ==
          usage["prompt_tokens"].get<int>() + usage["completion_tokens"].get<int>());
    CHECK(usage["completion_tokens"].get<int>() <= 12);
    const std::string reason = j["choices"][0]["finish_reason"];
    CHECK((reason == "length" || reason == "stop"));

    // A seeded sampled request: the same text as the engine with that seed.
    auto seeded = post(c, "/v1/completions",
                       {{"prompt", "once"}, {"max_tokens", 16}, {"seed", 5}, {"temperature", 0.9}});
    REQUIRE(seeded);
    CHECK(json::parse(seeded->body)["choices"][0]["text"] ==
          engine_text(*alone, "once", 16, 5, 0.9f));

    auto metrics = c.Get("/metrics");
    REQUIRE(metrics);
    CHECK(test::metric(metrics->body, "bitnet_requests_completed_total") == 2);
    CHECK(test::metric(metrics->body, "bitnet_generated_tokens_total") > 0);
    CHECK_THAT(
        metrics->body,
        Catch::Contains("bitnet_http_requests_total{route=\"/v1/completions\",status=\"200\"} 2"));
}

TEST_CASE("streamed completions and chat arrive as OpenAI chunks that add up to the answer") {
    test::TempDir dir("serve-stream");
    const std::string model = test::write_synthetic_model(dir, "tiny", 32);
    server::ServerOptions options;
    options.chat_format = tokenizers::ChatFormat::Bitnet;
    test::TestServer srv(model, options);
    auto c = srv.client();
    const json request = {{"prompt", "hello there"}, {"max_tokens", 20}, {"seed", 9}};
    auto whole = post(c, "/v1/completions", request);
    auto streamed_request = request;
    streamed_request["stream"] = true;
    auto stream = post(c, "/v1/completions", streamed_request);
    REQUIRE(whole);
    REQUIRE(stream);
    CHECK(stream->get_header_value("Content-Type") == "text/event-stream");
    const auto events = test::sse_data(stream->body);
    REQUIRE(events.size() >= 2);
    CHECK(events.back() == "[DONE]");
    std::string text;
    std::string finish;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        const json chunk = json::parse(events[i]);
        CHECK(chunk["object"] == "text_completion");
        text += chunk["choices"][0]["text"].get<std::string>();
        if (!chunk["choices"][0]["finish_reason"].is_null())
            finish = chunk["choices"][0]["finish_reason"];
    }
    const json full = json::parse(whole->body);
    CHECK(text == full["choices"][0]["text"]);
    CHECK(finish == full["choices"][0]["finish_reason"]);

    const json chat = {
        {"messages",
         {{{"role", "system"}, {"content", "be brief"}}, {{"role", "user"}, {"content", "hi"}}}},
        {"max_tokens", 10},
        {"seed", 3}};
    auto chat_whole = post(c, "/v1/chat/completions", chat);
    auto chat_stream_request = chat;
    chat_stream_request["stream"] = true;
    auto chat_stream = post(c, "/v1/chat/completions", chat_stream_request);
    REQUIRE(chat_whole);
    REQUIRE(chat_stream);
    REQUIRE(chat_whole->status == 200);
    const json message = json::parse(chat_whole->body)["choices"][0]["message"];
    CHECK(message["role"] == "assistant");
    const auto chat_events = test::sse_data(chat_stream->body);
    REQUIRE(chat_events.size() >= 2);
    std::string chat_text;
    for (std::size_t i = 0; i + 1 < chat_events.size(); ++i) {
        const json chunk = json::parse(chat_events[i]);
        CHECK(chunk["object"] == "chat.completion.chunk");
        if (i == 0) CHECK(chunk["choices"][0]["delta"]["role"] == "assistant");
        chat_text += chunk["choices"][0]["delta"].value("content", "");
    }
    CHECK(chat_text == message["content"]);
}

TEST_CASE("bad requests get 4xx with an OpenAI error naming the problem; the server stays up") {
    test::TempDir dir("serve-bad");
    const std::string model = test::write_synthetic_model(dir, "tiny", 33);
    server::ServerOptions options;
    options.max_body_bytes = 4096;
    test::TestServer srv(model, options, 64);
    auto c = srv.client();
    struct Case {
        std::string body;
        int status;
        std::string contains;
    };
    const std::string long_prompt = [] {
        std::string s;
        for (int i = 0; i < 200; ++i) s += "word" + std::to_string(i) + " ";
        return s;
    }();
    const std::vector<Case> cases = {
        {"{not json", 400, "not valid JSON"},
        {"[1,2]", 400, "JSON object"},
        {R"({"prompt":"x","max_tokens":"ten"})", 400, "max_tokens must be an integer"},
        {R"({"prompt":"x","max_tokens":0})", 400, "max_tokens must be between 1"},
        {R"({"prompt":"x","max_tokens":1000000000000})", 400, "max_tokens must be between"},
        {R"({"prompt":"x","temperature":5})", 400, "temperature must be between 0 and 2"},
        {R"({"prompt":"x","temperature":"hot"})", 400, "temperature must be a number"},
        {R"({"prompt":"x","n":2})", 400, "n must be between 1 and 1"},
        {R"({"prompt":"x","stop":["a","b","c","d","e"]})", 400, "up to 4"},
        {R"({"prompt":"x","stream":"yes"})", 400, "stream must be true or false"},
        {R"({"prompt":42})", 400, "prompt must be a string"},
        {R"({"max_tokens":3})", 400, "prompt is required"},
        {json({{"prompt", long_prompt}}).dump(), 400, "context"},
        {std::string(5000, ' '), 413, "too large"},
    };
    for (const Case& k : cases) {
        INFO(k.body.substr(0, 80));
        auto res = c.Post("/v1/completions", k.body, "application/json");
        REQUIRE(res);
        CHECK(res->status == k.status);
        const json j = json::parse(res->body);
        CHECK_THAT(j["error"]["message"].get<std::string>(), Catch::Contains(k.contains));
    }
    auto chat = post(c, "/v1/chat/completions", {{"messages", {{{"role", "robot"}}}}});
    REQUIRE(chat);
    CHECK(chat->status == 400);
    auto missing = c.Get("/v1/nothing");
    REQUIRE(missing);
    CHECK(missing->status == 404);
    // A huge max_tokens is clamped to what the context leaves: an answer, finish "length".
    auto huge =
        post(c, "/v1/completions", {{"prompt", "a"}, {"max_tokens", 1000000}, {"temperature", 2}});
    REQUIRE(huge);
    REQUIRE(huge->status == 200);
    const json h = json::parse(huge->body);
    CHECK(h["usage"]["total_tokens"].get<int>() <= 64);
    auto health = c.Get("/health");
    REQUIRE(health);
    CHECK(health->status == 200);
}

TEST_CASE("the API key guards /v1/ with a Bearer token compared in constant time") {
    CHECK(server::credentials_equal("secret", "secret"));
    CHECK_FALSE(server::credentials_equal("secreT", "secret"));
    CHECK_FALSE(server::credentials_equal("secret1", "secret"));
    CHECK_FALSE(server::credentials_equal("", "secret"));
    test::TempDir dir("serve-key");
    const std::string model = test::write_synthetic_model(dir, "tiny", 34);
    server::ServerOptions options;
    options.api_key = "s3cret";
    test::TestServer srv(model, options);
    auto c = srv.client();
    const json body = {{"prompt", "x"}, {"max_tokens", 2}};
    auto none = post(c, "/v1/completions", body);
    auto wrong = post(c, "/v1/completions", body, {{"Authorization", "Bearer nope"}});
    auto right = post(c, "/v1/completions", body, {{"Authorization", "Bearer s3cret"}});
    REQUIRE(none);
    REQUIRE(wrong);
    REQUIRE(right);
    CHECK(none->status == 401);
    CHECK(wrong->status == 401);
    CHECK(right->status == 200);
    CHECK(c.Get("/health")->status == 200);  // probes need no key
}

TEST_CASE("a client that hangs up mid-stream frees its slot for the next request") {
    test::TempDir dir("serve-hangup");
    // The hang-up is noticed at a write after it; a generation that reached the end of its
    // context first would count as completed, not cancelled. So the small model's shape with a
    // context of 16384 tokens, which it cannot decode in the seconds a starved streaming thread
    // may take to write again (a busy CI runner saw 512 and then 2048 tokens finish first).
    models::ModelConfig config = models::preset_config("small");
    config.context_length = 16384;
    const std::string model = test::write_synthetic_model_config(dir, config, 35, "long.gguf");
    server::ServerOptions options;
    options.parallel = 1;
    test::TestServer srv(model, options, config.context_length);
    const json body = {
        {"prompt", "go"}, {"max_tokens", 100000}, {"stream", true}, {"temperature", 2}};
    REQUIRE(stream_then_hang_up(srv.port(), body.dump()));
    auto c = srv.client();
    double cancelled = 0;
    for (int i = 0; i < 200 && cancelled < 1; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
        cancelled = test::metric(c.Get("/metrics")->body, "bitnet_requests_cancelled_total");
    }
    CHECK(cancelled == 1);
    // The only slot is free again: a new request is answered.
    auto next = post(c, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 3}});
    REQUIRE(next);
    CHECK(next->status == 200);
}

TEST_CASE("200 concurrent requests against --parallel 4: every one answered, 200 or 503") {
    test::TempDir dir("serve-load");
    const std::string model = test::write_synthetic_model(dir, "small", 36);
    for (const std::size_t queue : {std::size_t{256}, std::size_t{8}}) {
        server::ServerOptions options;
        options.parallel = 4;
        options.max_queue = queue;
        test::TestServer srv(model, options);
        constexpr int kRequests = 200;
        std::mutex mutex;
        std::vector<double> latencies_ms;
        int ok = 0, busy = 0, malformed = 0, lost = 0;
        std::vector<std::thread> clients;
        Timer wall;
        for (int i = 0; i < kRequests; ++i)
            clients.emplace_back([&, i] {
                auto c = srv.client();
                Timer t;
                auto res = post(
                    c, "/v1/completions",
                    {{"prompt", "request " + std::to_string(i)}, {"max_tokens", 8}, {"seed", i}});
                const double ms = t.milliseconds();
                std::lock_guard<std::mutex> lock(mutex);
                if (!res) {
                    std::printf("lost: %s\n", httplib::to_string(res.error()).c_str());
                    ++lost;
                    return;
                }
                try {
                    const json j = json::parse(res->body);
                    if (res->status == 200 && j["choices"][0]["text"].is_string()) {
                        ++ok;
                        latencies_ms.push_back(ms);
                    } else if (res->status == 503 && j["error"]["message"].is_string()) {
                        ++busy;
                    } else {
                        ++malformed;
                    }
                } catch (const json::exception&) {
                    ++malformed;
                }
            });
        for (auto& t : clients) t.join();
        const double seconds = wall.seconds();
        INFO("queue " << queue);
        CHECK(lost == 0);
        CHECK(malformed == 0);
        CHECK(ok + busy == kRequests);
        if (queue >= kRequests) CHECK(ok == kRequests);
        CHECK(ok >= 4);
        auto c = srv.client();
        auto health = c.Get("/health");
        REQUIRE(health);
        CHECK(health->status == 200);
        std::sort(latencies_ms.begin(), latencies_ms.end());
        auto pct = [&](double p) {
            return latencies_ms[std::min(latencies_ms.size() - 1,
                                         static_cast<std::size_t>(p * latencies_ms.size()))];
        };
        std::printf(
            "load (small model, --parallel 4, queue %zu): %d requests in %.2f s = %.1f req/s; "
            "%d ok, %d 503; latency p50 %.0f ms, p99 %.0f ms\n",
            queue, kRequests, seconds, kRequests / seconds, ok, busy, pct(0.5), pct(0.99));
    }
}

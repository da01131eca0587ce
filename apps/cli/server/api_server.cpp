#include "api_server.hpp"

#include <httplib.h>

#include <sys/socket.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <random>

#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"
#include "openai_protocol.hpp"

namespace bitnet::server {
namespace {

using nlohmann::json;

std::string dump(const json& j) {
    // Invalid UTF-8 can only come from a model's bytes; it is replaced, never an exception.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& param = "") {
    const char* type = status == 401   ? "authentication_error"
                       : status == 503 ? "server_overloaded"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    send_json(res, status, error_body(message, type, param));
}

// Text and the final result of one request, passed from the scheduler thread to the HTTP
// thread that answers it.
struct Channel {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::string> pieces;
    bool done = false;
    inference::GenerationResult result;
    std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);

    void push(std::string_view text) {
        std::lock_guard<std::mutex> lock(mutex);
        pieces.emplace_back(text);
        cv.notify_all();
    }
    void finish(inference::GenerationResult&& r) {
        std::lock_guard<std::mutex> lock(mutex);
        result = std::move(r);
        done = true;
        cv.notify_all();
    }
};

// httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into Debian's
// library): a burst of clients overflows it and their connections are reset before a worker
// sees them. Calling listen() again on the bound socket widens the backlog (Linux allows it).
class HttpServer : public httplib::Server {
  public:
    void widen_backlog(int backlog) {
        if (::listen(svr_sock_, backlog) != 0)
            log::warn("cannot widen the listen backlog: {}", std::strerror(errno));
    }
};

std::string route_of(const std::string& path) {
    for (const char* known :
         {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics"})
        if (path == known) return known;
    return "other";
}

}  // namespace

bool credentials_equal(const std::string& presented, const std::string& expected) {
    // Every byte of the expected value is compared whatever the input, so the time taken does
    // not reveal how much of a guess was right.
    unsigned diff = presented.size() == expected.size() ? 0u : 1u;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const unsigned char p =
            i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0u;
        diff |= p ^ static_cast<unsigned char>(expected[i]);
    }
    return diff == 0;
}

struct ApiServer::Impl {
    inference::Engine& engine;
    ServerOptions options;
    inference::Scheduler scheduler;
    HttpServer http;
    std::optional<tokenizers::ChatFormat> chat_format;
    std::atomic<bool> draining{false};
    std::atomic<std::uint64_t> next_id{1};
    std::mutex seed_mutex;
    std::mt19937_64 seeds{std::random_device{}()};
    mutable std::mutex counters_mutex;
    std::map<std::pair<std::string, int>, std::uint64_t> requests;  // (route, status) -> count

    Impl(inference::Engine& e, const ServerOptions& o)
        : engine(e), options(o), scheduler(e, {o.parallel, o.max_queue}) {
        chat_format = o.chat_format;
        if (!chat_format) {
            try {
                chat_format = tokenizers::detect_chat_format(e.tokenizer().data().chat_template);
            } catch (const Error& err) {
                log::warn("/v1/chat/completions is disabled: {}", err.what());
            }
        }
        if (options.model_name.empty()) options.model_name = "bitnet";
        routes();
    }

    std::uint64_t random_seed() {
        std::lock_guard<std::mutex> lock(seed_mutex);
        return seeds();
    }

    void routes() {
        const std::size_t threads =
            options.http_threads > 0
                ? static_cast<std::size_t>(options.http_threads)
                : static_cast<std::size_t>(options.parallel) + options.max_queue + 8;
        http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
        http.set_payload_max_length(options.max_body_bytes);
        http.set_read_timeout(30, 0);
        http.set_write_timeout(30, 0);
        http.set_keep_alive_timeout(5);
        http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
            if (req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
            if (!options.api_key.empty()) {
                const std::string auth = req.get_header_value("Authorization");
                const std::string prefix = "Bearer ";
                const std::string presented =
                    auth.rfind(prefix, 0) == 0 ? auth.substr(prefix.size()) : std::string();
                if (!credentials_equal(presented, options.api_key)) {
                    res.set_header("WWW-Authenticate", "Bearer");
                    send_error(res, 401, "missing or wrong API key (Authorization: Bearer KEY)");
                    return httplib::Server::HandlerResponse::Handled;
                }
            }
            if (draining) {
                send_error(res, 503, "the server is shutting down");
                return httplib::Server::HandlerResponse::Handled;
            }
            return httplib::Server::HandlerResponse::Unhandled;
        });
        http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
            if (!res.body.empty()) return;
            if (res.status == 413)
                send_error(res, 413, "the request body is too large");
            else if (res.status == 404)
                send_error(res, 404, "no route " + req.method + " " + req.path);
            else
                send_error(res, res.status, "HTTP " + std::to_string(res.status));
        });
        http.set_exception_handler(
            [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
                std::string what = "internal error";
                try {
                    std::rethrow_exception(ep);
                } catch (const std::exception& e) {
                    what = e.what();
                } catch (...) {
                }
                log::error("request failed: {}", what);
                send_error(res, 500, what);
            });
        http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
            std::lock_guard<std::mutex> lock(counters_mutex);
            ++requests[{route_of(req.path), res.status}];
        });

        http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
            const auto s = scheduler.stats();
            send_json(res, draining ? 503 : 200,
                      {{"status", draining ? "shutting down" : "ok"},
                       {"parallel", options.parallel},
                       {"active", s.active},
                       {"queued", s.queued}});
        });
        http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(metrics(), "text/plain; version=0.0.4");
        });
        http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
            send_json(res, 200,
                      {{"object", "list"},
                       {"data", json::array({{{"id", options.model_name},
                                              {"object", "model"},
                                              {"created", 0},
                                              {"owned_by", "bitnet"}}})}});
        });
        http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
            generate(Endpoint::Completions, req, res);
        });
        http.Post("/v1/chat/completions",
                  [this](const httplib::Request& req, httplib::Response& res) {
                      generate(Endpoint::ChatCompletions, req, res);
                  });
    }

    void generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
        auto parsed = parse_request(endpoint, req.body, chat_format, random_seed());
        if (auto* error = std::get_if<RequestError>(&parsed))
            return send_error(res, 400, error->message, error->param);
        ApiRequest& api = std::get<ApiRequest>(parsed);
        std::vector<std::int32_t> tokens;
        try {
            tokens = engine.tokenize_prompt(api.generation);
        } catch (const Error& e) {
            return send_error(res, 400, e.what(),
                              endpoint == Endpoint::Completions ? "prompt" : "messages");
        }
        // As many tokens as asked, at most what the context leaves after the prompt.
        const std::int64_t room = engine.context() - static_cast<std::int64_t>(tokens.size());
        api.generation.n_predict = static_cast<int>(std::min(api.max_tokens, room));

        auto channel = std::make_shared<Channel>();
        inference::Scheduler::Job job;
        job.request = api.generation;
        job.prompt_tokens = std::move(tokens);
        job.on_text = [channel](std::string_view text) { channel->push(text); };
        job.on_done = [channel](inference::GenerationResult&& r) { channel->finish(std::move(r)); };
        job.cancel = channel->cancel;
        switch (scheduler.submit(std::move(job))) {
            case inference::Scheduler::Admission::Accepted:
                break;
            case inference::Scheduler::Admission::QueueFull:
                res.set_header("Retry-After", "1");
                return send_error(res, 503,
                                  "the server is busy (" + std::to_string(options.max_queue) +
                                      " requests waiting); retry later");
            case inference::Scheduler::Admission::ShuttingDown:
                return send_error(res, 503, "the server is shutting down");
        }
        const ResponseIds ids{
            std::string(endpoint == Endpoint::Completions ? "cmpl-" : "chatcmpl-") +
                std::to_string(next_id++),
            static_cast<std::int64_t>(std::time(nullptr)), options.model_name};
        if (!api.stream) {
            std::unique_lock<std::mutex> lock(channel->mutex);
            channel->cv.wait(lock, [&] { return channel->done; });
            if (channel->result.stop_reason == inference::StopReason::Cancelled)
                return send_error(res, 503,
                                  "the request was cancelled: the server is shutting down");
            return send_json(res, 200, completion_response(endpoint, ids, channel->result));
        }
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
        res.set_chunked_content_provider(
            "text/event-stream",
            [channel, endpoint, ids](std::size_t, httplib::DataSink& sink) {
                return stream_events(*channel, endpoint, ids, sink);
            },
            [channel](bool success) {
                // The client went away before the end: free its slot at the next step.
                if (!success) channel->cancel->store(true);
            });
    }

    // Writes server-sent events until the request ends; false when the client is gone.
    static bool stream_events(Channel& channel, Endpoint endpoint, const ResponseIds& ids,
                              httplib::DataSink& sink) {
        auto event = [&](const std::string& data) {
            const std::string line = "data: " + data + "\n\n";
            return sink.write(line.data(), line.size());
        };
        bool first = true;
        while (true) {
            std::deque<std::string> pieces;
            bool done = false;
            {
                std::unique_lock<std::mutex> lock(channel.mutex);
                channel.cv.wait_for(lock, std::chrono::milliseconds(250),
                                    [&] { return channel.done || !channel.pieces.empty(); });
                pieces.swap(channel.pieces);
                done = channel.done;
            }
            for (const std::string& piece : pieces) {
                if (!event(dump(stream_chunk(endpoint, ids, piece, std::nullopt, first)))) {
                    channel.cancel->store(true);
                    return false;
                }
                first = false;
            }
            if (!done) continue;
            const auto& result = channel.result;
            bool ok;
            if (result.stop_reason == inference::StopReason::Cancelled)
                ok = event(dump(error_body("the request was cancelled: the server is shutting down",
                                           "server_error")));
            else
                ok = event(dump(
                    stream_chunk(endpoint, ids, "", finish_reason(result.stop_reason), first)));
            ok = ok && event("[DONE]");
            sink.done();
            return ok;
        }
    }

    std::string metrics() const {
        const auto s = scheduler.stats();
        std::string out;
        auto metric = [&](const char* name, const char* type, const char* help,
                          const std::string& value) {
            out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type +
                   "\n" + name + " " + value + "\n";
        };
        out +=
            "# HELP bitnet_http_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE bitnet_http_requests_total counter\n";
        {
            std::lock_guard<std::mutex> lock(counters_mutex);
            for (const auto& [key, count] : requests)
                out += "bitnet_http_requests_total{route=\"" + key.first + "\",status=\"" +
                       std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
        }
        metric("bitnet_requests_accepted_total", "counter",
               "Generation requests accepted into the queue.", std::to_string(s.accepted));
        metric("bitnet_requests_refused_total", "counter",
               "Generation requests refused because the queue was full (503).",
               std::to_string(s.refused));
        metric("bitnet_requests_completed_total", "counter", "Generation requests completed.",
               std::to_string(s.completed));
        metric("bitnet_requests_cancelled_total", "counter",
               "Generation requests cancelled (client gone or shutdown).",
               std::to_string(s.cancelled));
        metric("bitnet_prompt_tokens_total", "counter", "Prompt tokens processed.",
               std::to_string(s.prompt_tokens));
        metric("bitnet_generated_tokens_total", "counter", "Tokens generated.",
               std::to_string(s.generated_tokens));
        metric("bitnet_queue_depth", "gauge", "Requests waiting for a slot.",
               std::to_string(s.queued));
        metric("bitnet_active_sequences", "gauge", "Sequences being decoded.",
               std::to_string(s.active));
        metric("bitnet_parallel_slots", "gauge", "Sequences decoded together at most.",
               std::to_string(options.parallel));
        metric("bitnet_generation_tokens_per_second", "gauge",
               "Generated tokens per second of decoding time since start.",
               std::to_string(s.busy_seconds > 0
                                  ? static_cast<double>(s.generated_tokens) / s.busy_seconds
                                  : 0.0));
        return out;
    }
};

ApiServer::ApiServer(inference::Engine& engine, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(engine, options)) {}

ApiServer::~ApiServer() {
    shutdown(std::chrono::milliseconds(0));
}

int ApiServer::bind() {
    if (impl_->options.port == 0) {
        port_ = impl_->http.bind_to_any_port(impl_->options.host);
        if (port_ <= 0)
            fail(ErrorCode::Io, "cannot listen on " + impl_->options.host + " (any port)");
    } else {
        if (!impl_->http.bind_to_port(impl_->options.host, impl_->options.port))
            fail(ErrorCode::Io, "cannot listen on " + impl_->options.host + ":" +
                                    std::to_string(impl_->options.port) +
                                    " (in use, or not an address of this machine); pick "
                                    "another --port or --host");
        port_ = impl_->options.port;
    }
    impl_->http.widen_backlog(1024);
    return port_;
}

void ApiServer::serve() {
    impl_->http.listen_after_bind();
}

void ApiServer::shutdown(std::chrono::milliseconds grace) {
    impl_->draining = true;
    impl_->scheduler.shutdown(grace);  // every accepted request has its answer after this
    impl_->http.stop();
}

std::string ApiServer::metrics_text() const {
    return impl_->metrics();
}

}  // namespace bitnet::server

// ApiServer — `bitnet serve`: an OpenAI-compatible HTTP server (cpp-httplib) in front of the
// engine's continuous-batching Scheduler. HTTP threads parse and validate requests, tokenize
// prompts and wait for results; one scheduler thread decodes every running request together.
// Overload is refused with 503 (bounded queue), not absorbed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "bitnet/inference/scheduler.hpp"
#include "bitnet/tokenizers/chat_template.hpp"

namespace httplib {
class Server;
}

namespace bitnet::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;  // 0: any free port (bound_port() tells which)
    int parallel = 4;
    std::size_t max_queue = 64;
    std::size_t max_body_bytes = 1 << 20;
    std::string api_key;  // empty: no authentication
    std::string model_name;
    std::optional<tokenizers::ChatFormat> chat_format;  // nullopt: from the model's template
    int http_threads = 0;                               // 0: parallel + max_queue + 8
};

class ApiServer {
  public:
    ApiServer(inference::Engine& engine, const ServerOptions& options);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // Binds the listening socket (throws bitnet::Error when it cannot) and returns the port.
    int bind();
    // Serves until shutdown(); call from one thread after bind().
    void serve();
    // Graceful stop: refuse new work (503), let running requests finish for up to `grace`,
    // cancel the rest (their clients get an error), then close the listener. Thread-safe.
    void shutdown(std::chrono::milliseconds grace);
    int bound_port() const { return port_; }

    // Prometheus text exposition of the counters (also served at GET /metrics).
    std::string metrics_text() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int port_ = 0;
};

// Constant-time comparison of a presented credential with the expected one.
bool credentials_equal(const std::string& presented, const std::string& expected);

}  // namespace bitnet::server

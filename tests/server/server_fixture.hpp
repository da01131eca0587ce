// An ApiServer on 127.0.0.1 (any free port) in the test process, and small HTTP helpers.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <thread>

#include "api_server.hpp"
#include "bitnet/inference/engine.hpp"

namespace bitnet::test {

inline std::unique_ptr<inference::Engine> load_engine(const std::string& path,
                                                      std::int64_t context) {
    inference::EngineOptions o;
    o.model_path = path;
    o.context = context;
    o.threads = 2;
    o.device = "cpu";
    return inference::Engine::load(o);
}

class TestServer {
  public:
    TestServer(const std::string& model, server::ServerOptions options, std::int64_t context = 128)
        : engine_(load_engine(model, context)) {
        options.port = 0;
        api_ = std::make_unique<server::ApiServer>(*engine_, options);
        port_ = api_->bind();
        thread_ = std::thread([this] { api_->serve(); });
        auto c = client();
        for (int i = 0; i < 500 && !c.Get("/health"); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ~TestServer() {
        api_->shutdown(std::chrono::milliseconds(0));
        thread_.join();
    }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port_);
        c.set_read_timeout(120, 0);
        return c;
    }
    int port() const { return port_; }
    inference::Engine& engine() { return *engine_; }
    server::ApiServer& api() { return *api_; }

  private:
    std::unique_ptr<inference::Engine> engine_;
    std::unique_ptr<server::ApiServer> api_;
    int port_ = 0;
    std::thread thread_;
};

// The data lines of a server-sent event stream, in order.
inline std::vector<std::string> sse_data(const std::string& body) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < body.size()) {
        const std::size_t end = body.find("\n\n", at);
        const std::string event = body.substr(at, end == std::string::npos ? end : end - at);
        if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
        if (end == std::string::npos) break;
        at = end + 2;
    }
    return out;
}

// Reads one value of the Prometheus text (the first line starting with `name`).
inline double metric(const std::string& text, const std::string& name) {
    std::size_t at = 0;
    while ((at = text.find(name, at)) != std::string::npos) {
        if ((at == 0 || text[at - 1] == '\n') && text[at + name.size()] == ' ')
            return std::stod(text.substr(at + name.size() + 1));
        at += name.size();
    }
    return -1;
}

}  // namespace bitnet::test

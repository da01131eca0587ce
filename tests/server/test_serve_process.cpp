// `bitnet serve` as a process: it stops gracefully on SIGTERM/SIGINT — a request running at
// that moment is finished, new ones are refused, and the process exits 0.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "model_files.hpp"
#include "run_command.hpp"
#include "server_fixture.hpp"

extern char** environ;

using namespace bitnet;
using nlohmann::json;

namespace {

class ServeProcess {
  public:
    ServeProcess(const std::string& model, const std::string& log_path) : log_(log_path) {
        const std::string bin = BITNET_CLI_PATH;
        std::vector<std::string> args = {bin, "serve",   "-m", model, "--port",
                                         "0", "--grace", "20", "-c",  "512"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        REQUIRE(posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv.data(), environ) == 0);
        posix_spawn_file_actions_destroy(&actions);
        // The port is in the first line: "listening on http://127.0.0.1:PORT ...".
        const std::string marker = "listening on http://127.0.0.1:";
        for (int i = 0; i < 1000 && port_ == 0; ++i) {
            const std::string text = test::read_text(log_);
            const auto at = text.find(marker);
            if (at != std::string::npos && text.find(' ', at + marker.size()) != std::string::npos)
                port_ = std::atoi(text.c_str() + at + marker.size());
            else
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    ~ServeProcess() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    int port() const { return port_; }
    void signal(int sig) { ::kill(pid_, sig); }
    // Exit status, or -1 if it has not exited within the timeout.
    int wait(std::chrono::seconds timeout) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                exited_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return -1;
    }
    std::string log() const { return test::read_text(log_); }

  private:
    std::string log_;
    pid_t pid_ = -1;
    int port_ = 0;
    bool exited_ = false;
};

}  // namespace

TEST_CASE("SIGTERM lets the running request finish, then bitnet serve exits 0") {
    test::TempDir dir("serve-sigterm");
    const std::string model = test::write_synthetic_model(dir, "small", 41);
    for (int sig : {SIGTERM, SIGINT}) {
        ServeProcess server(model, dir.file("serve.log"));
        INFO(server.log());
        REQUIRE(server.port() > 0);
        httplib::Client c("127.0.0.1", server.port());
        c.set_read_timeout(60, 0);
        // A streamed request; the signal goes out when its first event has arrived, so the
        // request is running then (a fixed delay could signal before the server had taken it
        // on a loaded machine, or after it had finished).
        std::string body;
        std::atomic<bool> signaled{false};
        std::thread request([&] {
            httplib::Request req;
            req.method = "POST";
            req.path = "/v1/completions";
            req.body =
                json({{"prompt", "go"}, {"max_tokens", 200}, {"temperature", 2}, {"stream", true}})
                    .dump();
            req.set_header("Content-Type", "application/json");
            req.content_receiver = [&](const char* data, std::size_t size, std::uint64_t,
                                       std::uint64_t) {
                body.append(data, size);
                if (!signaled.exchange(true)) server.signal(sig);
                return true;
            };
            c.send(req);
        });
        request.join();
        REQUIRE(signaled);
        CHECK(server.wait(std::chrono::seconds(60)) == 0);
        const auto events = test::sse_data(body);
        REQUIRE(events.size() >= 2);
        CHECK(events.back() == "[DONE]");
        const json last = json::parse(events[events.size() - 2]);
        CHECK_FALSE(last["choices"][0]["finish_reason"].is_null());  // finished, not cut off
        CHECK_THAT(server.log(), Catch::Contains("finishing running requests") &&
                                     Catch::Contains("server stopped"));
    }
}

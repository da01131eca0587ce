// xtask's downloader against a hub served by the test itself on 127.0.0.1 (cpp-httplib): no
// test touches the internet. The local hub answers like huggingface.co: the resolve URL
// redirects to a blob URL and announces X-Linked-Size / X-Linked-Etag (the SHA-256).
#include <httplib.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "bitnet/common/error.hpp"
#include "bitnet/common/sha256.hpp"
#include "hf_download.hpp"
#include "test_support.hpp"

using namespace bitnet;
namespace fs = std::filesystem;

namespace {

enum class Blob { Normal, DropFirst, Fail500Twice, Stall, Always503 };

class LocalHub {
  public:
    explicit LocalHub(Blob mode, std::string announced_sha = "") : mode_(mode) {
        std::mt19937 rng(42);
        content_.resize(300 * 1024);
        for (char& c : content_) c = static_cast<char>(rng());
        Sha256 h;
        h.update(content_.data(), content_.size());
        sha_ = announced_sha.empty() ? Sha256::hex(h.finish()) : announced_sha;
        server_.Get("/org/model/resolve/main/model.gguf",
                    [this](const httplib::Request& req, httplib::Response& res) {
                        std::lock_guard<std::mutex> lock(mutex_);
                        authorization_ = req.get_header_value("Authorization");
                        res.set_header("X-Linked-Size", std::to_string(content_.size()));
                        res.set_header("X-Linked-Etag", "\"" + sha_ + "\"");
                        res.set_redirect("/cdn/blob", 302);
                    });
        server_.Get("/cdn/blob", [this](const httplib::Request& req, httplib::Response& res) {
            blob(req, res);
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~LocalHub() {
        stopping_ = true;
        server_.stop();
        thread_.join();
    }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
    const std::string& content() const { return content_; }
    const std::string& sha() const { return sha_; }
    int blob_requests() const { return blob_requests_; }
    std::vector<std::string> ranges() {
        std::lock_guard<std::mutex> lock(mutex_);
        return ranges_;
    }
    std::string authorization() {
        std::lock_guard<std::mutex> lock(mutex_);
        return authorization_;
    }

  private:
    void blob(const httplib::Request& req, httplib::Response& res) {
        const int n = ++blob_requests_;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            ranges_.push_back(req.get_header_value("Range"));
        }
        if ((mode_ == Blob::Fail500Twice && n <= 2) || mode_ == Blob::Always503) {
            res.status = mode_ == Blob::Always503 ? 503 : 500;
            res.set_content("server error", "text/plain");
            return;
        }
        const bool cut = (mode_ == Blob::DropFirst && n == 1) || mode_ == Blob::Stall;
        // httplib serves Range requests from the provider (206 + Content-Range) by itself.
        res.set_content_provider(
            content_.size(), "application/octet-stream",
            [this, cut](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                const std::size_t half = content_.size() / 2;
                if (cut && offset >= half) {
                    if (mode_ == Blob::Stall)  // hold the connection open, send nothing
                        for (int i = 0; i < 500 && !stopping_; ++i)
                            std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    return false;  // drop the connection mid-file
                }
                const std::size_t end = cut ? std::min(offset + length, half) : offset + length;
                const std::size_t chunk = std::min<std::size_t>(end - offset, 16 * 1024);
                return sink.write(content_.data() + offset, chunk);
            });
    }

    Blob mode_;
    std::string content_, sha_;
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    std::atomic<int> blob_requests_{0};
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::vector<std::string> ranges_;
    std::string authorization_;
};

xtask::DownloadOptions options_for(const LocalHub& hub, const test::TempDir& dir) {
    xtask::DownloadOptions o;
    o.endpoint = hub.endpoint();
    o.repo_id = "org/model";
    o.file = "model.gguf";
    o.dir = dir.file("models");
    o.token = "secret-token";
    o.initial_backoff_s = 0.01;
    o.max_attempts = 4;
    o.stall_timeout_s = 1;
    o.progress = false;
    return o;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("download follows the hub's redirect, sends the token and verifies the SHA-256") {
    LocalHub hub(Blob::Normal);
    test::TempDir dir("dl-ok");
    const auto r = xtask::download_model(options_for(hub, dir));
    CHECK(r.path == dir.file("models") + "/model.gguf");
    CHECK(read_all(r.path) == hub.content());
    CHECK(r.verified);
    CHECK(r.sha256 == hub.sha());
    CHECK(r.attempts == 1);
    CHECK(hub.authorization() == "Bearer secret-token");
    CHECK_FALSE(fs::exists(r.path + ".part"));
    // A second call finds the file and downloads nothing.
    const auto again = xtask::download_model(options_for(hub, dir));
    CHECK(again.already_present);
    CHECK(hub.blob_requests() == 1);
}

TEST_CASE("a connection dropped mid-file is resumed with a Range request") {
    LocalHub hub(Blob::DropFirst);
    test::TempDir dir("dl-resume");
    const auto r = xtask::download_model(options_for(hub, dir));
    CHECK(r.attempts == 2);
    CHECK(read_all(r.path) == hub.content());
    CHECK(r.verified);
    const auto ranges = hub.ranges();
    REQUIRE(ranges.size() == 2);
    CHECK(ranges[0].empty());
    CHECK(ranges[1] == "bytes=" + std::to_string(hub.content().size() / 2) + "-");
}

TEST_CASE("a 404 is a clear error at once, without retries") {
    LocalHub hub(Blob::Normal);
    test::TempDir dir("dl-404");
    auto o = options_for(hub, dir);
    o.file = "missing.gguf";
    try {
        xtask::download_model(o);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::NotFound);
        CHECK_THAT(e.what(), Catch::Contains("404") && Catch::Contains("--file 'missing.gguf'"));
    }
    CHECK_FALSE(fs::exists(dir.file("models") + "/missing.gguf"));
}

TEST_CASE("server errors are retried with backoff until the download succeeds") {
    LocalHub hub(Blob::Fail500Twice);
    test::TempDir dir("dl-500");
    const auto r = xtask::download_model(options_for(hub, dir));
    CHECK(r.attempts == 3);
    CHECK(hub.blob_requests() == 3);
    CHECK(read_all(r.path) == hub.content());
}

TEST_CASE("persistent server errors give up after the last attempt, naming the status") {
    LocalHub hub(Blob::Always503);
    test::TempDir dir("dl-503");
    auto o = options_for(hub, dir);
    o.max_attempts = 3;
    CHECK_THROWS_WITH(xtask::download_model(o),
                      Catch::Contains("after 3 attempt(s)") && Catch::Contains("HTTP 503"));
    CHECK(hub.blob_requests() == 3);
    CHECK_FALSE(fs::exists(dir.file("models") + "/model.gguf"));
}

TEST_CASE("a wrong checksum removes the download and says so") {
    LocalHub hub(Blob::Normal, std::string(64, 'a'));
    test::TempDir dir("dl-sha");
    const auto o = options_for(hub, dir);
    CHECK_THROWS_WITH(xtask::download_model(o),
                      Catch::Contains("SHA-256") && Catch::Contains("removed"));
    CHECK_FALSE(fs::exists(dir.file("models") + "/model.gguf"));
    CHECK_FALSE(fs::exists(dir.file("models") + "/model.gguf.part"));
}

TEST_CASE("a stalled server times out; what arrived is kept for the next run") {
    LocalHub hub(Blob::Stall);
    test::TempDir dir("dl-stall");
    auto o = options_for(hub, dir);
    o.max_attempts = 1;
    CHECK_THROWS_WITH(xtask::download_model(o),
                      Catch::Contains("no data for 1 s") && Catch::Contains("run again"));
    CHECK_FALSE(fs::exists(dir.file("models") + "/model.gguf"));
    CHECK(fs::file_size(dir.file("models") + "/model.gguf.part") == hub.content().size() / 2);
}

TEST_CASE("an explicit checksum is checked, and bad arguments are refused") {
    LocalHub hub(Blob::Normal);
    test::TempDir dir("dl-args");
    auto o = options_for(hub, dir);
    o.expected_sha256 = "not-a-sha";
    CHECK_THROWS_WITH(xtask::download_model(o), Catch::Contains("64 hexadecimal"));
    o.expected_sha256 = hub.sha();
    CHECK(xtask::download_model(o).verified);
    o.file = "../escape.gguf";
    CHECK_THROWS_WITH(xtask::download_model(o), Catch::Contains("inside the repo"));
}

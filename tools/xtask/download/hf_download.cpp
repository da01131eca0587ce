#include "hf_download.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"
#include "bitnet/common/progress.hpp"
#include "bitnet/common/sha256.hpp"

namespace bitnet::xtask {
namespace {

namespace fs = std::filesystem;

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.pop_back();
    std::size_t i = 0;
    while (i < s.size() && s[i] == ' ') ++i;
    return s.substr(i);
}

// An ETag names a SHA-256 when, without W/ and quotes, it is 64 hex digits (LFS files on the
// hub); git blob ETags are SHA-1 (40 digits) and say nothing about the content we can check.
std::optional<std::string> sha256_from_etag(std::string etag) {
    if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
        etag = etag.substr(1, etag.size() - 2);
    etag = lower(etag);
    if (etag.size() != 64) return std::nullopt;
    for (char c : etag)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    return etag;
}

// The .part file, locked for the whole download so two downloads of one file cannot interleave.
class PartFile {
  public:
    explicit PartFile(const std::string& path) : path_(path) {
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0)
            fail(ErrorCode::Io, "cannot open " + path + ": " + std::strerror(errno) +
                                    "; check that the directory is writable");
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            ::close(fd_);
            fail(ErrorCode::Io, "another download of " + path + " is running; wait for it");
        }
    }
    ~PartFile() {
        if (fd_ >= 0) ::close(fd_);
    }
    PartFile(const PartFile&) = delete;
    PartFile& operator=(const PartFile&) = delete;

    std::uint64_t size() const { return static_cast<std::uint64_t>(::lseek(fd_, 0, SEEK_END)); }
    void truncate() {
        if (::ftruncate(fd_, 0) != 0) fail(ErrorCode::Io, "cannot truncate " + path_);
    }
    bool append(const char* data, std::size_t n) {
        ::lseek(fd_, 0, SEEK_END);
        while (n > 0) {
            const ssize_t w = ::write(fd_, data, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                error_ = std::strerror(errno);
                return false;
            }
            data += w;
            n -= static_cast<std::size_t>(w);
        }
        return true;
    }
    void sync() { ::fsync(fd_); }
    const std::string& error() const { return error_; }

  private:
    std::string path_;
    int fd_ = -1;
    std::string error_;
};

// What one attempt learnt from the responses (redirects included) and did to the file.
struct Attempt {
    PartFile* part = nullptr;
    std::uint64_t offset = 0;  // bytes already in .part when the attempt started
    long status = 0;           // of the last response
    bool decided = false;      // whether the body's first byte settled append vs. restart
    std::optional<std::uint64_t> linked_size, content_length, range_total;
    std::optional<std::string> linked_etag;
    std::string error_body;  // the start of an error response, for the message
    std::unique_ptr<ProgressBar> progress;
    bool show_progress = true;
    std::string label;
};

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto& a = *static_cast<Attempt*>(user);
    const std::string line(data, size * count);
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect)
        const auto sp = line.find(' ');
        a.status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
        a.content_length.reset();
        a.range_total.reset();
        return size * count;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) return size * count;
    const std::string key = lower(line.substr(0, colon));
    const std::string value = trim(line.substr(colon + 1));
    auto number = [&](const std::string& s) -> std::optional<std::uint64_t> {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
        if (end == s.c_str()) return std::nullopt;
        return static_cast<std::uint64_t>(v);
    };
    if (key == "x-linked-size") a.linked_size = number(value);
    if (key == "x-linked-etag") a.linked_etag = value;
    if (key == "content-length") a.content_length = number(value);
    if (key == "content-range") {  // bytes 100-999/1000
        const auto slash = value.find('/');
        if (slash != std::string::npos) a.range_total = number(value.substr(slash + 1));
    }
    return size * count;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto& a = *static_cast<Attempt*>(user);
    const std::size_t n = size * count;
    if (a.status >= 300) {  // an error page: keep its start for the message, write nothing
        if (a.error_body.size() < 300) a.error_body.append(data, std::min<std::size_t>(n, 300));
        return n;
    }
    if (!a.decided) {
        a.decided = true;
        if (a.status != 206 && a.offset > 0) {  // the server ignored Range: start over
            log::info("the server does not resume; downloading from the start");
            a.part->truncate();
            a.offset = 0;
        }
    }
    return a.part->append(data, n) ? n : 0;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
    auto& a = *static_cast<Attempt*>(user);
    if (a.status != 200 && a.status != 206) return 0;
    if (total <= 0) return 0;
    if (!a.progress)
        a.progress = std::make_unique<ProgressBar>(
            a.label, a.offset + static_cast<std::uint64_t>(total), a.show_progress, a.offset);
    a.progress->update(a.offset + static_cast<std::uint64_t>(now));
    return 0;
}

bool retryable(CURLcode code) {
    switch (code) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return true;
        default:
            return false;
    }
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::string resolve_url(const DownloadOptions& o) {
    std::string endpoint =
        o.endpoint.empty() ? env_or("HF_ENDPOINT", "https://huggingface.co") : o.endpoint;
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    return endpoint + "/" + o.repo_id + "/resolve/" + o.revision + "/" + o.file;
}

DownloadResult download_model(const DownloadOptions& o) {
    if (o.repo_id.empty() || o.file.empty() || o.revision.empty())
        fail(ErrorCode::InvalidArgument, "download-model needs --id, --file and --revision");
    if (o.file.find("..") != std::string::npos || o.file.front() == '/')
        fail(ErrorCode::InvalidArgument, "--file '" + o.file + "' must be a path inside the repo");
    if (o.max_attempts < 1)
        fail(ErrorCode::InvalidArgument, "the number of attempts must be at least 1");
    std::optional<std::string> expected_sha;
    if (!o.expected_sha256.empty()) {
        expected_sha = sha256_from_etag(o.expected_sha256);
        if (!expected_sha)
            fail(ErrorCode::InvalidArgument,
                 "--sha256 '" + o.expected_sha256 + "' is not 64 hexadecimal digits");
    }
    DownloadResult result;
    result.path = (fs::path(o.dir) / o.file).string();
    const std::string part_path = result.path + ".part";
    std::error_code ec;
    fs::create_directories(fs::path(result.path).parent_path(), ec);
    if (ec)
        fail(ErrorCode::Io,
             "cannot create " + fs::path(result.path).parent_path().string() + ": " + ec.message());
    if (!o.force && fs::exists(result.path)) {
        result.already_present = true;
        result.bytes = fs::file_size(result.path);
        if (expected_sha) {
            result.sha256 = sha256_file(result.path);
            if (result.sha256 != *expected_sha)
                fail(ErrorCode::InvalidFormat, result.path + " exists but its SHA-256 is " +
                                                   result.sha256 + ", not " + *expected_sha +
                                                   "; use --force to download it again");
            result.verified = true;
        }
        log::info("{} is already there ({}); use --force to download it again", result.path,
                  format_bytes(result.bytes));
        return result;
    }

    global_init();
    const std::string url = resolve_url(o);
    const std::string token = o.token.empty() ? env_or("HF_TOKEN", "") : o.token;
    PartFile part(part_path);
    Attempt last;
    double backoff = o.initial_backoff_s;
    for (int attempt = 1;; ++attempt) {
        result.attempts = attempt;
        Attempt a;
        a.part = &part;
        a.offset = part.size();
        a.show_progress = o.progress;
        a.label = o.file;
        std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
        if (!curl) fail(ErrorCode::Internal, "curl_easy_init failed");
        curl_slist* headers = nullptr;
        if (!token.empty())
            headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
        std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(headers,
                                                                       curl_slist_free_all);
        CURL* c = curl.get();
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_USERAGENT, "bitnet-xtask/1");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);  // not sent to other hosts on redirect
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_s);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o.stall_timeout_s);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &a);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        const std::string range = std::to_string(a.offset) + "-";
        if (a.offset > 0) {
            curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
            log::info("resuming {} at {}", o.file, format_bytes(a.offset));
        }
        const CURLcode code = curl_easy_perform(c);
        if (a.progress) a.progress->finish();

        std::string problem;
        bool retry = false;
        if (code == CURLE_WRITE_ERROR && !part.error().empty()) {
            fail(ErrorCode::Io, "cannot write " + part_path + ": " + part.error() +
                                    " (disk full?); the partial download is kept for a resume");
        } else if (code != CURLE_OK) {
            problem = std::string(curl_easy_strerror(code)) +
                      (code == CURLE_OPERATION_TIMEDOUT
                           ? " (no data for " + std::to_string(o.stall_timeout_s) + " s)"
                           : "");
            retry = retryable(code);
        } else if (a.status == 416 && a.offset > 0) {
            // The part is at least as long as the file: check it below if its size is known,
            // else start again.
            const auto total = a.linked_size ? a.linked_size : a.range_total;
            if (!total || *total != a.offset) {
                part.truncate();
                problem = "the partial download does not fit the file on the server";
                retry = true;
            } else {
                a.status = 206;
            }
        } else if (a.status == 401 || a.status == 403) {
            fail(ErrorCode::InvalidArgument,
                 url + " answered HTTP " + std::to_string(a.status) + ": " +
                     (token.empty() ? "this model needs authorization; set HF_TOKEN to a token "
                                      "with access (and accept its licence on the hub)"
                                    : "the token in HF_TOKEN has no access to " + o.repo_id));
        } else if (a.status == 404) {
            fail(ErrorCode::NotFound, url + " answered HTTP 404 Not Found: check --id '" +
                                          o.repo_id + "', --file '" + o.file +
                                          "' and --revision '" + o.revision + "'");
        } else if (a.status >= 400 && a.status < 500 && a.status != 408 && a.status != 429) {
            fail(ErrorCode::InvalidArgument,
                 url + " answered HTTP " + std::to_string(a.status) + ": " + trim(a.error_body));
        } else if (a.status != 200 && a.status != 206) {
            problem = "HTTP " + std::to_string(a.status);
            retry = true;
        }
        if (problem.empty()) {
            last = std::move(a);
            break;
        }
        if (!retry || attempt >= o.max_attempts)
            fail(ErrorCode::Io, "downloading " + url + " failed after " + std::to_string(attempt) +
                                    " attempt(s): " + problem + "; run again to resume from " +
                                    format_bytes(part.size()));
        log::warn("attempt {} of {} failed: {}; retrying in {:.1f} s", attempt, o.max_attempts,
                  problem, backoff);
        std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
        backoff *= 2;
    }

    // Complete: check the size and the checksum before the file gets its final name.
    part.sync();
    result.bytes = part.size();
    std::optional<std::uint64_t> expected_size = last.linked_size;
    if (!expected_size) expected_size = last.range_total;
    if (!expected_size && last.content_length)
        expected_size = *last.content_length + (last.status == 206 ? last.offset : 0);
    auto reject = [&](const std::string& what) {
        fs::remove(part_path, ec);
        fail(ErrorCode::InvalidFormat, "downloaded " + o.file + " is corrupt: " + what +
                                           "; the partial file was removed, run the command again");
    };
    if (expected_size && *expected_size != result.bytes)
        reject("it has " + std::to_string(result.bytes) + " bytes, the server announced " +
               std::to_string(*expected_size));
    if (!expected_sha && last.linked_etag) expected_sha = sha256_from_etag(*last.linked_etag);
    result.sha256 = sha256_file(part_path);
    if (expected_sha) {
        if (result.sha256 != *expected_sha)
            reject("SHA-256 " + result.sha256 + " instead of " + *expected_sha);
        result.verified = true;
    } else {
        log::warn("no checksum known for {}; only its size was checked", o.file);
    }
    fs::rename(part_path, result.path, ec);
    if (ec)
        fail(ErrorCode::Io,
             "cannot rename " + part_path + " to " + result.path + ": " + ec.message());
    return result;
}

}  // namespace bitnet::xtask

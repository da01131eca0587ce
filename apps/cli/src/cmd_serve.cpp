// `bitnet serve`: the OpenAI-compatible HTTP server (see apps/cli/server and docs/server.md).
// SIGINT/SIGTERM stop it gracefully: new requests get 503, running ones finish within --grace
// seconds (the rest are cancelled with an error), then it exits 0.
#include <pthread.h>
#include <signal.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "api_server.hpp"
#include "bitnet/common/env.hpp"
#include "bitnet/common/log.hpp"
#include "commands.hpp"
#include "generation_options.hpp"

namespace bitnet::cli {

Command add_serve_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server");
    struct Options {
        GenerationOptions gen;
        server::ServerOptions server;
        std::string chat_format;
        double grace_s = 10;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("-m,--model", o->gen.model,
                    "GGUF model (default: BITNET_GGUF, else models/**/*.gguf, else the built-in "
                    "demo model)");
    cmd->add_option("--host", o->server.host, "Address to listen on (0.0.0.0: every interface)")
        ->capture_default_str();
    cmd->add_option("--port", o->server.port, "Port (0: any free port)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    cmd->add_option("--parallel", o->server.parallel,
                    "Requests decoded together (continuous batching)")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    cmd->add_option("--queue", o->server.max_queue,
                    "Requests that may wait for a slot; more get HTTP 503")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    cmd->add_option("--max-body", o->server.max_body_bytes, "Largest request body in bytes")
        ->check(CLI::Range(1024, 1 << 30))
        ->capture_default_str();
    cmd->add_option("--api-key", o->server.api_key,
                    "Require 'Authorization: Bearer KEY' on /v1/ (default: BITNET_API_KEY)");
    cmd->add_option("--model-name", o->server.model_name,
                    "Model id reported by /v1/models (default: the file name)");
    cmd->add_option("--chat-format", o->chat_format,
                    "bitnet | llama3 (default: from the model's chat template)")
        ->check(CLI::IsMember({"bitnet", "llama3"}));
    cmd->add_option("--grace", o->grace_s,
                    "Seconds running requests may take to finish after SIGINT/SIGTERM")
        ->check(CLI::Range(0.0, 3600.0))
        ->capture_default_str();
    cmd->add_option("-t,--threads", o->gen.threads, "CPU threads (default: physical cores)");
    cmd->add_option("-c,--ctx-size", o->gen.context,
                    "Context per request in tokens (default: the model's, at most 4096)");
    cmd->add_option("--kernel", o->gen.kernel, "auto | i2s | tl1 | tl2 | ref")
        ->capture_default_str();
    // The server's batches take every slot's logits from the whole head: no screening copy
    // (run's auto) to make and hold.
    o->gen.head = "f16";
    cmd->add_option("--head", o->gen.head, "Output head: f16 (as stored) | q8_0")
        ->check(CLI::IsMember({"f16", "q8_0"}))
        ->capture_default_str();
    cmd->add_option("--device", o->gen.device, "auto | cpu | cuda[:N]");
    cmd->add_flag("--mmap", o->gen.mmap,
                  "CPU: read the weights in place from the file's mapping (no copy into huge "
                  "pages; pages shared with other processes, decode a few % slower)");
    return {cmd, [o]() {
                // Signals are taken by one thread with sigwait(); every other thread (OpenMP,
                // HTTP, scheduler) inherits this mask, so none is interrupted by them.
                sigset_t stop_signals;
                sigemptyset(&stop_signals);
                sigaddset(&stop_signals, SIGINT);
                sigaddset(&stop_signals, SIGTERM);
                pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
                std::signal(SIGPIPE, SIG_IGN);  // a vanished client is an error return, not death

                auto engine = load_engine(o->gen);
                server::ServerOptions options = o->server;
                if (options.api_key.empty())
                    if (const char* key = std::getenv("BITNET_API_KEY")) options.api_key = key;
                if (!o->chat_format.empty())
                    options.chat_format = tokenizers::chat_format_from_name(o->chat_format);
                if (options.model_name.empty())
                    options.model_name =
                        std::filesystem::path(engine->model().file().path()).stem().string();
                server::ApiServer api(*engine, options);
                const int port = api.bind();
                std::fprintf(
                    stderr, "listening on http://%s:%d (model %s, %d parallel, queue %zu%s)\n",
                    options.host.c_str(), port, options.model_name.c_str(), options.parallel,
                    options.max_queue, options.api_key.empty() ? "" : ", API key required");
                std::fflush(stderr);

                std::atomic<bool> stopped_by_signal{false};
                std::thread signal_thread([&] {
                    int sig = 0;
                    sigwait(&stop_signals, &sig);
                    if (stopped_by_signal.exchange(true)) return;
                    std::fprintf(stderr, "%s: finishing running requests (up to %.0f s)\n",
                                 sig == SIGINT ? "SIGINT" : "SIGTERM", o->grace_s);
                    api.shutdown(std::chrono::milliseconds(static_cast<long>(o->grace_s * 1000)));
                });
                api.serve();
                if (!stopped_by_signal.exchange(true))
                    pthread_kill(signal_thread.native_handle(), SIGTERM);
                signal_thread.join();
                std::fprintf(stderr, "server stopped\n");
                return kExitOk;
            }};
}

}  // namespace bitnet::cli

// `bitnet chat`: interactive multi-turn chat with the model's chat template.
// /reset clears the conversation, /exit (or end of input) leaves; Ctrl-C stops the current
// reply without leaving (press it at the prompt to leave).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "bitnet/common/error.hpp"
#include "bitnet/tokenizers/chat_template.hpp"
#include "commands.hpp"
#include "generation_options.hpp"

namespace bitnet::cli {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
    g_interrupted = true;
}

}  // namespace

Command add_chat_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("chat", "Interactive chat using the model's chat template");
    struct Options {
        GenerationOptions gen;
        std::string system;
    };
    auto o = std::make_shared<Options>();
    o->gen.n_predict = 512;
    cmd->add_option("--system", o->system, "System message");
    add_generation_options(cmd, o->gen);
    return {cmd, [o]() {
                const auto sampling = sampling_params(o->gen);
                auto engine = load_engine(o->gen);
                const auto format =
                    o->gen.chat_format.empty()
                        ? tokenizers::detect_chat_format(engine->tokenizer().data().chat_template)
                        : *tokenizers::chat_format_from_name(o->gen.chat_format);
                struct sigaction action {};
                action.sa_handler = on_sigint;
                sigemptyset(&action.sa_mask);
                action.sa_flags = 0;  // no SA_RESTART: Ctrl-C at the prompt ends the read
                sigaction(SIGINT, &action, nullptr);

                std::vector<tokenizers::ChatMessage> messages;
                if (!o->system.empty()) messages.push_back({"system", o->system});
                std::fprintf(
                    stderr, "chat format: %s. /reset clears, /exit leaves, Ctrl-C stops a reply.\n",
                    tokenizers::chat_format_name(format).c_str());
                std::string line;
                while (true) {
                    std::fputs("\n> ", stdout);
                    std::fflush(stdout);
                    g_interrupted = false;
                    if (!std::getline(std::cin, line) || g_interrupted) break;
                    if (line == "/exit" || line == "/quit") break;
                    if (line == "/reset") {
                        messages.resize(o->system.empty() ? 0 : 1);
                        engine->reset();
                        std::fputs("(conversation cleared)\n", stdout);
                        continue;
                    }
                    if (line.empty()) continue;
                    messages.push_back({"user", line});
                    inference::GenerationRequest request;
                    request.prompt = tokenizers::render_chat(format, messages, true);
                    request.add_bos = false;
                    request.parse_special = true;
                    request.n_predict = o->gen.n_predict;
                    request.sampling = sampling;
                    request.stop = o->gen.stop;
                    inference::GenerationResult result;
                    try {
                        result = engine->generate(
                            request,
                            [](std::string_view text) {
                                std::fwrite(text.data(), 1, text.size(), stdout);
                                std::fflush(stdout);
                            },
                            &g_interrupted);
                    } catch (const Error& e) {
                        messages.pop_back();
                        std::fprintf(stderr, "\nerror: %s\n", e.what());
                        if (e.code() != ErrorCode::InvalidArgument) return kExitRuntime;
                        continue;
                    }
                    if (result.stop_reason == inference::StopReason::Cancelled)
                        std::fputs(" [stopped]", stdout);
                    std::fputc('\n', stdout);
                    messages.push_back({"assistant", result.text});
                    report_metrics(o->gen, result, sampling.seed);
                }
                std::fputc('\n', stdout);
                return kExitOk;
            }};
}

}  // namespace bitnet::cli

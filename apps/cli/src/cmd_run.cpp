// `bitnet run`: generate text from a prompt, streaming it to stdout; summary on stderr.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "bitnet/common/error.hpp"
#include "bitnet/tokenizers/chat_template.hpp"
#include "commands.hpp"
#include "generation_options.hpp"

namespace bitnet::cli {

Command add_run_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("run", "Generate text from a prompt");
    struct Options {
        GenerationOptions gen;
        std::string prompt;
        std::string prompt_file;
        bool chat = false;
        std::string system;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("-p,--prompt", o->prompt, "The prompt (an empty prompt starts from BOS)");
    cmd->add_option("--file", o->prompt_file, "Read the prompt from this file")
        ->check(CLI::ExistingFile);
    cmd->add_flag("--chat", o->chat,
                  "Wrap the prompt as one user turn of the model's chat template");
    cmd->add_option("--system", o->system, "System message for --chat");
    add_generation_options(cmd, o->gen);
    return {
        cmd, [o]() {
            std::string prompt = o->prompt;
            if (!o->prompt_file.empty()) {
                std::ifstream in(o->prompt_file, std::ios::binary);
                std::stringstream ss;
                ss << in.rdbuf();
                prompt = ss.str();
            }
            const auto sampling = sampling_params(o->gen);
            if (o->gen.n_predict == 0 || o->gen.n_predict < -1)
                fail(ErrorCode::InvalidArgument,
                     "-n must be at least 1 (or -1: until the context is full); got " +
                         std::to_string(o->gen.n_predict));
            auto engine = load_engine(o->gen);
            inference::GenerationRequest request;
            request.prompt = prompt;
            request.n_predict = o->gen.n_predict;
            request.sampling = sampling;
            request.stop = o->gen.stop;
            if (o->chat) {
                const auto format =
                    o->gen.chat_format.empty()
                        ? tokenizers::detect_chat_format(engine->tokenizer().data().chat_template)
                        : *tokenizers::chat_format_from_name(o->gen.chat_format);
                std::vector<tokenizers::ChatMessage> messages;
                if (!o->system.empty()) messages.push_back({"system", o->system});
                messages.push_back({"user", prompt});
                request.prompt = tokenizers::render_chat(format, messages, true);
                request.add_bos = false;  // the template starts with <|begin_of_text|>
                request.parse_special = true;
            }
            // The prompt is echoed once generation has started, so a refused request prints
            // nothing.
            bool echoed = false;
            auto echo_prompt = [&]() {
                if (echoed) return;
                echoed = true;
                if (!o->chat) std::fputs(prompt.c_str(), stdout);
            };
            const auto result = engine->generate(request, [&](std::string_view text) {
                echo_prompt();
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
            });
            echo_prompt();
            std::fputc('\n', stdout);
            report_metrics(o->gen, result, sampling.seed);
            return kExitOk;
        }};
}

}  // namespace bitnet::cli

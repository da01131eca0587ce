// `bitnet` — the command-line front end. Subcommands live in cmd_*.cpp; this file only wires
// them up and maps errors to exit codes (0 ok, 1 runtime error, 2 usage error).
#include <cstdio>
#include <string>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
    using namespace bitnet;
    CLI::App app{"bitnet — inference for BitNet b1.58 ternary language models"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "bitnet 0.1.0");
    bool verbose = false;
    bool quiet = false;
    app.add_flag("-v,--verbose", verbose, "Log debug details to stderr");
    app.add_flag("-q,--quiet", quiet, "Only log errors; no progress bars");

    const std::vector<cli::Command> commands = {
        cli::add_run_command(app),        cli::add_chat_command(app),
        cli::add_bench_command(app),      cli::add_perplexity_command(app),
        cli::add_inspect_command(app),    cli::add_validate_command(app),
        cli::add_system_command(app),     cli::add_tokenize_command(app),
        cli::add_detokenize_command(app), cli::add_serve_command(app),
        cli::add_convert_command(app),
    };

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? cli::kExitOk : cli::kExitUsage;
    }
    try {
        log::set_level(verbose ? log::Level::Debug
                               : (quiet ? log::Level::Error : log::Level::Info));
        for (const cli::Command& command : commands)
            if (command.app->parsed()) return command.run();
        return cli::kExitUsage;
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return e.code() == ErrorCode::InvalidArgument ? cli::kExitUsage : cli::kExitRuntime;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return cli::kExitRuntime;
    }
}

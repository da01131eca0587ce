// The `bitnet` subcommands. Each registers its options on the CLI11 app and returns the exit
// code when run: 0 ok, 1 runtime error, 2 usage error (../specs/CLI.md).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace bitnet::cli {

using CommandRunner = std::function<int()>;

struct Command {
    CLI::App* app;      // the subcommand, to ask whether it was parsed
    CommandRunner run;  // runs it and returns the exit code
};

Command add_inspect_command(CLI::App& app);
Command add_validate_command(CLI::App& app);
Command add_system_command(CLI::App& app);
Command add_tokenize_command(CLI::App& app);
Command add_detokenize_command(CLI::App& app);
Command add_run_command(CLI::App& app);
Command add_chat_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_perplexity_command(CLI::App& app);
Command add_serve_command(CLI::App& app);
Command add_convert_command(CLI::App& app);

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

}  // namespace bitnet::cli

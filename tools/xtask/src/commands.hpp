// `xtask` subcommands: project chores (model generation, download, verification, benchmarks).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace bitnet::xtask {

struct Command {
    CLI::App* app;
    std::function<int()> run;  // returns the exit code
};

Command add_gen_model_command(CLI::App& app);
Command add_crossval_command(CLI::App& app);
Command add_download_command(CLI::App& app);

}  // namespace bitnet::xtask

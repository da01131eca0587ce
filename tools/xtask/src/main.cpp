// `xtask` — developer and CI chores around the engine. Exit codes: 0 ok, 1 runtime, 2 usage.
#include <cstdio>
#include <vector>

#include "bitnet/common/error.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
    using namespace bitnet;
    CLI::App app{"xtask — model generation and project tasks for bitnet"};
    app.require_subcommand(1);
    const std::vector<xtask::Command> commands = {xtask::add_gen_model_command(app),
                                                  xtask::add_crossval_command(app),
                                                  xtask::add_download_command(app)};
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    try {
        for (const auto& command : commands)
            if (command.app->parsed()) return command.run();
        return 2;
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return e.code() == ErrorCode::InvalidArgument ? 2 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

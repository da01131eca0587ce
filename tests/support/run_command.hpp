// Runs a command line in a shell for end-to-end tests, capturing exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "test_support.hpp"

namespace bitnet::test {

struct CommandResult {
    int exit_code;
    std::string out;
    std::string err;
};

inline std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// stdin comes from `stdin_file` (default: nothing).
inline CommandResult run_command(const std::string& command,
                                 const std::string& stdin_file = "/dev/null") {
    TempDir dir("cmd");
    const std::string out = dir.file("stdout"), err = dir.file("stderr");
    const int status =
        std::system((command + " > '" + out + "' 2> '" + err + "' < '" + stdin_file + "'").c_str());
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return {code, read_text(out), read_text(err)};
}

inline std::string quoted(const std::string& s) {
    return "'" + s + "'";
}

}  // namespace bitnet::test

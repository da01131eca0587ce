#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>

#include "bad_gguf.hpp"
#include "run_command.hpp"

using namespace bitnet;

namespace {
void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
}
}  // namespace

TEST_CASE("bitnet validate accepts a valid model with exit code 0") {
    test::TempDir dir("validate-ok");
    const std::string path = dir.file("tiny.gguf");
    write_file(path, test::valid_tiny_model_bytes());
    const auto r =
        test::run_command(std::string(BITNET_CLI_PATH) + " validate " + test::quoted(path));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::StartsWith("OK: "));
}

TEST_CASE("bitnet validate rejects every corrupt file with exit code 1 and a one-line reason") {
    test::TempDir dir("validate-bad");
    for (const auto& bad : test::bad_gguf_cases()) {
        DYNAMIC_SECTION(bad.name) {
            const std::string path = dir.file(bad.name + ".gguf");
            write_file(path, bad.bytes);
            for (const char* command : {" validate ", " compat-check "}) {
                const auto r =
                    test::run_command(std::string(BITNET_CLI_PATH) + command + test::quoted(path));
                INFO(command << r.err);
                CHECK(r.exit_code == 1);
                CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
                CHECK_THAT(r.err, Catch::Contains(bad.name + ".gguf"));
                CHECK_THAT(r.err, Catch::Contains(bad.expected_fragment));
            }
        }
    }
}

TEST_CASE("bitnet validate on a missing file is a runtime error naming it") {
    const auto r =
        test::run_command(std::string(BITNET_CLI_PATH) + " validate /nonexistent/model.gguf");
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("/nonexistent/model.gguf"));
}

TEST_CASE("bad flags are usage errors with exit code 2") {
    CHECK(test::run_command(std::string(BITNET_CLI_PATH) + " validate").exit_code == 2);
    CHECK(test::run_command(std::string(BITNET_CLI_PATH) + " inspect --no-such-flag x").exit_code ==
          2);
    CHECK(test::run_command(std::string(BITNET_CLI_PATH) + " frobnicate").exit_code == 2);
    CHECK(test::run_command(std::string(XTASK_PATH) + " gen-model --preset huge -o /tmp/x.gguf")
              .exit_code == 2);
}

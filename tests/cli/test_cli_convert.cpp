#include <catch2/catch.hpp>

#include <filesystem>

#include "demo_checkpoint.hpp"
#include "run_command.hpp"
#include "test_support.hpp"

using namespace bitnet;

TEST_CASE("bitnet convert: checkpoint to GGUF and back through tq1_0, with a summary") {
    test::TempDir dir("cli-convert");
    const std::string bin = BITNET_CLI_PATH;
    const std::string ckpt = test::demo_checkpoint(dir).string();
    const std::string out = dir.file("demo.gguf");
    const auto r = test::run_command(bin + " convert " + test::quoted(ckpt) + " " + out + " -q");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("68 tensors") && Catch::Contains("42 already ternary"));
    const auto f16 =
        test::run_command(bin + " convert " + out + " " + dir.file("f16.gguf") + " --to f16 -q");
    REQUIRE(f16.exit_code == 0);
    CHECK_THAT(f16.err, Catch::Contains("42 re-quantized to f16"));
    const auto run = test::run_command(bin + " run -m " + dir.file("f16.gguf") +
                                       " -p 'In the beginning' -n 8 --greedy");
    CHECK(run.exit_code == 0);
    CHECK_THAT(run.out, Catch::StartsWith("In the beginning of the creation of God"));
    // Usage errors exit 2, runtime errors 1, and no output file appears.
    CHECK(test::run_command(bin + " convert " + out + " " + dir.file("x.gguf") + " --to q4")
              .exit_code == 2);
    const auto missing =
        test::run_command(bin + " convert " + dir.file("nope") + " " + dir.file("y.gguf"));
    CHECK(missing.exit_code != 0);
    CHECK_THAT(missing.err, Catch::Contains("does not exist"));
    CHECK_FALSE(std::filesystem::exists(dir.file("y.gguf")));
}

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model_files.hpp"
#include "run_command.hpp"

using namespace bitnet;

namespace {
std::string run_cmd(const std::string& model, const std::string& args) {
    return std::string(BITNET_CLI_PATH) + " run -m " + test::quoted(model) + " " + args;
}
}  // namespace

TEST_CASE("bitnet run with a seed prints the same text twice; different seeds differ") {
    test::TempDir dir("cli-run");
    const std::string model = test::write_synthetic_model(dir, "small", 2);
    const auto a = test::run_command(run_cmd(model, "-p Hello -n 64 --seed 7"));
    const auto b = test::run_command(run_cmd(model, "-p Hello -n 64 --seed 7"));
    const auto c = test::run_command(run_cmd(model, "-p Hello -n 64 --seed 8"));
    INFO(a.err);
    REQUIRE(a.exit_code == 0);
    CHECK(a.out == b.out);
    CHECK(a.out != c.out);
    CHECK_THAT(a.out, Catch::StartsWith("Hello"));
    CHECK_THAT(a.err, Catch::Contains("tok/s"));
}

TEST_CASE("bitnet run --greedy twice gives identical tokens; --metrics-json records them") {
    test::TempDir dir("cli-greedy");
    const std::string model = test::write_synthetic_model(dir, "tiny", 4);
    const std::string m1 = dir.file("m1.json"), m2 = dir.file("m2.json");
    const auto a = test::run_command(
        run_cmd(model, "-p 'The capital of France is' -n 24 --greedy --metrics-json " + m1));
    const auto b = test::run_command(run_cmd(
        model, "-p 'The capital of France is' -n 24 --greedy --kernel ref --metrics-json " + m2));
    REQUIRE(a.exit_code == 0);
    REQUIRE(b.exit_code == 0);
    CHECK(a.out == b.out);  // default and reference backends agree token for token
    const auto j = nlohmann::json::parse(test::read_text(m1));
    CHECK(j["prompt_tokens"].get<int>() >= 5);
    CHECK(j["generated_tokens"].get<int>() <= 24);
    CHECK(j["peak_rss_bytes"].get<std::uint64_t>() > 0);
    CHECK(j["backend"] == "cpu");
    CHECK(nlohmann::json::parse(test::read_text(m2))["backend"] == "reference");
}

TEST_CASE("bitnet run refuses bad input with usage (2) or runtime (1) exit codes") {
    test::TempDir dir("cli-run-bad");
    const std::string model = test::write_synthetic_model(dir, "tiny", 5);
    struct Case {
        std::string args;
        int code;
        std::string fragment;
    };
    for (const Case& c :
         {Case{"-p hi -n 0", 2, "-n must be"}, Case{"-p hi --temp -1", 2, "--temp"},
          Case{"-p hi --temp nan", 2, "--temp"}, Case{"-p hi --top-p 0", 2, "--top-p"},
          Case{"-p hi --top-p 1.5", 2, "--top-p"}, Case{"-p hi --device tpu", 2, "unknown device"},
          Case{"-p hi --device cuda", 1, "--device cpu"},
          Case{"-p hi -c 8 --file /etc/hostname -n 1", 0, ""},
          Case{"-p '" + std::string(300, 'x') + " y' -c 16", 2, "context holds 16"},
          Case{"-p hi --kv-type f8", 2, "kv-type"}}) {
        if (c.code == 0) continue;
        const auto r = test::run_command(run_cmd(model, c.args));
        INFO(c.args << " -> " << r.err);
        CHECK(r.exit_code == c.code);
        CHECK_THAT(r.err, Catch::Contains(c.fragment));
        CHECK(r.out.empty());
    }
    const auto missing = test::run_command(std::string(BITNET_CLI_PATH) + " run -m " +
                                           dir.file("nope.gguf") + " -p hi");
    CHECK(missing.exit_code == 1);
    CHECK_THAT(missing.err, Catch::Contains("nope.gguf"));
}

TEST_CASE("BITNET_STRICT_MODE=1 turns a kernel fallback into an error") {
    test::TempDir dir("cli-strict");
    // The lookup-table kernels take I2_S weights: asked for on a TQ2_0 model, they fall back.
    const std::string model =
        test::write_synthetic_model(dir, "small", 6, bitnet::quant::TypeId::TQ2_0);
    const auto relaxed = test::run_command(run_cmd(model, "-p hi -n 2 --kernel tl1"));
    CHECK(relaxed.exit_code == 0);
    CHECK_THAT(relaxed.err, Catch::Contains("takes I2_S weights"));
    const auto strict =
        test::run_command("BITNET_STRICT_MODE=1 " + run_cmd(model, "-p hi -n 2 --kernel tl1"));
    CHECK(strict.exit_code == 1);
    CHECK_THAT(strict.err, Catch::Contains("BITNET_STRICT_MODE"));
}

TEST_CASE("run with the tl1 and tl2 kernels generates exactly what the i2s kernel generates") {
    test::TempDir dir("cli-tl1");
    const std::string model = test::write_synthetic_model(dir, "small", 8);
    const auto i2s = test::run_command(run_cmd(model, "-p 'the cat' -n 24 --greedy --kernel i2s"));
    REQUIRE(i2s.exit_code == 0);
    for (const char* kernel : {"tl1", "tl2"}) {
        const auto lut = test::run_command(
            run_cmd(model, std::string("-p 'the cat' -n 24 --greedy --kernel ") + kernel));
        INFO(kernel << ": " << lut.err);
        if (lut.exit_code != 0 && lut.err.find("lacks") != std::string::npos) {
            WARN("SKIPPED: " << lut.err);  // the CPU has no such instructions: a clear error
            continue;
        }
        REQUIRE(lut.exit_code == 0);
        CHECK(lut.out == i2s.out);
    }
}

TEST_CASE("bitnet run without a model uses the built-in demo model, says so, prints its text") {
    test::TempDir empty("cli-builtin");  // no models/ directory here
    const auto r = test::run_command("cd " + test::quoted(empty.path().string()) +
                                     " && env -u BITNET_GGUF " + std::string(BITNET_CLI_PATH) +
                                     " run -p 'In the beginning' -n 32 --greedy");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("built-in demo model") &&
                          Catch::Contains("not an assistant") &&
                          Catch::Contains("xtask download-model"));
    // Exactly PyTorch's greedy continuation of the trained checkpoint (assets/demo-model).
    const auto reference = nlohmann::json::parse(
        test::read_text(std::string(BITNET_SOURCE_DIR) + "/assets/demo-model/reference.json"));
    const auto& first = reference["prompts"][0];
    REQUIRE(first["prompt"] == "In the beginning");
    CHECK(r.out == "In the beginning" + first["greedy_text"].get<std::string>() + "\n");
}

TEST_CASE("bitnet chat answers turns from stdin, /reset and /exit work") {
    test::TempDir dir("cli-chat");
    const std::string model = test::write_synthetic_model(dir, "tiny", 7);
    const std::string input = dir.file("input.txt");
    {
        std::ofstream in(input);
        in << "hello\n/reset\nagain\n/exit\n";
    }
    const auto r = test::run_command(
        std::string(BITNET_CLI_PATH) + " chat -m " + test::quoted(model) + " -n 8 --seed 3", input);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("(conversation cleared)"));
    CHECK_THAT(r.err, Catch::Contains("chat format: bitnet"));
}

TEST_CASE("without -m, bitnet run takes BITNET_GGUF, then models/**/*.gguf, and says which") {
    test::TempDir dir("cli-discover");
    std::filesystem::create_directories(dir.file("models/org"));
    const std::string a =
        test::write_synthetic_model(dir, "tiny", 21, quant::TypeId::I2_S, "models/org/a.gguf");
    test::write_synthetic_model(dir, "tiny", 22, quant::TypeId::I2_S,
                                "models/org/ggml-model-i2_s.gguf");
    const std::string cd = "cd " + test::quoted(dir.path().string()) + " && env -u BITNET_GGUF ";
    const std::string run = std::string(BITNET_CLI_PATH) + " run -p hi -n 2 --greedy";
    const auto found = test::run_command(cd + run);
    INFO(found.err);
    REQUIRE(found.exit_code == 0);
    // The official file name wins over the alphabetically first one.
    CHECK_THAT(found.err, Catch::Contains("models/org/ggml-model-i2_s.gguf (found in models/, 1 "
                                          "of 2 files; -m picks another)"));
    const auto from_env = test::run_command("cd " + test::quoted(dir.path().string()) +
                                            " && BITNET_GGUF=" + a + " " + run);
    REQUIRE(from_env.exit_code == 0);
    CHECK_THAT(from_env.err, Catch::Contains("(from BITNET_GGUF)"));
    test::TempDir empty("cli-discover-empty");
    const auto builtin = test::run_command("cd " + test::quoted(empty.path().string()) +
                                           " && env -u BITNET_GGUF " + run);
    REQUIRE(builtin.exit_code == 0);
    CHECK_THAT(builtin.err,
               Catch::Contains("built-in demo model") && Catch::Contains("xtask download-model"));
}

TEST_CASE("bitnet bench --json reports pp, tg, batched decode and the bandwidth floor") {
    test::TempDir dir("cli-bench");
    const std::string model = test::write_synthetic_model(dir, "tiny", 23);
    const auto r = test::run_command(std::string(BITNET_CLI_PATH) + " bench -m " +
                                     test::quoted(model) + " -p 16 -n 8 -r 2 -b 1,3 --json");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["pp"]["tokens_per_s"].get<double>() > 0);
    CHECK(j["tg"]["runs"].size() == 2);
    CHECK(j["memory_bandwidth_gbs"].get<double>() > 0);
    // floor = bandwidth / bytes per token, as documented.
    CHECK(j["floor_tokens_per_s"].get<double>() ==
          Approx(j["memory_bandwidth_gbs"].get<double>() * 1e9 /
                 j["weight_bytes_per_token"].get<double>()));
    // A read test before each tg run: the bandwidth is their mean, and the % of floor the mean of
    // each run against its own read test.
    const auto reads = j["memory_bandwidth_runs_gbs"].get<std::vector<double>>();
    const auto tg_runs = j["tg"]["runs"].get<std::vector<double>>();
    REQUIRE(reads.size() == 2);
    CHECK(reads[0] > 0);
    CHECK(reads[1] > 0);
    CHECK(j["memory_bandwidth_gbs"].get<double>() == Approx((reads[0] + reads[1]) / 2));
    const double bytes = j["weight_bytes_per_token"].get<double>();
    CHECK(j["tg_percent_of_floor"].get<double>() ==
          Approx(50.0 *
                 (tg_runs[0] * bytes / (reads[0] * 1e9) + tg_runs[1] * bytes / (reads[1] * 1e9))));
    REQUIRE(j["batched"].size() == 1);
    CHECK(j["batched"][0]["batch"] == 3);
    CHECK(j["batched"][0]["steps_per_s"].get<double>() ==
          Approx(j["batched"][0]["tokens_per_s"].get<double>() / 3));
    const auto bad = test::run_command(std::string(BITNET_CLI_PATH) + " bench -m " +
                                       test::quoted(model) + " -p 4 -n 4 -b 0");
    CHECK(bad.exit_code == 2);
    // -c loads the model with a session's context; too small for -p + -n is refused.
    const auto wide = test::run_command(std::string(BITNET_CLI_PATH) + " bench -m " +
                                        test::quoted(model) + " -p 4 -n 2 -r 1 -c 64");
    INFO(wide.err);
    CHECK(wide.exit_code == 0);
    const auto narrow = test::run_command(std::string(BITNET_CLI_PATH) + " bench -m " +
                                          test::quoted(model) + " -p 4 -n 4 -r 1 -c 6");
    CHECK(narrow.exit_code != 0);
    CHECK_THAT(narrow.err, Catch::Contains("-c"));
    // -d: the tests start on a cache holding that many tokens; the context must hold them too
    // (the default does: -d + -p + -n + 1), and the table names the depth as llama-bench does.
    const auto deep = test::run_command(std::string(BITNET_CLI_PATH) + " bench -m " +
                                        test::quoted(model) + " -d 40 -p 4 -n 4 -r 1 --json");
    INFO(deep.err);
    REQUIRE(deep.exit_code == 0);
    const auto dj = nlohmann::json::parse(deep.out);
    CHECK(dj["depth"] == 40);
    CHECK(dj["tg"]["tokens_per_s"].get<double>() > 0);
    const auto deep_text = test::run_command(std::string(BITNET_CLI_PATH) + " bench -m " +
                                             test::quoted(model) + " -d 40 -p 4 -n 4 -r 1 -c 49");
    CHECK(deep_text.exit_code == 0);
    CHECK_THAT(deep_text.out, Catch::Contains("| pp4 @ d40") && Catch::Contains("| tg4 @ d40"));
    const auto too_deep = test::run_command(std::string(BITNET_CLI_PATH) + " bench -m " +
                                            test::quoted(model) + " -d 40 -p 4 -n 4 -r 1 -c 48");
    CHECK(too_deep.exit_code != 0);
    CHECK_THAT(too_deep.err, Catch::Contains("-d"));
}

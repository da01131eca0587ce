#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bitnet/crossval/logits_file.hpp"
#include "model_files.hpp"
#include "run_command.hpp"

using namespace bitnet;

TEST_CASE("xtask crossval: fast vs reference passes on the small model and prints the metrics") {
    test::TempDir dir("xv");
    const std::string model = test::write_synthetic_model(dir, "small", 5);
    const std::string report = dir.file("report.json");
    const auto r = test::run_command(std::string(XTASK_PATH) + " crossval --model " +
                                     test::quoted(model) + " --report " + report);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("PASS"));
    CHECK_THAT(r.out, Catch::Contains("relative L2"));
    const auto j = nlohmann::json::parse(test::read_text(report));
    CHECK(j["passed"] == true);
    CHECK(j["positions"].size() >= 5);
}

TEST_CASE(
    "xtask crossval: a reference file passes when intact and fails, naming the position, when "
    "perturbed") {
    test::TempDir dir("xv-ref");
    const std::string model = test::write_synthetic_model(dir, "tiny", 6);
    const std::string ref = dir.file("ref.logits");
    const std::string xtask = std::string(XTASK_PATH) + " crossval --model " + test::quoted(model);
    REQUIRE(test::run_command(xtask + " --write-reference " + ref).exit_code == 0);
    const auto ok =
        test::run_command(xtask + " --reference " + ref + " --report " + dir.file("ok.json"));
    INFO(ok.out << ok.err);
    CHECK(ok.exit_code == 0);

    auto file = crossval::read_logits_file(ref);
    const std::size_t row = 3;
    for (std::int64_t i = 0; i < file.n_vocab; ++i)
        file.logits[row * static_cast<std::size_t>(file.n_vocab) + static_cast<std::size_t>(i)] *=
            -1.0f;
    const std::string bad = dir.file("bad.logits");
    crossval::write_logits_file(bad, file);
    const auto r =
        test::run_command(xtask + " --reference " + bad + " --report " + dir.file("bad.json"));
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("FAIL"));
    CHECK_THAT(r.out,
               Catch::Contains("first failing position " + std::to_string(file.positions[row])));
    CHECK(nlohmann::json::parse(test::read_text(dir.file("bad.json")))["first_failing_position"] ==
          file.positions[row]);
}

TEST_CASE("xtask crossval --cpp-bin with a missing binary is a clear error") {
    test::TempDir dir("xv-cpp");
    const std::string model = test::write_synthetic_model(dir, "tiny", 7);
    const auto r = test::run_command(std::string(XTASK_PATH) + " crossval --model " +
                                     test::quoted(model) + " --cpp-bin /nonexistent/llama-logits");
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("/nonexistent/llama-logits does not exist"));
}

TEST_CASE(
    "bitnet perplexity on a generated model and 20 kB of text: finite, repeatable, same for -t 1 "
    "and -t 2") {
    test::TempDir dir("ppl-cli");
    const std::string model = test::write_synthetic_model(dir, "tiny", 8);
    const std::string text = dir.file("text.txt");
    {
        std::ofstream out(text);
        std::string chunk =
            "It was the best of times, it was the worst of times, it was the age of wisdom. ";
        while (out.tellp() < 20000) out << chunk;
    }
    const std::string cmd = std::string(BITNET_CLI_PATH) + " perplexity --json -m " +
                            test::quoted(model) + " -f " + text + " -c 256 --stride 128";
    const auto a = test::run_command(cmd + " -t 1");
    const auto b = test::run_command(cmd + " -t 2");
    const auto c = test::run_command(cmd + " -t 2");
    INFO(a.err);
    REQUIRE(a.exit_code == 0);
    const auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out),
               jc = nlohmann::json::parse(c.out);
    CHECK(std::isfinite(ja["perplexity"].get<double>()));
    CHECK(ja["perplexity"].get<double>() > 1.0);
    CHECK(ja["perplexity"] == jb["perplexity"]);
    CHECK(jb["perplexity"] == jc["perplexity"]);
    CHECK(ja["scored_tokens"].get<int>() + 1 == ja["tokens"].get<int>());
    // The default is llama.cpp's chunk convention: 127 scored tokens per 256-token chunk.
    const auto chunks = test::run_command(std::string(BITNET_CLI_PATH) + " perplexity --json -m " +
                                          test::quoted(model) + " -f " + text + " -c 256");
    REQUIRE(chunks.exit_code == 0);
    const auto jc2 = nlohmann::json::parse(chunks.out);
    CHECK(jc2["scored_tokens"].get<int>() == 127 * (ja["tokens"].get<int>() / 256));
    CHECK(std::isfinite(jc2["perplexity"].get<double>()));
}

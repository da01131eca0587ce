#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/crossval/comparison.hpp"
#include "bitnet/crossval/logits_file.hpp"
#include "test_support.hpp"

using namespace bitnet;

namespace {
std::vector<float> random_logits(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 3.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}
}  // namespace

TEST_CASE("identical logits: cosine 1, zero divergence, every check passes") {
    const auto a = random_logits(4 * 100, 1);
    const auto r = crossval::compare_logits("same", {0, 1, 2, 3}, a, a, 100,
                                            crossval::same_engine_tolerances());
    CHECK(r.passed());
    for (const auto& m : r.metrics) {
        CHECK(m.cosine == Approx(1.0));
        CHECK(m.relative_l2 == 0.0);
        CHECK(m.kl_divergence == Approx(0.0).margin(1e-12));
        CHECK(m.top5_overlap == 1.0);
        CHECK(m.pearson == Approx(1.0));
    }
}

TEST_CASE("a perturbation of known size gives the expected relative L2 and fails at its position") {
    auto ref = random_logits(3 * 1000, 2);
    auto ours = ref;
    // Position 1: add a vector of norm exactly 5% of that row's norm.
    double norm = 0;
    for (int i = 0; i < 1000; ++i) norm += static_cast<double>(ref[1000 + i]) * ref[1000 + i];
    const double delta = 0.05 * std::sqrt(norm) / std::sqrt(1000.0);
    for (int i = 0; i < 1000; ++i) ours[1000 + i] += static_cast<float>(i % 2 ? delta : -delta);
    const auto r = crossval::compare_logits("perturbed", {4, 5, 6}, ours, ref, 1000,
                                            crossval::same_engine_tolerances());
    CHECK(r.metrics[1].relative_l2 == Approx(0.05).epsilon(1e-3));
    CHECK(r.metrics[0].relative_l2 == 0.0);
    CHECK(r.metrics[1].max_abs_diff == Approx(delta).epsilon(1e-4));
    CHECK_FALSE(r.passed());
    CHECK(r.first_failing_position == 5);
    CHECK_THAT(r.summary(), Catch::Contains("FAIL"));
}

TEST_CASE("greedy divergence is reported at its step") {
    crossval::Report r;
    crossval::add_greedy_check(r, {1, 2, 3, 4}, {1, 2, 9, 4}, crossval::same_engine_tolerances());
    CHECK_FALSE(r.passed());
    CHECK(r.first_greedy_divergence == 2);
    crossval::Report ok;
    crossval::add_greedy_check(ok, {1, 2}, {1, 2}, crossval::same_engine_tolerances());
    CHECK(ok.passed());
}

TEST_CASE("reference-logits files round-trip and corrupt ones are refused") {
    test::TempDir dir("logits-file");
    crossval::LogitsFile f;
    f.producer = "test";
    f.model_sha256 = "0123456789abcdef0123456789abcdef";
    f.n_vocab = 7;
    f.tokens = {1, 2, 3};
    f.positions = {0, 2};
    f.greedy = {4, 5};
    f.logits = random_logits(14, 3);
    const std::string path = dir.file("ref.logits");
    crossval::write_logits_file(path, f);
    const auto back = crossval::read_logits_file(path);
    CHECK(back.tokens == f.tokens);
    CHECK(back.positions == f.positions);
    CHECK(back.greedy == f.greedy);
    CHECK(back.logits == f.logits);
    // Truncate the data: the size check names what was expected.
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
    CHECK_THROWS_WITH(crossval::read_logits_file(path),
                      Catch::Contains("expected 56 bytes of logits"));
    std::ofstream(path) << "not a logits file";
    CHECK_THROWS_WITH(crossval::read_logits_file(path), Catch::Contains("BNLOGIT1"));
}

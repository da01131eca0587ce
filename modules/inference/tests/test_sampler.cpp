#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/inference/sampler.hpp"

using namespace bitnet;
using inference::Sampler;
using inference::SamplingParams;

namespace {
SamplingParams plain() {
    SamplingParams p;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.temperature = 1.0f;
    return p;
}

std::map<std::int32_t, double> frequencies(SamplingParams p, const std::vector<float>& logits,
                                           int draws,
                                           const std::vector<std::int32_t>& history = {}) {
    Sampler s(p);
    std::map<std::int32_t, double> f;
    for (int i = 0; i < draws; ++i) f[s.sample(logits, history)] += 1.0 / draws;
    return f;
}
}  // namespace

TEST_CASE("greedy and temperature 0 return the argmax, ignoring penalties") {
    SamplingParams p = plain();
    p.greedy = true;
    p.repeat_penalty = 2.0f;
    Sampler s(p);
    const std::vector<float> logits = {0.1f, 3.0f, 2.9f};
    const std::vector<std::int32_t> history = {1, 1, 1};
    CHECK(s.sample(logits, history) == 1);
    p.greedy = false;
    p.temperature = 0.0f;
    CHECK(Sampler(p).sample(logits, history) == 1);
}

TEST_CASE("temperature 1 samples the softmax distribution") {
    const std::vector<float> logits = {0.0f, std::log(3.0f)};  // probabilities 1/4, 3/4
    const auto f = frequencies(plain(), logits, 20000);
    CHECK(f.at(1) == Approx(0.75).margin(0.015));
}

TEST_CASE("top-k keeps only the k most likely tokens") {
    SamplingParams p = plain();
    p.top_k = 2;
    const auto f = frequencies(p, {1.0f, 5.0f, 4.9f, 4.8f}, 5000);
    CHECK(f.count(0) == 0);
    CHECK(f.count(3) == 0);
    CHECK(f.size() == 2);
}

TEST_CASE("top-p keeps the smallest set reaching p; min-p drops tokens below min_p * p_max") {
    SamplingParams p = plain();
    p.top_p = 0.5f;  // probabilities 0.6, 0.3, 0.1 -> only the first reaches 0.5
    const std::vector<float> logits = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
    CHECK(frequencies(p, logits, 2000).size() == 1);
    p.top_p = 1.0f;
    p.min_p = 0.4f;  // threshold 0.24: keeps 0.6 and 0.3
    const auto f = frequencies(p, logits, 5000);
    CHECK(f.size() == 2);
    CHECK(f.at(0) == Approx(2.0 / 3.0).margin(0.03));
}

TEST_CASE("repetition penalty divides positive and multiplies negative logits of recent tokens") {
    SamplingParams p = plain();
    p.greedy = false;
    p.temperature = 1e-3f;  // nearly greedy, but through the sampling chain
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 2;
    Sampler s(p);
    // token 0 (logit 3) was seen -> 1.5 < token 1 (2.0).
    CHECK(s.sample(std::vector<float>{3.0f, 2.0f}, std::vector<std::int32_t>{0}) == 1);
    // only the last 2 of the history count: token 0 is outside the window.
    CHECK(s.sample(std::vector<float>{3.0f, 2.0f}, std::vector<std::int32_t>{0, 1, 1}) == 0);
    // negative logits are multiplied: -1 -> -2 < -1.5
    CHECK(s.sample(std::vector<float>{-1.0f, -1.5f}, std::vector<std::int32_t>{0}) == 1);
}

TEST_CASE("the same seed gives the same tokens, different seeds differ") {
    std::vector<float> logits(1000);
    for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i));
    auto run = [&](std::uint64_t seed) {
        SamplingParams p;
        p.seed = seed;
        Sampler s(p);
        std::vector<std::int32_t> out;
        for (int i = 0; i < 50; ++i) out.push_back(s.sample(logits, out));
        return out;
    };
    CHECK(run(7) == run(7));
    CHECK(run(7) != run(8));
}

TEST_CASE("invalid sampling parameters are usage errors naming the flag") {
    auto message = [](SamplingParams p) {
        try {
            p.validate();
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::InvalidArgument);
            return std::string(e.what());
        }
        return std::string("no error");
    };
    SamplingParams p;
    p.temperature = -1;
    CHECK_THAT(message(p), Catch::Contains("--temp"));
    p.temperature = NAN;
    CHECK_THAT(message(p), Catch::Contains("--temp"));
    p = {};
    p.top_p = 0;
    CHECK_THAT(message(p), Catch::Contains("--top-p"));
    p.top_p = 1.5f;
    CHECK_THAT(message(p), Catch::Contains("--top-p"));
    p = {};
    p.min_p = -0.1f;
    CHECK_THAT(message(p), Catch::Contains("--min-p"));
    p = {};
    p.repeat_penalty = 0;
    CHECK_THAT(message(p), Catch::Contains("--repeat-penalty"));
}

// The sampler's rules written the plain way (a copy of every logit, all candidates, a full
// sort), as the fast one-pass top-k must reproduce them draw for draw.
static std::int32_t plain_sample(const SamplingParams& p, std::span<const float> logits,
                                 std::span<const std::int32_t> history, inference::Rng& rng) {
    std::vector<float> l(logits.begin(), logits.end());
    if (p.repeat_penalty != 1.0f && p.repeat_last_n > 0) {
        const std::size_t from = history.size() > static_cast<std::size_t>(p.repeat_last_n)
                                     ? history.size() - static_cast<std::size_t>(p.repeat_last_n)
                                     : 0;
        std::set<std::int32_t> seen(history.begin() + static_cast<std::ptrdiff_t>(from),
                                    history.end());
        for (std::int32_t id : seen) {
            if (id < 0 || static_cast<std::size_t>(id) >= l.size()) continue;
            float& v = l[static_cast<std::size_t>(id)];
            v = v > 0.0f ? v / p.repeat_penalty : v * p.repeat_penalty;
        }
    }
    std::vector<std::pair<float, std::int32_t>> c;
    for (std::size_t i = 0; i < l.size(); ++i)
        if (!std::isnan(l[i])) c.emplace_back(l[i], static_cast<std::int32_t>(i));
    std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < c.size())
        c.resize(static_cast<std::size_t>(p.top_k));
    std::vector<double> probs;
    double total = 0;
    for (const auto& x : c) {
        probs.push_back(std::exp(static_cast<double>(x.first - c[0].first)));
        total += probs.back();
    }
    std::size_t n = c.size();
    if (p.top_p < 1.0f) {
        double cumulative = 0;
        for (std::size_t i = 0; i < n; ++i) {
            cumulative += probs[i] / total;
            if (cumulative >= p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p.min_p > 0.0f) {
        std::size_t m = 1;
        while (m < n && probs[m] / total >= p.min_p * (probs[0] / total)) ++m;
        n = m;
    }
    std::vector<double> w(n);
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i)
        sum += w[i] = std::exp(static_cast<double>(c[i].first - c[0].first) / p.temperature);
    const double r = rng.uniform() * sum;
    double acc = 0;
    for (std::size_t i = 0; i < n; ++i) {
        acc += w[i];
        if (r < acc) return c[i].second;
    }
    return c[n - 1].second;
}

TEST_CASE("the one-pass top-k sampler draws what the plain full sort draws") {
    std::mt19937 gen(11);
    std::uniform_int_distribution<int> coarse(-6, 6), kind(0, 19);
    std::normal_distribution<float> fine(0.0f, 3.0f);
    for (int trial = 0; trial < 60; ++trial) {
        INFO("trial " << trial);
        const std::size_t vocab =
            trial % 3 == 0 ? 128256 : 1 + static_cast<std::size_t>(gen() % 300);
        SamplingParams p;
        p.seed = static_cast<std::uint64_t>(trial);
        p.temperature = 0.3f + 0.2f * static_cast<float>(trial % 5);
        p.top_k = std::array<int, 6>{40, 1, 0, 7, 1000000, 200}[trial % 6];
        p.top_p = trial % 4 == 0 ? 1.0f : 0.9f;
        p.min_p = trial % 5 == 0 ? 0.0f : 0.05f;
        p.repeat_penalty = std::array<float, 3>{1.1f, 1.0f, 0.8f}[trial % 3];
        p.repeat_last_n = trial % 7 == 0 ? 0 : 64;
        // Ties (coarse values), NaN, infinities, and ordinary spread logits.
        std::vector<float> logits(vocab);
        for (float& l : logits) {
            const int k = kind(gen);
            l = k == 0   ? NAN
                : k == 1 ? -INFINITY
                : k < 8  ? static_cast<float>(coarse(gen)) * 0.5f
                         : fine(gen);
        }
        std::vector<std::int32_t> history;  // repeats, ids out of range, negative ids
        for (int i = 0; i < 100; ++i)
            history.push_back(static_cast<std::int32_t>(gen() % (vocab + 5)) - 2);
        Sampler fast(p), from_candidates(p);
        inference::Rng rng(p.seed);
        for (int step = 0; step < 8; ++step) {
            // The GPU's half: the top-k after the penalty selected elsewhere, in any order.
            std::vector<Sampler::Candidate> top;
            std::vector<float> penalized = logits;
            for (std::int32_t id : from_candidates.penalized_ids(history, vocab)) {
                float& l = penalized[static_cast<std::size_t>(id)];
                l = l > 0.0f ? l / p.repeat_penalty : l * p.repeat_penalty;
            }
            for (std::size_t i = 0; i < vocab; ++i)
                if (!std::isnan(penalized[i]))
                    top.emplace_back(penalized[i], static_cast<std::int32_t>(i));
            std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) {
                return a.first != b.first ? a.first > b.first : a.second < b.second;
            });
            if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < top.size())
                top.resize(static_cast<std::size_t>(p.top_k));
            std::shuffle(top.begin(), top.end(), gen);

            const std::int32_t expected = plain_sample(p, logits, history, rng);
            CHECK(fast.sample(logits, history) == expected);
            CHECK(from_candidates.sample_candidates(top) == expected);
            history.push_back(expected);
        }
    }
}

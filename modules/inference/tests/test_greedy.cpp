#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/inference/greedy.hpp"

using namespace bitnet;

TEST_CASE("greedy picks the largest logit and the first of equal maxima") {
    std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
    CHECK(inference::greedy_token(logits) == 1);
}

TEST_CASE("greedy skips NaN and rejects empty or all-NaN input") {
    std::vector<float> logits = {NAN, -3.0f, NAN};
    CHECK(inference::greedy_token(logits) == 1);
    CHECK_THROWS_AS(inference::greedy_token(std::vector<float>{}), Error);
    CHECK_THROWS_AS(inference::greedy_token(std::vector<float>{NAN}), Error);
}

// The plain definition: the first index of the largest non-NaN value.
static std::int32_t plain_greedy(const std::vector<float>& logits) {
    std::int32_t best = -1;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        if (std::isnan(logits[i])) continue;
        if (best < 0 || logits[i] > logits[static_cast<std::size_t>(best)])
            best = static_cast<std::int32_t>(i);
    }
    return best;
}

TEST_CASE("greedy equals the plain first-largest rule on random rows of every length") {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> value(-4, 4), kind(0, 9);
    for (std::size_t n : {1u, 2u, 15u, 16u, 17u, 33u, 100u, 1000u, 128256u}) {
        for (int trial = 0; trial < 20; ++trial) {
            INFO("n " << n << " trial " << trial);
            // Few distinct values (many ties), NaN, infinities and signed zeros.
            std::vector<float> logits(n);
            for (float& l : logits) {
                const int k = kind(rng);
                l = k == 0   ? NAN
                    : k == 1 ? -INFINITY
                    : k == 2 ? (trial % 2 ? -0.0f : 0.0f)
                             : static_cast<float>(value(rng)) * 0.5f;
            }
            if (trial == 3) std::fill(logits.begin(), logits.end(), -INFINITY);
            if (trial == 4) logits[n - 1] = INFINITY;
            if (trial == 5) std::fill(logits.begin(), logits.end() - 1, NAN);
            const std::int32_t expected = plain_greedy(logits);
            if (expected < 0) {
                CHECK_THROWS_AS(inference::greedy_token(logits), Error);
            } else {
                CHECK(inference::greedy_token(logits) == expected);
            }
        }
    }
}

#include <catch2/catch.hpp>

#include <cmath>
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

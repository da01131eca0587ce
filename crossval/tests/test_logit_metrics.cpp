#include <catch2/catch.hpp>

#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/crossval/logit_metrics.hpp"

using namespace bitnet;

TEST_CASE("identical vectors have cosine 1 and relative L2 0") {
    std::vector<float> a = {1, 2, 3};
    CHECK(crossval::cosine_similarity(a, a) == Approx(1.0));
    CHECK(crossval::relative_l2(a, a) == 0.0);
}

TEST_CASE("a perturbation of known size gives the expected metrics") {
    std::vector<float> ref = {3, 0, 4};       // norm 5
    std::vector<float> moved = {3, 0.5f, 4};  // diff norm 0.5
    CHECK(crossval::relative_l2(moved, ref) == Approx(0.1));
    std::vector<float> orth = {0, 1, 0};
    CHECK(crossval::cosine_similarity(orth, ref) == Approx(0.0));
    CHECK_THROWS_AS(crossval::cosine_similarity(orth, std::vector<float>{1, 2}), Error);
}

// The device's token choice (sampling_kernels.cu) against the host's rules: greedy is the first
// index of the largest value that is not NaN (-1 when all are NaN); top-k the k best non-NaN
// values after the repetition penalty, larger first, then lower index. Skipped without a GPU
// (CI); runs on the lent H100.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../src/cuda/sampling_kernels.hpp"
#include "bitnet/kernels/cuda_info.hpp"

using namespace bitnet;

namespace {
int first_largest(const std::vector<float>& v) {
    int best = -1;
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!std::isnan(v[i]) && (best < 0 || v[i] > v[static_cast<std::size_t>(best)]))
            best = static_cast<int>(i);
    return best;
}
}  // namespace

TEST_CASE("device argmax: first largest non-NaN value, -1 when all are NaN") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("device argmax skipped: " << info.reason);
        return;
    }
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> coarse(-3, 3), kind(0, 9);
    for (int n : {1, 2, 31, 1024, 1025, 5000, 128256}) {
        for (int trial = 0; trial < 12; ++trial) {
            INFO("n " << n << " trial " << trial);
            std::vector<float> v(static_cast<std::size_t>(n));
            for (float& x : v) {  // many ties, NaN, infinities, signed zeros
                const int k = kind(rng);
                x = k == 0   ? NAN
                    : k == 1 ? -INFINITY
                    : k == 2 ? (trial % 2 ? -0.0f : 0.0f)
                             : static_cast<float>(coarse(rng));
            }
            if (trial == 1) std::fill(v.begin(), v.end(), NAN);
            if (trial == 2) std::fill(v.begin(), v.end(), -INFINITY);
            if (trial == 3) v.back() = INFINITY;
            CHECK(kernels::cuda::device_argmax(v.data(), n) == first_largest(v));
        }
    }
}

TEST_CASE("device top-k: the k best after the penalty, ties by lower index, row by row") {
    const auto info = kernels::cuda_info();
    if (info.device_count == 0) {
        WARN("device top-k skipped: " << info.reason);
        return;
    }
    using Candidate = std::pair<float, std::int32_t>;
    auto better = [](const Candidate& a, const Candidate& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    };
    std::mt19937 rng(9);
    std::uniform_int_distribution<int> coarse(-3, 3), kind(0, 9);
    std::normal_distribution<float> spread(0.0f, 4.0f);
    for (int n : {1, 5, 40, 1023, 5000, 128256}) {
        for (int trial = 0; trial < 4; ++trial) {
            INFO("n " << n << " trial " << trial);
            // Three rows per launch, each with its own k, ids and penalty.
            std::vector<std::vector<float>> rows(3,
                                                 std::vector<float>(static_cast<std::size_t>(n)));
            std::vector<int> ks;
            std::vector<std::vector<int>> ids(3);
            std::vector<float> penalties;
            for (int r = 0; r < 3; ++r) {
                const int variant = 3 * trial + r;
                ks.push_back(std::array<int, 5>{40, 1, 256, 7, 100}[variant % 5]);
                for (float& x : rows[r]) {  // ties, NaN, infinities, signed zeros, spread values
                    const int c = kind(rng);
                    x = c == 0   ? NAN
                        : c == 1 ? -INFINITY
                        : c == 2 ? (variant % 2 ? -0.0f : 0.0f)
                        : c < 6  ? static_cast<float>(coarse(rng))
                                 : spread(rng);
                }
                if (variant == 4) std::fill(rows[r].begin(), rows[r].end(), NAN);
                // Distinct in-range ids, penalized both ways (positive and negative logits).
                for (int i = 0; i < std::min(n, 64); i += 1 + variant % 3)
                    ids[r].push_back(i * 7 % n);
                std::sort(ids[r].begin(), ids[r].end());
                ids[r].erase(std::unique(ids[r].begin(), ids[r].end()), ids[r].end());
                penalties.push_back(variant % 3 == 0 ? 1.0f : variant % 2 ? 1.3f : 0.7f);
            }
            const auto got_rows = kernels::cuda::device_top_k(rows, ks, ids, penalties);
            for (int r = 0; r < 3; ++r) {
                INFO("row " << r << " k " << ks[r]);
                std::vector<float> penalized = rows[r];
                for (int id : ids[r]) {
                    float& l = penalized[static_cast<std::size_t>(id)];
                    l = l > 0.0f ? l / penalties[r] : l * penalties[r];
                }
                std::vector<Candidate> expected;
                for (int i = 0; i < n; ++i)
                    if (!std::isnan(penalized[static_cast<std::size_t>(i)]))
                        expected.emplace_back(penalized[static_cast<std::size_t>(i)], i);
                std::sort(expected.begin(), expected.end(), better);
                if (expected.size() > static_cast<std::size_t>(ks[r]))
                    expected.resize(static_cast<std::size_t>(ks[r]));
                auto got = got_rows[r];
                std::sort(got.begin(), got.end(), better);
                REQUIRE(got.size() == expected.size());
                for (std::size_t i = 0; i < got.size(); ++i) {
                    CHECK(got[i].second == expected[i].second);
                    CHECK(std::memcmp(&got[i].first, &expected[i].first, sizeof(float)) == 0);
                }
            }
        }
    }
}

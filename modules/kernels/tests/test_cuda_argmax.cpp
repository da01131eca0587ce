// The device argmax behind GPU greedy decoding (gpu_layer_kernels.cu) against the host's rule:
// the first index of the largest value that is not NaN, -1 when all are NaN. Skipped without a
// GPU (CI); runs on the lent H100.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "../src/cuda/gpu_layer_kernels.hpp"
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

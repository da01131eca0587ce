#include "bitnet/inference/greedy.hpp"

#include <limits>

#include "bitnet/common/error.hpp"

namespace bitnet::inference {

// Two passes the compiler vectorizes (the plain loop, a compare and a dependent load per logit,
// took ~150 us of a 128k vocabulary: as long as a tenth of a GPU decode step): the largest value
// over independent lanes, then the first index holding it. `v > m ? v : m` never takes a NaN,
// and max is exact in any order, so the result is the plain loop's.
std::int32_t greedy_token(std::span<const float> logits) {
    constexpr std::size_t kLanes = 16;
    const float* p = logits.data();
    const std::size_t n = logits.size(), whole = n / kLanes * kLanes;
    float lane_max[kLanes];
    for (float& m : lane_max) m = -std::numeric_limits<float>::infinity();
    for (std::size_t i = 0; i < whole; i += kLanes)
        for (std::size_t j = 0; j < kLanes; ++j)
            lane_max[j] = p[i + j] > lane_max[j] ? p[i + j] : lane_max[j];
    float best = lane_max[0];
    for (float m : lane_max) best = m > best ? m : best;
    for (std::size_t i = whole; i < n; ++i) best = p[i] > best ? p[i] : best;
    // (when every logit is -inf or NaN, best stays -inf: the first -inf is the answer)
    for (std::size_t i = 0; i < whole; i += kLanes) {
        bool hit = false;
        for (std::size_t j = 0; j < kLanes; ++j) hit |= p[i + j] == best;
        if (hit)
            for (std::size_t j = 0;; ++j)
                if (p[i + j] == best) return static_cast<std::int32_t>(i + j);
    }
    for (std::size_t i = whole; i < n; ++i)
        if (p[i] == best) return static_cast<std::int32_t>(i);
    fail(ErrorCode::InvalidArgument, "greedy_token: no finite logits to choose from");
}

}  // namespace bitnet::inference

#include "bitnet/inference/greedy.hpp"

#include <cmath>

#include "bitnet/common/error.hpp"

namespace bitnet::inference {

std::int32_t greedy_token(std::span<const float> logits) {
    std::int32_t best = -1;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        if (std::isnan(logits[i])) continue;
        if (best < 0 || logits[i] > logits[static_cast<std::size_t>(best)])
            best = static_cast<std::int32_t>(i);
    }
    if (best < 0) fail(ErrorCode::InvalidArgument, "greedy_token: no finite logits to choose from");
    return best;
}

}  // namespace bitnet::inference

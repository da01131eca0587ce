#include "bitnet/inference/greedy.hpp"

#include "bitnet/common/error.hpp"
#include "bitnet/kernels/ops.hpp"

namespace bitnet::inference {

std::int32_t greedy_token(std::span<const float> logits) {
    const std::int64_t best =
        kernels::argmax_first(logits.data(), static_cast<std::int64_t>(logits.size()));
    if (best < 0) fail(ErrorCode::InvalidArgument, "greedy_token: no finite logits to choose from");
    return static_cast<std::int32_t>(best);
}

}  // namespace bitnet::inference

// The inference engine (KV cache, sampling, generation loop) arrives with issue 4. For now:
// greedy selection, the sampler every other sampler must reduce to at temperature 0.
#pragma once

#include <cstdint>
#include <span>

namespace bitnet::inference {

// Index of the largest logit; the lowest index wins ties (deterministic). Throws
// bitnet::Error(InvalidArgument) for an empty span or when every logit is NaN.
std::int32_t greedy_token(std::span<const float> logits);

}  // namespace bitnet::inference

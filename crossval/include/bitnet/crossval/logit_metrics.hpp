// Cross-validation compares two engines' logits (issue 7 builds the full report). For now:
// the similarity metrics every comparison uses.
#pragma once

#include <span>

namespace bitnet::crossval {

// cos(a, b) in double precision; throws bitnet::Error for size mismatch or empty input.
double cosine_similarity(std::span<const float> a, std::span<const float> b);
// ||a - b|| / ||b||; throws like cosine_similarity.
double relative_l2(std::span<const float> a, std::span<const float> reference);

}  // namespace bitnet::crossval

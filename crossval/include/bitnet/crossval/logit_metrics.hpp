// Metrics that compare two engines' logits for the same tokens: per position and overall.
// These are what cross-validation reports and what its checks threshold.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace bitnet::crossval {

// cos(a, b) in double precision; throws bitnet::Error for size mismatch or empty input.
double cosine_similarity(std::span<const float> a, std::span<const float> b);
// ||a - b|| / ||b||; throws like cosine_similarity.
double relative_l2(std::span<const float> a, std::span<const float> reference);

struct PositionMetrics {
    double cosine = 0;
    double relative_l2 = 0;
    double max_abs_diff = 0;
    double pearson = 0;
    bool top1_agree = false;
    double top5_overlap = 0;      // |top5(ours) ∩ top5(reference)| / 5
    double kl_divergence = 0;     // KL(softmax(reference) || softmax(ours)), nats
    double reference_margin = 0;  // reference's top-1 minus top-2 logit
    std::int32_t top1 = -1, reference_top1 = -1;
};

PositionMetrics compare_position(std::span<const float> ours, std::span<const float> reference);

}  // namespace bitnet::crossval

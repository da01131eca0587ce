// A cross-validation report: per-position metrics of our logits against a reference, pass/fail
// checks against documented tolerances, and greedy-token agreement. Rendered as JSON and as a
// short human summary.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bitnet/crossval/logit_metrics.hpp"

namespace bitnet::crossval {

// Defaults follow BITNET_MODEL.md "What correct means".
struct Tolerances {
    double min_cosine = 0.999;         // every position
    double max_relative_l2 = 1e-3;     // every position (our fast path vs our reference: 1e-3)
    double top1_margin = 1e-2;         // top-1 must agree where the reference's margin exceeds this
    bool require_greedy_match = true;  // greedy tokens identical
};

// Tolerances for comparing our fast path with our own reference backend.
Tolerances same_engine_tolerances();
// Tolerances for comparing with another engine (cosine and top-1 only; no relative-L2 bound).
Tolerances external_tolerances();

struct Check {
    std::string name;
    bool passed;
    std::string detail;
};

struct Report {
    std::string label;
    std::vector<std::int64_t> positions;
    std::vector<PositionMetrics> metrics;
    std::vector<Check> checks;
    std::int64_t first_failing_position = -1;
    std::int64_t greedy_steps = 0;
    std::int64_t first_greedy_divergence = -1;
    bool passed() const;
    nlohmann::json to_json() const;
    std::string summary() const;
};

// Compares rows of logits (row i belongs to token position positions[i]).
Report compare_logits(const std::string& label, const std::vector<std::int64_t>& positions,
                      const std::vector<float>& ours, const std::vector<float>& reference,
                      std::int64_t n_vocab, const Tolerances& tolerances);
// Adds the greedy-continuation check (the shorter sequence decides how many steps count).
void add_greedy_check(Report& report, const std::vector<std::int32_t>& ours,
                      const std::vector<std::int32_t>& reference, const Tolerances& tolerances);

}  // namespace bitnet::crossval

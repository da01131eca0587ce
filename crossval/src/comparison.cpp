#include "bitnet/crossval/comparison.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <span>
#include <sstream>

#include "bitnet/common/error.hpp"

namespace bitnet::crossval {
namespace {
// Number formatting for the report: `digits` significant digits, or `fixed` decimals.
std::string num(double v, int digits, bool fixed = false) {
    std::ostringstream s;
    if (fixed) s << std::fixed;
    s << std::setprecision(digits) << v;
    return s.str();
}
}  // namespace

Tolerances same_engine_tolerances() {
    return {};
}

Tolerances external_tolerances() {
    Tolerances t;
    t.max_relative_l2 = INFINITY;
    return t;
}

bool Report::passed() const {
    return std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.passed; });
}

Report compare_logits(const std::string& label, const std::vector<std::int64_t>& positions,
                      const std::vector<float>& ours, const std::vector<float>& reference,
                      std::int64_t n_vocab, const Tolerances& t) {
    const std::size_t n = positions.size(), v = static_cast<std::size_t>(n_vocab);
    if (ours.size() != n * v || reference.size() != n * v)
        fail(ErrorCode::InvalidArgument,
             "compare_logits: sizes do not match positions x vocabulary");
    Report r;
    r.label = label;
    r.positions = positions;
    double min_cos = 1.0, max_l2 = 0.0;
    std::int64_t top1_required = 0, top1_agreed = 0, first_cos = -1, first_l2 = -1, first_top1 = -1;
    for (std::size_t i = 0; i < n; ++i) {
        const PositionMetrics m =
            compare_position(std::span<const float>(ours.data() + i * v, v),
                             std::span<const float>(reference.data() + i * v, v));
        r.metrics.push_back(m);
        min_cos = std::min(min_cos, m.cosine);
        max_l2 = std::max(max_l2, m.relative_l2);
        if (m.cosine < t.min_cosine && first_cos < 0) first_cos = positions[i];
        if (m.relative_l2 > t.max_relative_l2 && first_l2 < 0) first_l2 = positions[i];
        if (m.reference_margin > t.top1_margin) {
            ++top1_required;
            if (m.top1_agree)
                ++top1_agreed;
            else if (first_top1 < 0)
                first_top1 = positions[i];
        }
    }
    auto where = [](std::int64_t p) {
        return p < 0 ? std::string() : ", first failing position " + std::to_string(p);
    };
    r.checks.push_back({"cosine >= " + num(t.min_cosine, 6), first_cos < 0,
                        "min " + num(min_cos, 7, true) + where(first_cos)});
    if (std::isfinite(t.max_relative_l2))
        r.checks.push_back({"relative L2 <= " + num(t.max_relative_l2, 6), first_l2 < 0,
                            "max " + num(max_l2, 3) + where(first_l2)});
    r.checks.push_back(
        {"top-1 agreement where the margin > " + num(t.top1_margin, 6), first_top1 < 0,
         std::to_string(top1_agreed) + "/" + std::to_string(top1_required) + where(first_top1)});
    for (std::int64_t p : {first_cos, first_l2, first_top1})
        if (p >= 0 && (r.first_failing_position < 0 || p < r.first_failing_position))
            r.first_failing_position = p;
    return r;
}

void add_greedy_check(Report& r, const std::vector<std::int32_t>& ours,
                      const std::vector<std::int32_t>& reference, const Tolerances& t) {
    const std::size_t steps = std::min(ours.size(), reference.size());
    r.greedy_steps = static_cast<std::int64_t>(steps);
    for (std::size_t i = 0; i < steps; ++i)
        if (ours[i] != reference[i]) {
            r.first_greedy_divergence = static_cast<std::int64_t>(i);
            break;
        }
    const bool same = r.first_greedy_divergence < 0 && ours.size() == reference.size();
    r.checks.push_back(
        {"greedy tokens identical", same || !t.require_greedy_match,
         same ? std::to_string(steps) + "/" + std::to_string(steps) + " steps"
              : "first divergence at step " + std::to_string(r.first_greedy_divergence < 0
                                                                 ? static_cast<std::int64_t>(steps)
                                                                 : r.first_greedy_divergence)});
}

nlohmann::json Report::to_json() const {
    nlohmann::json j = {{"label", label},
                        {"passed", passed()},
                        {"first_failing_position", first_failing_position},
                        {"greedy_steps", greedy_steps},
                        {"first_greedy_divergence", first_greedy_divergence}};
    j["checks"] = nlohmann::json::array();
    for (const auto& c : checks)
        j["checks"].push_back({{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}});
    j["positions"] = nlohmann::json::array();
    for (std::size_t i = 0; i < metrics.size(); ++i) {
        const auto& m = metrics[i];
        j["positions"].push_back({{"position", positions[i]},
                                  {"cosine", m.cosine},
                                  {"relative_l2", m.relative_l2},
                                  {"max_abs_diff", m.max_abs_diff},
                                  {"pearson", m.pearson},
                                  {"top1", m.top1},
                                  {"reference_top1", m.reference_top1},
                                  {"top1_agree", m.top1_agree},
                                  {"top5_overlap", m.top5_overlap},
                                  {"kl_divergence", m.kl_divergence},
                                  {"reference_margin", m.reference_margin}});
    }
    return j;
}

std::string Report::summary() const {
    std::string s = label + ": " + (passed() ? "PASS" : "FAIL") + "\n";
    for (const auto& c : checks)
        s += std::string("  [") + (c.passed ? "pass" : "FAIL") + "] " + c.name + ": " + c.detail +
             "\n";
    if (!metrics.empty()) {
        double kl = 0, pearson = 1, top5 = 0, max_abs = 0;
        for (const auto& m : metrics) {
            kl = std::max(kl, m.kl_divergence);
            pearson = std::min(pearson, m.pearson);
            top5 += m.top5_overlap;
            max_abs = std::max(max_abs, m.max_abs_diff);
        }
        s += "  positions " + std::to_string(metrics.size()) + ", max |diff| " + num(max_abs, 3) +
             ", min Pearson " + num(pearson, 7, true) + ", mean top-5 overlap " +
             num(top5 / static_cast<double>(metrics.size()), 3, true) + ", max KL " + num(kl, 3) +
             " nats\n";
    }
    return s;
}

}  // namespace bitnet::crossval

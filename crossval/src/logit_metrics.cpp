#include "bitnet/crossval/logit_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "bitnet/common/error.hpp"

namespace bitnet::crossval {
namespace {

void check_sizes(std::span<const float> a, std::span<const float> b) {
    if (a.empty() || a.size() != b.size())
        fail(ErrorCode::InvalidArgument, "logit vectors must be non-empty and equal in size (" +
                                             std::to_string(a.size()) + " vs " +
                                             std::to_string(b.size()) + ")");
}

std::vector<std::int32_t> top_k(std::span<const float> x, std::size_t k) {
    std::vector<std::int32_t> idx(x.size());
    std::iota(idx.begin(), idx.end(), 0);
    k = std::min(k, x.size());
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(),
                      [&x](std::int32_t a, std::int32_t b) {
                          return x[static_cast<std::size_t>(a)] != x[static_cast<std::size_t>(b)]
                                     ? x[static_cast<std::size_t>(a)] >
                                           x[static_cast<std::size_t>(b)]
                                     : a < b;
                      });
    idx.resize(k);
    return idx;
}

// log-softmax in double
std::vector<double> log_softmax(std::span<const float> x) {
    const double max = *std::max_element(x.begin(), x.end());
    double sum = 0;
    for (float v : x) sum += std::exp(static_cast<double>(v) - max);
    const double log_z = max + std::log(sum);
    std::vector<double> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = static_cast<double>(x[i]) - log_z;
    return out;
}

}  // namespace

double cosine_similarity(std::span<const float> a, std::span<const float> b) {
    check_sizes(a, b);
    double dot = 0, na = 0, nb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        dot += static_cast<double>(a[i]) * b[i];
        na += static_cast<double>(a[i]) * a[i];
        nb += static_cast<double>(b[i]) * b[i];
    }
    if (na == 0 || nb == 0) return na == nb ? 1.0 : 0.0;
    return dot / std::sqrt(na * nb);
}

double relative_l2(std::span<const float> a, std::span<const float> reference) {
    check_sizes(a, reference);
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = static_cast<double>(a[i]) - reference[i];
        diff += d * d;
        norm += static_cast<double>(reference[i]) * reference[i];
    }
    return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

PositionMetrics compare_position(std::span<const float> ours, std::span<const float> reference) {
    check_sizes(ours, reference);
    PositionMetrics m;
    m.cosine = cosine_similarity(ours, reference);
    m.relative_l2 = relative_l2(ours, reference);
    double mean_a = 0, mean_b = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        m.max_abs_diff =
            std::max(m.max_abs_diff, std::fabs(static_cast<double>(ours[i]) - reference[i]));
        mean_a += ours[i];
        mean_b += reference[i];
    }
    mean_a /= static_cast<double>(ours.size());
    mean_b /= static_cast<double>(ours.size());
    double cov = 0, va = 0, vb = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        const double da = ours[i] - mean_a, db = reference[i] - mean_b;
        cov += da * db;
        va += da * da;
        vb += db * db;
    }
    m.pearson = (va == 0 || vb == 0) ? (va == vb ? 1.0 : 0.0) : cov / std::sqrt(va * vb);
    const auto top_ours = top_k(ours, 5), top_ref = top_k(reference, 5);
    m.top1 = top_ours[0];
    m.reference_top1 = top_ref[0];
    m.top1_agree = m.top1 == m.reference_top1;
    int overlap = 0;
    for (auto id : top_ours) overlap += std::count(top_ref.begin(), top_ref.end(), id) > 0;
    m.top5_overlap = overlap / static_cast<double>(top_ours.size());
    if (top_ref.size() > 1)
        m.reference_margin = static_cast<double>(reference[static_cast<std::size_t>(top_ref[0])]) -
                             reference[static_cast<std::size_t>(top_ref[1])];
    const auto lp = log_softmax(reference), lq = log_softmax(ours);
    for (std::size_t i = 0; i < lp.size(); ++i)
        m.kl_divergence += std::exp(lp[i]) * (lp[i] - lq[i]);
    return m;
}

}  // namespace bitnet::crossval

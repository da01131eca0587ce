#include "bitnet/crossval/logit_metrics.hpp"

#include <cmath>
#include <string>

#include "bitnet/common/error.hpp"

namespace bitnet::crossval {
namespace {
void check_sizes(std::span<const float> a, std::span<const float> b) {
    if (a.empty() || a.size() != b.size())
        fail(ErrorCode::InvalidArgument, "logit vectors must be non-empty and equal in size (" +
                                             std::to_string(a.size()) + " vs " + std::to_string(b.size()) + ")");
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

}  // namespace bitnet::crossval

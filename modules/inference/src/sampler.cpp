#include "bitnet/inference/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

#include "bitnet/common/error.hpp"
#include "bitnet/inference/greedy.hpp"

namespace bitnet::inference {

void SamplingParams::validate() const {
    auto bad = [](const std::string& what) { fail(ErrorCode::InvalidArgument, what); };
    if (!(temperature >= 0.0f) || !std::isfinite(temperature))
        bad("--temp must be a finite number >= 0 (0 = greedy); got " + std::to_string(temperature));
    if (!(top_p > 0.0f && top_p <= 1.0f))
        bad("--top-p must be in (0, 1]; got " + std::to_string(top_p));
    if (!(min_p >= 0.0f && min_p <= 1.0f))
        bad("--min-p must be in [0, 1]; got " + std::to_string(min_p));
    if (!(repeat_penalty > 0.0f) || !std::isfinite(repeat_penalty))
        bad("--repeat-penalty must be a finite number > 0 (1 = off); got " +
            std::to_string(repeat_penalty));
    if (repeat_last_n < 0)
        bad("--repeat-last-n must be >= 0; got " + std::to_string(repeat_last_n));
}

Rng::Rng(std::uint64_t seed) {
    for (auto& s : s_) {
        std::uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        s = z ^ (z >> 31);
    }
}

std::uint64_t Rng::next() {
    auto rotl = [](std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

double Rng::uniform() {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
    params_.validate();
}

std::int32_t Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> history) {
    if (params_.is_greedy()) return greedy_token(logits);

    penalized_.assign(logits.begin(), logits.end());
    if (params_.repeat_penalty != 1.0f && params_.repeat_last_n > 0) {
        const std::size_t from =
            history.size() > static_cast<std::size_t>(params_.repeat_last_n)
                ? history.size() - static_cast<std::size_t>(params_.repeat_last_n)
                : 0;
        std::unordered_set<std::int32_t> seen(history.begin() + static_cast<std::ptrdiff_t>(from),
                                              history.end());
        for (std::int32_t id : seen) {
            if (id < 0 || static_cast<std::size_t>(id) >= penalized_.size()) continue;
            float& l = penalized_[static_cast<std::size_t>(id)];
            l = l > 0.0f ? l / params_.repeat_penalty : l * params_.repeat_penalty;
        }
    }

    candidates_.clear();
    for (std::size_t i = 0; i < penalized_.size(); ++i)
        if (!std::isnan(penalized_[i]))
            candidates_.emplace_back(penalized_[i], static_cast<std::int32_t>(i));
    if (candidates_.empty()) fail(ErrorCode::InvalidArgument, "all logits are NaN");
    // Highest logit first; equal logits by lower id (deterministic).
    auto better = [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    };
    std::size_t keep = candidates_.size();
    if (params_.top_k > 0 && static_cast<std::size_t>(params_.top_k) < keep)
        keep = static_cast<std::size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep),
                      candidates_.end(), better);
    candidates_.resize(keep);

    // Probabilities at temperature 1 for the top-p / min-p filters.
    const float max_logit = candidates_.front().first;
    std::vector<double> probs(candidates_.size());
    double total = 0.0;
    for (std::size_t i = 0; i < candidates_.size(); ++i)
        total += probs[i] = std::exp(static_cast<double>(candidates_[i].first - max_logit));
    std::size_t n = candidates_.size();
    if (params_.top_p < 1.0f) {
        double cumulative = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            cumulative += probs[i] / total;
            if (cumulative >= params_.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (params_.min_p > 0.0f) {
        const double threshold = params_.min_p * (probs[0] / total);
        std::size_t m = 1;
        while (m < n && probs[m] / total >= threshold) ++m;
        n = m;
    }

    // Temperature, then one draw.
    double sum = 0.0;
    std::vector<double> weights(n);
    for (std::size_t i = 0; i < n; ++i)
        sum += weights[i] =
            std::exp(static_cast<double>(candidates_[i].first - max_logit) / params_.temperature);
    const double r = rng_.uniform() * sum;
    double acc = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        acc += weights[i];
        if (r < acc) return candidates_[i].second;
    }
    return candidates_[n - 1].second;
}

}  // namespace bitnet::inference

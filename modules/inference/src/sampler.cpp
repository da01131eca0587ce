#include "bitnet/inference/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "bitnet/common/error.hpp"
#include "bitnet/inference/greedy.hpp"
#include "bitnet/kernels/top_k.hpp"

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

using kernels::better;

void Sampler::select_candidates(std::span<const float> logits,
                                std::span<const std::int32_t> history) {
    // The penalized tokens' values, kept aside (the logits are not copied: a 128k vocabulary is
    // half a megabyte per token).
    penalized_.clear();
    for (const std::int32_t id : penalized_ids(history, logits.size())) {
        const float l = logits[static_cast<std::size_t>(id)];
        penalized_.emplace_back(kernels::apply_repeat_penalty(l, params_.repeat_penalty), id);
    }
    if (params_.top_k > 0 && static_cast<std::size_t>(params_.top_k) < logits.size()) {
        select_top_k(logits, static_cast<std::size_t>(params_.top_k));
    } else {
        candidates_.clear();
        std::size_t next_penalized = 0;
        for (std::size_t i = 0; i < logits.size(); ++i) {
            float l = logits[i];
            if (next_penalized < penalized_.size() &&
                penalized_[next_penalized].second == static_cast<std::int32_t>(i))
                l = penalized_[next_penalized++].first;
            if (!std::isnan(l)) candidates_.emplace_back(l, static_cast<std::int32_t>(i));
        }
        std::sort(candidates_.begin(), candidates_.end(), better);
    }
    if (candidates_.empty()) fail(ErrorCode::InvalidArgument, "all logits are NaN");
}

void Sampler::select_top_k(std::span<const float> logits, std::size_t k) {
    // Once the heap of the best k is full, a logit below its worst cannot enter (NaN never
    // does: every comparison with it fails), which blocks of 16 check at once.
    kernels::TopKHeap best(k, candidates_);
    constexpr std::size_t kBlock = 16;
    auto scan = [&](std::size_t from, std::size_t to) {  // ids without a penalty
        std::size_t i = from;
        for (; i < to && !best.full(); ++i) best.offer(logits[i], static_cast<std::int32_t>(i));
        for (; i + kBlock <= to; i += kBlock) {
            const float worst = best.worst();
            bool any = false;
            for (std::size_t j = 0; j < kBlock; ++j) any |= logits[i + j] >= worst;
            if (any)
                for (std::size_t j = 0; j < kBlock; ++j)
                    best.offer(logits[i + j], static_cast<std::int32_t>(i + j));
        }
        for (; i < to; ++i) best.offer(logits[i], static_cast<std::int32_t>(i));
    };
    std::size_t from = 0;
    for (const Candidate& p : penalized_) {
        scan(from, static_cast<std::size_t>(p.second));
        best.offer(p.first, p.second);
        from = static_cast<std::size_t>(p.second) + 1;
    }
    scan(from, logits.size());
    std::sort(candidates_.begin(), candidates_.end(), better);
}

std::vector<std::int32_t> Sampler::penalized_ids(std::span<const std::int32_t> history,
                                                 std::size_t vocab) const {
    std::vector<std::int32_t> ids;
    if (params_.repeat_penalty == 1.0f || params_.repeat_last_n <= 0) return ids;
    const std::size_t from = history.size() > static_cast<std::size_t>(params_.repeat_last_n)
                                 ? history.size() - static_cast<std::size_t>(params_.repeat_last_n)
                                 : 0;
    for (std::size_t i = from; i < history.size(); ++i)
        if (history[i] >= 0 && static_cast<std::size_t>(history[i]) < vocab)
            ids.push_back(history[i]);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

std::int32_t Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> history) {
    if (params_.is_greedy()) return greedy_token(logits);
    select_candidates(logits, history);
    return draw();
}

std::int32_t Sampler::sample_candidates(std::span<const Candidate> top_k) {
    candidates_.assign(top_k.begin(), top_k.end());
    if (candidates_.empty()) fail(ErrorCode::InvalidArgument, "all logits are NaN");
    std::sort(candidates_.begin(), candidates_.end(), better);
    return draw();
}

std::int32_t Sampler::draw() {
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

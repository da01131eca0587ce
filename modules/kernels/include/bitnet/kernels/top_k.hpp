// The sampler's top-k rule, shared by the sampler (inference) and the backends that select the
// candidates themselves (Backend::matmul_top_k): one definition of the penalty, the order and
// the bounded heap, so that both pick the same rows with the same values.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace bitnet::kernels {

using ScoredRow = std::pair<float, std::int32_t>;  // (value after the penalty, row)

// The top-k rule over one row of logits: the k largest values after the repetition penalty,
// NaN excluded, equal values ordered by the lower id.
struct TopKRule {
    int k = 40;
    float repeat_penalty = 1.0f;
    std::span<const std::int32_t> penalized;  // ascending, distinct
};

// The repetition penalty of a penalized id's value v: v / penalty when v > 0, else v * penalty.
// Non-decreasing in v for penalty > 0, so it maps bounds of v to bounds of the result.
inline float apply_repeat_penalty(float v, float penalty) {
    return v > 0.0f ? v / penalty : v * penalty;
}

// Higher value first, then the lower row: a strict total order on rows with distinct ids.
inline bool better(const ScoredRow& a, const ScoredRow& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
}

// The best `k` rows offered so far, in `rows` (a heap under `better`: its front is the worst of
// them). NaN values are never kept.
class TopKHeap {
  public:
    TopKHeap(std::size_t k, std::vector<ScoredRow>& rows) : k_(k), rows_(rows) { rows_.clear(); }
    bool full() const { return rows_.size() >= k_; }
    // The worst value kept (when full(): nothing below it can enter).
    float worst() const { return rows_.front().first; }
    void offer(float value, std::int32_t row) {
        if (value != value || k_ == 0) return;
        if (rows_.size() < k_) {
            rows_.emplace_back(value, row);
            std::push_heap(rows_.begin(), rows_.end(), better);
        } else if (better({value, row}, rows_.front())) {
            std::pop_heap(rows_.begin(), rows_.end(), better);
            rows_.back() = {value, row};
            std::push_heap(rows_.begin(), rows_.end(), better);
        }
    }

  private:
    std::size_t k_;
    std::vector<ScoredRow>& rows_;
};

}  // namespace bitnet::kernels

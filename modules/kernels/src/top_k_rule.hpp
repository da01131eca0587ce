// TopKRule's pieces (internal), shared by Backend's default matmul_top_k and the CPU's screened
// one: the penalty and a bounded heap of the best rows.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "bitnet/kernels/backend.hpp"

namespace bitnet::kernels::detail {

// The repetition penalty of a penalized id's value (the sampler's expression). Non-decreasing in
// v for penalty > 0, so it maps bounds of v to bounds of the result.
inline float apply_repeat_penalty(float v, float penalty) {
    return v > 0.0f ? v / penalty : v * penalty;
}

// Higher value first, then the lower row.
inline bool better(const ScoredRow& a, const ScoredRow& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
}

// The best `k` rows offered so far in `rows` (a heap under `better`: its front is the worst of
// them). NaN values are never kept.
class TopKHeap {
  public:
    TopKHeap(std::size_t k, std::vector<ScoredRow>& rows) : k_(k), rows_(rows) { rows_.clear(); }
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

}  // namespace bitnet::kernels::detail

// Backend's default implementations that need more than the header's one-liners.
#include "bitnet/kernels/backend.hpp"

#include <algorithm>
#include <vector>

#include "bitnet/kernels/ops.hpp"

namespace bitnet::kernels {

void Backend::matmul_gate_relu_squared_up(const WeightView& gate, float gate_scale,
                                          const WeightView& up, float up_scale, const float* x,
                                          std::int64_t n_rows, float* y) const {
    std::vector<float> u(static_cast<std::size_t>(n_rows * up.rows));
    const MatmulJob jobs[] = {{&gate, y}, {&up, u.data()}};
    matmul_many(jobs, x, n_rows);
    const std::int64_t n = n_rows * gate.rows;
    for (std::int64_t i = 0; i < n; ++i) {
        float g = y[i], v = u[static_cast<std::size_t>(i)];
        if (gate_scale != 1.0f) g *= gate_scale;
        if (up_scale != 1.0f) v *= up_scale;
        y[i] = relu_squared_times(g, v);
    }
}

std::int32_t Backend::matmul_argmax(const WeightView& w, const float* x) const {
    thread_local std::vector<float> y;  // (kept: decode allocates nothing per token)
    y.resize(static_cast<std::size_t>(w.rows));
    matmul(w, x, 1, y.data());
    return static_cast<std::int32_t>(argmax_first(y.data(), w.rows));
}

void Backend::matmul_top_k(const WeightView& w, const float* x, const TopKRule& rule,
                           std::vector<ScoredRow>& out) const {
    thread_local std::vector<float> y;
    y.resize(static_cast<std::size_t>(w.rows));
    matmul(w, x, 1, y.data());
    for (const std::int32_t id : rule.penalized)
        if (id >= 0 && id < w.rows)
            y[static_cast<std::size_t>(id)] =
                apply_repeat_penalty(y[static_cast<std::size_t>(id)], rule.repeat_penalty);
    TopKHeap best(static_cast<std::size_t>(std::max(0, rule.k)), out);
    for (std::size_t i = 0; i < y.size(); ++i) best.offer(y[i], static_cast<std::int32_t>(i));
}

}  // namespace bitnet::kernels

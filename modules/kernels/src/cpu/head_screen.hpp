// The CPU's screening head (internal): an int8 copy of an F16 matrix (the output head) whose
// integer dots bound the F16 kernels' own float results, so that a greedy or top-k choice reads
// one byte per weight instead of two and computes exactly, from the F16 rows, only the rows
// whose bounds reach the best. The same rules as the GPU's (cuda/head_screen.hpp):
//  - per row r: scale = max|w| / 127, codes q = round(w / scale), and slack >= the largest
//    |w - q * scale| plus 3 * cols * 2^-24 * max|w| (more than the F16 kernels' float sums can
//    lose: their longest chain of roundings is far shorter than cols), rounded up;
//  - per input: the F16-rounded activations x as int16 codes k with x ~ step * k, their largest
//    error e = max |x - step * k| and ||x||_1;
//  - then the F16 kernels' result for row r lies within
//      scale * step * sum(q k)  +-  (scale * e * sum|q| + slack * ||x||_1)
//    which is computed in double and rounded outwards.
// A row whose upper bound is below the largest lower bound cannot hold the largest value nor tie
// it; on the 2b4t head 1 to 72 of 128,256 rows remain (docs/performance.md).
#pragma once

#include "huge_page_bytes.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace bitnet::kernels::detail {

enum class ScreenKernel { Scalar, Avx2, Avx512 };
bool screen_kernel_supported(ScreenKernel kernel);
ScreenKernel best_screen_kernel();

// The largest |k| of the int16 input for which no int32 lane of screen_dots can overflow on rows
// of `stride` codes (each lane sums at most stride / 16 products).
std::int32_t screen_input_limit(std::int64_t stride);

// dots[i] = sum_j rows[i * stride + j] * x[j] over j < stride (exact integers): `stride` a
// multiple of 64, |x| <= screen_input_limit(stride). Rows are asked for `prefetch` bytes ahead.
void screen_dots(ScreenKernel kernel, const std::int8_t* rows, std::int64_t stride,
                 std::int64_t count, const std::int16_t* x, int prefetch, std::int64_t* dots);

// A row's interval for the F16 kernels' float result (lower = -inf, upper = +inf for rows with
// non-finite weights, which screening cannot bound).
struct RowBounds {
    float lower, upper;
};

class ScreenedHead {
  public:
    // The int8 rows of the F16 matrix `w` (rows x cols, row-major), made on `threads` threads.
    ScreenedHead(const std::uint16_t* w, std::int64_t rows, std::int64_t cols, int threads);

    std::int64_t rows() const { return rows_; }
    std::int64_t cols() const { return cols_; }
    std::uint64_t bytes() const;

    // Every row's bounds for input x (cols values already rounded to F16, the F16 kernels'
    // input) into bounds(); returns the largest lower bound, or NaN when x is zero or not finite
    // (then nothing can be bounded).
    float compute_bounds(const float* x, ScreenKernel kernel, int threads, int prefetch) const;
    const std::vector<RowBounds>& bounds() const { return bounds_; }

    // After compute_bounds: the bounds of `ids` through the repetition penalty
    // (apply_repeat_penalty, non-decreasing: bounds of a value are mapped to bounds of its
    // penalized value).
    void penalize_bounds(std::span<const std::int32_t> ids, float penalty) const;
    // The k-th largest lower bound (-inf when k >= rows or k == 0).
    float kth_largest_lower(std::size_t k) const;
    // The rows whose upper bound reaches `threshold`, ascending.
    void rows_reaching(float threshold, std::vector<std::int32_t>& out) const;

  private:
    std::int64_t rows_ = 0, cols_ = 0, stride_ = 0;  // stride: cols rounded up to 64
    std::int8_t* codes() { return reinterpret_cast<std::int8_t*>(codes_.data()); }
    const std::int8_t* codes() const { return reinterpret_cast<const std::int8_t*>(codes_.data()); }
    HugePageBytes codes_;  // rows x stride int8, zero padded
    std::vector<float> scale_, slack_;
    std::vector<std::int32_t> abs_code_sum_;
    // Per call (kept to allocate nothing per token).
    mutable std::vector<std::int16_t> input_;
    mutable std::vector<RowBounds> bounds_;
    mutable std::vector<float> lowest_of_best_;  // kth_largest_lower's heap
};

}  // namespace bitnet::kernels::detail

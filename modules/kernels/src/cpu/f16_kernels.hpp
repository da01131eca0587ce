// The F16 GEMV's row dots (internal): one row, or two rows streamed together, with F16C + FMA.
// Both give the same bits for a row (the same operations in the same order), so a row's value
// does not depend on which of them computed it — the screening head (head_screen.hpp) computes
// its candidates one by one and must get what the full head's row pairs get.
#pragma once

#include <cstdint>

namespace bitnet::kernels::detail {

// F16 row . f32 vector (the vector already rounded to half precision). The row's lines are asked
// for `prefetch` bytes ahead (head_prefetch_bytes).
float dot_f16_f16c(const std::uint16_t* w, const float* x, std::int64_t n, int prefetch);

// Two rows at once, each with dot_f16_f16c's operations in its order (the same bits): two
// streams of weights per thread keep more lines in flight than one — on the Zen 3 VM the F16
// head streamed 29.7 GB/s instead of 23.5 (in-process alternation). Each vector of x serves both
// rows.
void dot_f16_f16c_pair(const std::uint16_t* wa, const std::uint16_t* wb, const float* x,
                       std::int64_t n, int prefetch, float* ya, float* yb);

}  // namespace bitnet::kernels::detail

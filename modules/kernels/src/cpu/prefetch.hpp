// How far ahead of its loads a decode (one token) GEMV asks for weight lines with a software
// prefetch. A core's hardware prefetcher alone keeps too few misses in flight on these streams:
// on the 2-core VM the F16 head went 7.6 -> 12.8 GB/s on 1 thread, 18 -> 22-25 GB/s on 2
// (kernels_bench; docs/performance.md). Prefetches never fault, so reading past a matrix's end
// is harmless.
#pragma once

namespace bitnet::kernels::detail {

constexpr int kPrefetchBytes = 4096;

}  // namespace bitnet::kernels::detail

// Measures the machine's memory read bandwidth (the floor for decode, which streams every
// weight once per token): a multi-threaded read of a buffer much larger than the caches.
#pragma once

#include <cstdint>

namespace bitnet::kernels {

// Best of `repeats` full reads of a `bytes`-sized buffer with `threads` threads, in GB/s; each
// repeat reads with and without software prefetch (the faster counts: what the machine streams).
double measure_read_bandwidth_gbs(int threads, std::uint64_t bytes = 512ull << 20, int repeats = 3);

}  // namespace bitnet::kernels

// How far ahead of its loads a decode (one token) GEMV asks for weight lines with a software
// prefetch. A core's hardware prefetcher alone keeps too few misses in flight on these streams:
// on the 2-core VM the F16 head went 7.6 -> 12.8 GB/s on 1 thread, 18 -> 22-25 GB/s on 2
// (kernels_bench; docs/performance.md). Prefetches never fault, so reading past a matrix's end
// is harmless.
#pragma once

namespace bitnet::kernels::detail {

constexpr int kPrefetchBytes = 4096;

// The head GEMVs (F16, Q8_0) take a line in a few cycles, several times faster than the ternary
// kernels, and how far ahead they should ask depends on the core. On AMD Zen 3 (the 2-core VM)
// 1 kB ahead streamed the F16 head 15% faster than 4 kB (every one of 8 rounds) and decoded
// 2b4t 10.8% faster end to end (6 alternations; --head q8_0 +6%); on the Intel Xeon host 1 kB
// decoded 16% slower (4 alternations) — there 4 kB stays. (The ternary kernels measured alike
// at 1, 2, 4 and 8 kB on Zen 3.)
constexpr int kNearPrefetchBytes = 1024;

// The head GEMVs' distance for a CPU vendor (cpuid's vendor string).
constexpr int head_prefetch_bytes(bool amd) {
    return amd ? kNearPrefetchBytes : kPrefetchBytes;
}

}  // namespace bitnet::kernels::detail

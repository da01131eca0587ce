#include "bitnet/kernels/memory_bandwidth.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/common/error.hpp"
#include "huge_page_bytes.hpp"
#include "prefetch.hpp"

namespace bitnet::kernels {
namespace {

constexpr std::uint64_t kChunk = 4096;

// Each repeat reads the buffer four times: asking for lines kPrefetchBytes ahead as the decode
// kernels do, and leaving it to the hardware prefetchers; each with one stream per thread and
// with two (a chunk and the one half a thread's share later, read together, as the decode
// kernels read two rows). The floor is the fastest — what the machine can stream: on the Intel
// VM one core reached 7.6 GB/s without the prefetch and 12.8 with it; on the AMD (Zen 3) VM, from
// huge pages, 2 threads read 24-25 GB/s without and 21-22 with it, and the decode kernels with
// two streams per thread went past the one-stream reads. Taking one of them alone would put the
// kernels above their own "floor" on one machine or flatter them on another.

template <bool Prefetch>
__attribute__((target("avx2"))) std::uint64_t sum_chunk_avx2(const std::uint8_t* p) {
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    const auto* v = reinterpret_cast<const __m256i*>(p);
    for (std::uint64_t i = 0; i < kChunk / 32; i += 2) {
        if constexpr (Prefetch)
            _mm_prefetch(reinterpret_cast<const char*>(v + i) + detail::kPrefetchBytes,
                         _MM_HINT_T0);
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(v + i));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(v + i + 1));
    }
    a0 = _mm256_add_epi64(a0, a1);
    return static_cast<std::uint64_t>(_mm256_extract_epi64(a0, 0));
}

// Two chunks read together.
template <bool Prefetch>
__attribute__((target("avx2"))) std::uint64_t sum_chunk_pair_avx2(const std::uint8_t* p,
                                                                  const std::uint8_t* q) {
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    const auto* v = reinterpret_cast<const __m256i*>(p);
    const auto* u = reinterpret_cast<const __m256i*>(q);
    for (std::uint64_t i = 0; i < kChunk / 32; ++i) {
        if (Prefetch && i % 2 == 0) {
            _mm_prefetch(reinterpret_cast<const char*>(v + i) + detail::kPrefetchBytes,
                         _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(u + i) + detail::kPrefetchBytes,
                         _MM_HINT_T0);
        }
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(v + i));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(u + i));
    }
    a0 = _mm256_add_epi64(a0, a1);
    return static_cast<std::uint64_t>(_mm256_extract_epi64(a0, 0));
}

template <bool Prefetch>
std::uint64_t sum_chunk_scalar(const std::uint8_t* p) {
    std::uint64_t s = 0, x;
    for (std::uint64_t i = 0; i < kChunk; i += 8) {
        if (Prefetch && i % 64 == 0)
            _mm_prefetch(reinterpret_cast<const char*>(p + i) + detail::kPrefetchBytes,
                         _MM_HINT_T0);
        std::memcpy(&x, p + i, 8);
        s += x;
    }
    return s;
}

template <bool Prefetch>
std::uint64_t sum_chunk(const std::uint8_t* p, bool avx2) {
    return avx2 ? sum_chunk_avx2<Prefetch>(p) : sum_chunk_scalar<Prefetch>(p);
}

}  // namespace

double measure_read_bandwidth_gbs(int threads, std::uint64_t bytes, int repeats) {
    constexpr std::uint64_t kHugePage = 2ull << 20;
    bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    // The same kind of pages the weights stream from on the CPU (the engine copies them into
    // huge pages): a floor read from 4 kB pages would flatter the kernels. Every page is
    // faulted in (filled) before timing.
    detail::HugePageBytes buffer(bytes, 1, "the memory read test's buffer");
    const bool avx2 = cpu_features().avx2;
    const auto chunks = static_cast<std::int64_t>(bytes / kChunk);
    double best = 1e30;
    volatile std::uint64_t sink = 0;
    // Two streams: thread t's share of the chunks is [t * per, (t + 1) * per); it reads chunk i
    // and chunk i + per / 2 of it together.
    const std::int64_t per = chunks / threads, half = per / 2;
    for (int rep = 0; rep < 4 * repeats; ++rep) {
        const bool prefetch = rep % 2 == 0, two_streams = avx2 && rep % 4 >= 2 && half > 0;
        const auto start = std::chrono::steady_clock::now();
        std::uint64_t total = 0;
        const std::uint8_t* base = buffer.data();
        if (two_streams) {
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
            for (std::int64_t i = 0; i < threads * half; ++i) {
                const std::int64_t c = i / half * per + i % half;
                const std::uint8_t* p = base + static_cast<std::uint64_t>(c) * kChunk;
                const std::uint8_t* q = p + static_cast<std::uint64_t>(half) * kChunk;
                total +=
                    prefetch ? sum_chunk_pair_avx2<true>(p, q) : sum_chunk_pair_avx2<false>(p, q);
            }
            best = std::min(
                best,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() *
                    static_cast<double>(chunks) / static_cast<double>(threads * 2 * half));
            sink = sink + total;
            continue;
        }
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
        for (std::int64_t c = 0; c < chunks; ++c) {
            const std::uint8_t* p = base + static_cast<std::uint64_t>(c) * kChunk;
            total += prefetch ? sum_chunk<true>(p, avx2) : sum_chunk<false>(p, avx2);
        }
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        sink = sink + total;
    }
    return static_cast<double>(bytes) / best / 1e9;
}

}  // namespace bitnet::kernels

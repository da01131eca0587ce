// A byte buffer in 2 MB-aligned memory, asked for transparent huge pages before its first touch
// (buffers under 2 MB: ordinary pages). For the copies of weights that decode streams once per
// token (TL1/TL2 repacks, the screening head) and the memory read test: the file's weights sit
// in huge pages (keep_weights_in_huge_pages), and a copy in 4 kB pages takes a TLB miss every
// 4 kB of a stream (TL2 decode of 2b4t, 2 rounds: 36.5 / 35.1 tok/s from 4 kB pages, 36.8 /
// 37.1 from huge pages). The kernel's THP mode on these machines is `madvise`: without the
// advice, no huge pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace bitnet::kernels::detail {

class HugePageBytes {
  public:
    HugePageBytes() = default;
    // Every byte `fill` (the first touch, so the pages are faulted in as huge pages now), or
    // left for the caller to write when `fill` is negative. Throws OutOfMemory naming `what`.
    HugePageBytes(std::size_t size, int fill, const std::string& what);

    std::uint8_t* data() { return bytes_.get(); }
    const std::uint8_t* data() const { return bytes_.get(); }
    std::size_t size() const { return size_; }

  private:
    struct Free {
        void operator()(std::uint8_t* p) const;
    };
    std::unique_ptr<std::uint8_t[], Free> bytes_;
    std::size_t size_ = 0;
};

}  // namespace bitnet::kernels::detail

#include "huge_page_bytes.hpp"

#include "bitnet/common/error.hpp"

#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

namespace bitnet::kernels::detail {

HugePageBytes::HugePageBytes(std::size_t size, int fill, const std::string& what) : size_(size) {
    constexpr std::size_t kHugePage = std::size_t{2} << 20;
    if (size == 0) return;
    // Under one huge page, 4 kB pages: rounding a 2b4t K/V matrix's TL2 copy (0.36 MB) up to 2 MB
    // would waste more than the TLB misses cost (+110 MB of peak RSS over the TL2 copies).
    const bool huge = size >= kHugePage;
    const std::size_t align = huge ? kHugePage : 64;
    const std::size_t reserved = (size + align - 1) / align * align;
    bytes_.reset(static_cast<std::uint8_t*>(std::aligned_alloc(align, reserved)));
    if (bytes_ == nullptr)
        fail(ErrorCode::OutOfMemory, "no memory for " + what + " (" +
                                         std::to_string((reserved + (1 << 20) - 1) >> 20) + " MB)");
    if (huge) ::madvise(bytes_.get(), reserved, MADV_HUGEPAGE);  // advice: 4 kB pages if refused
    if (fill >= 0) std::memset(bytes_.get(), fill, reserved);
}

void HugePageBytes::Free::operator()(std::uint8_t* p) const {
    std::free(p);
}

}  // namespace bitnet::kernels::detail

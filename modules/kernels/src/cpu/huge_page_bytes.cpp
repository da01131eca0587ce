#include "huge_page_bytes.hpp"

#include "bitnet/common/error.hpp"

#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

namespace bitnet::kernels::detail {

HugePageBytes::HugePageBytes(std::size_t size, int fill, const std::string& what) : size_(size) {
    constexpr std::size_t kHugePage = std::size_t{2} << 20;
    const std::size_t reserved = (size + kHugePage - 1) / kHugePage * kHugePage;
    if (reserved == 0) return;
    bytes_.reset(static_cast<std::uint8_t*>(std::aligned_alloc(kHugePage, reserved)));
    if (bytes_ == nullptr)
        fail(ErrorCode::OutOfMemory,
             "no memory for " + what + " (" + std::to_string(reserved >> 20) + " MB)");
    ::madvise(bytes_.get(), reserved, MADV_HUGEPAGE);  // advice only: 4 kB pages if refused
    if (fill >= 0) std::memset(bytes_.get(), fill, reserved);
}

void HugePageBytes::Free::operator()(std::uint8_t* p) const {
    std::free(p);
}

}  // namespace bitnet::kernels::detail

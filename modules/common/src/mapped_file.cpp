#include "bitnet/common/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>
#include <utility>
#include <vector>

#include "bitnet/common/error.hpp"

namespace bitnet {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::size_t round_up(std::size_t n, std::size_t to) {
    return (n + to - 1) / to * to;
}

// `length` bytes of anonymous memory starting at a 2 MB boundary (huge pages need aligned
// addresses), or nullptr. The slack around the aligned range is given back.
std::uint8_t* map_aligned(std::size_t length, int protection) {
    void* region = ::mmap(nullptr, length + kHugePage, protection,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return nullptr;
    auto* base = static_cast<std::uint8_t*>(region);
    auto* aligned = reinterpret_cast<std::uint8_t*>(
        round_up(reinterpret_cast<std::uintptr_t>(base), kHugePage));
    if (aligned > base) ::munmap(base, static_cast<std::size_t>(aligned - base));
    const std::size_t tail = static_cast<std::size_t>(base + length + kHugePage - aligned) - length;
    if (tail > 0) ::munmap(aligned + length, tail);
    return aligned;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        fail(err == ENOENT ? ErrorCode::NotFound : ErrorCode::Io,
             path + ": cannot open (" + std::strerror(err) + "); check the path and permissions");
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(ErrorCode::Io, path + ": not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ == 0) {
        ::close(fd);
        return;
    }
    // The file goes at a 2 MB boundary of a reserved range rounded up to 2 MB, so that
    // copy_to_huge_pages() can later put whole huge pages at the same addresses.
    reserved_ = round_up(size_, kHugePage);
    std::uint8_t* base = map_aligned(reserved_, PROT_NONE);
    void* mapped = base == nullptr ? MAP_FAILED
                                   : ::mmap(base, size_, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (mapped == MAP_FAILED) {
        int err = errno;
        if (base != nullptr) ::munmap(base, reserved_);
        ::close(fd);
        fail(ErrorCode::Io, path + ": mmap of " + std::to_string(size_) + " bytes failed (" +
                                std::strerror(err) + ")");
    }
    data_ = static_cast<const std::uint8_t*>(mapped);
    fd_ = fd;
}

MappedFile::~MappedFile() {
    release();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      reserved_(std::exchange(other.reserved_, 0)),
      fd_(std::exchange(other.fd_, -1)),
      copied_(std::exchange(other.copied_, false)),
      released_(std::move(other.released_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        reserved_ = std::exchange(other.reserved_, 0);
        fd_ = std::exchange(other.fd_, -1);
        copied_ = std::exchange(other.copied_, false);
        released_ = std::move(other.released_);
    }
    return *this;
}

void MappedFile::release() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), reserved_);
    if (fd_ >= 0) ::close(fd_);
    data_ = nullptr;
    size_ = reserved_ = 0;
    fd_ = -1;
    copied_ = false;
    released_.clear();
}

bool MappedFile::copy_to_huge_pages() {
    if (copied_ || data_ == nullptr) return copied_;
    std::uint8_t* copy = map_aligned(reserved_, PROT_READ | PROT_WRITE);
    if (copy == nullptr) return false;
    ::madvise(copy, reserved_, MADV_HUGEPAGE);
    // Window by window, so the file's pages leave the resident set as the copy's arrive; on a
    // few threads (one thread's page faults made a 1.2 GB copy take 0.36 s, two took 0.21 s).
    constexpr std::size_t kWindow = 16ull << 20;
    auto* source = const_cast<std::uint8_t*>(data_);
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    // Released ranges are not copied, widened to whole 2 MB pages: a huge page holding a few
    // copied bytes next to a released tensor would be allocated whole (the TL repack released
    // the I2_S tensors around every norm vector: +300 MB of peak RSS). The small tensors in the
    // widened ranges are read from the file like the released ones.
    const std::size_t file_end = round_up(size_, page);
    std::vector<std::pair<std::size_t, std::size_t>> skipped;
    for (const auto& [b, e] : released_)
        skipped.emplace_back(b / kHugePage * kHugePage, std::min(round_up(e, kHugePage), file_end));
    std::atomic<std::size_t> next{0};
    auto copy_windows = [&] {
        for (std::size_t at; (at = next.fetch_add(kWindow)) < size_;) {
            const std::size_t end = std::min(at + kWindow, size_);
            // Skipped ranges: reading them would bring released pages back.
            for (std::size_t from = at; from < end;) {
                std::size_t to = end, resume = end;
                for (const auto& [b, e] : skipped)
                    if (b < to && e > from) {
                        if (b <= from) {
                            to = from;  // inside a skipped range: jump past it
                            resume = std::min(e, end);
                            break;
                        }
                        to = b;
                        resume = to;
                    }
                if (to > from) std::memcpy(copy + from, source + from, to - from);
                from = std::max(resume, to);
            }
            ::madvise(source + at, round_up(end - at, page), MADV_DONTNEED);
        }
    };
    {
        const unsigned helpers =
            std::min(3u, std::max(1u, std::thread::hardware_concurrency()) - 1);
        std::vector<std::jthread> threads;
        for (unsigned i = 0; i < helpers; ++i) threads.emplace_back(copy_windows);
        copy_windows();
    }
    // Read-only like the mapping, then moved over it: same addresses, the file unmapped.
    if (::mprotect(copy, reserved_, PROT_READ) != 0 ||
        ::mremap(copy, reserved_, reserved_, MREMAP_MAYMOVE | MREMAP_FIXED, source) == MAP_FAILED) {
        ::munmap(copy, reserved_);
        return false;  // the mapping is intact: dropped pages fault in from the file again
    }
    copied_ = true;
    // The skipped ranges read from the file again.
    for (const auto& [b, e] : skipped) map_file_range(b, e);
    return true;
}

void MappedFile::map_file_range(std::size_t begin, std::size_t end) const {
    ::mmap(const_cast<std::uint8_t*>(data_) + begin, end - begin, PROT_READ,
           MAP_PRIVATE | MAP_FIXED, fd_, static_cast<off_t>(begin));
}

void MappedFile::advise_dont_need(const std::uint8_t* data, std::size_t size) const {
    if (data_ == nullptr || data < data_ || data + size > data_ + size_) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    // Only whole pages inside the range.
    const std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) / page * page;
    const std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(data) + size) / page * page;
    if (end <= begin) return;
    const auto base = reinterpret_cast<std::uintptr_t>(data_);
    const std::pair<std::size_t, std::size_t> range(begin - base, end - base);
    if (std::find(released_.begin(), released_.end(), range) == released_.end())
        released_.push_back(range);  // (released again and again: the screened head's rows)
    if (!copied_)
        ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    else  // private memory would read back as zeros: map the file there again instead (data_
          // is page aligned, so address and file offset stay in step)
        map_file_range(range.first, range.second);
}

void MappedFile::read_into(const std::uint8_t* data, std::size_t size, void* out) const {
    auto* to = static_cast<std::uint8_t*>(out);
    std::size_t done = 0;
    if (fd_ >= 0 && data >= data_ && data + size <= data_ + size_) {
        const auto offset = static_cast<off_t>(data - data_);
        while (done < size) {
            const ssize_t n =
                ::pread(fd_, to + done, size - done, offset + static_cast<off_t>(done));
            if (n > 0) {
                done += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                break;  // (the rest from the mapping)
            }
        }
    }
    if (done < size) std::memcpy(to + done, data + done, size - done);
}

void MappedFile::advise_will_need() const {
    if (data_ != nullptr && !copied_)
        ::madvise(const_cast<std::uint8_t*>(data_), size_, MADV_WILLNEED);
}

bool transparent_huge_pages_available() {
    std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string line;
    if (!std::getline(in, line)) return false;
    return line.find("[always]") != std::string::npos ||
           line.find("[madvise]") != std::string::npos;
}

}  // namespace bitnet

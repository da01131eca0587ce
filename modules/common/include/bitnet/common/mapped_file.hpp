// bitnet::MappedFile — a whole file mapped read-only into memory. Model weights are used in
// place from this mapping (zero copy); the OS pages them in on demand and can share them
// between processes. copy_to_huge_pages() trades that sharing for faster streaming: the bytes
// move into private memory at the same addresses, backed by 2 MB pages where the OS has them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace bitnet {

class MappedFile {
  public:
    // Maps `path` read-only. Throws bitnet::Error(Io or NotFound) naming the path on failure.
    // An empty file maps to an empty span.
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::uint8_t* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
    const std::string& path() const { return path_; }

    // Copies the bytes into private memory at the same addresses (every pointer into the file
    // stays valid), asking for transparent huge pages: one TLB entry per 2 MB instead of per
    // 4 kB, which CPU decode (streaming all weights per token) measured ~6% faster. Keeps the
    // mapping and returns false where the memory cannot be had. Peak resident memory does not
    // grow: the file's pages are dropped as each window is copied, and ranges released before
    // (advise_dont_need) are not copied but stay mapped to the file.
    bool copy_to_huge_pages();
    // True after copy_to_huge_pages() succeeded.
    bool copied() const { return copied_; }

    // Copies [data, data + size) of the mapping into `out` by reading the file (pread): no page
    // of the mapping becomes resident, whatever the OS would map around a fault (rows read now
    // and then from a released range: the screened head's candidates). Copies from the mapping
    // where the file cannot be read.
    void read_into(const std::uint8_t* data, std::size_t size, void* out) const;
    // Hints that the whole mapping will be read soon (prefetch); harmless if unsupported.
    void advise_will_need() const;
    // Drops the pages of [data, data + size) from this process's resident set (they are read
    // back from the file on the next access; a copied range is mapped to the file again). For
    // weights that were converted at load, and the screened head's rows, given back again and
    // again.
    void advise_dont_need(const std::uint8_t* data, std::size_t size) const;

  private:
    void release() noexcept;
    // Maps [begin, end) of the file (page-aligned offsets) over the same range of data_.
    void map_file_range(std::size_t begin, std::size_t end) const;

    std::string path_;
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t reserved_ = 0;  // address space at data_: size_ rounded up to 2 MB
    int fd_ = -1;               // kept open to map copied ranges back to the file
    bool copied_ = false;
    // Page ranges (offsets) given back by advise_dont_need: read from the file, never copied.
    mutable std::vector<std::pair<std::size_t, std::size_t>> released_;
};

// Whether the OS hands out transparent huge pages to memory that asks for them
// (/sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise").
bool transparent_huge_pages_available();

}  // namespace bitnet

// bitnet::MappedFile — a whole file mapped read-only into memory. Model weights are used in
// place from this mapping (zero copy); the OS pages them in on demand and can share them
// between processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

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

    // Hints that the whole mapping will be read soon (prefetch); harmless if unsupported.
    void advise_will_need() const;
    // Drops the pages of [data, data + size) from this process's resident set (they are read
    // back from the file on the next access). For weights that were converted at load.
    void advise_dont_need(const std::uint8_t* data, std::size_t size) const;

  private:
    void release() noexcept;

    std::string path_;
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace bitnet

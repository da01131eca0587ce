// A bounds-checked little-endian reader over a byte range. Every read checks the remaining
// length first and reports what was being read and where when the data runs out.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "bitnet/common/error.hpp"

namespace bitnet::models {

class ByteCursor {
  public:
    ByteCursor(const std::uint8_t* data, std::uint64_t size, std::string file)
        : data_(data), size_(size), file_(std::move(file)) {}

    std::uint64_t position() const { return pos_; }
    std::uint64_t remaining() const { return size_ - pos_; }
    const std::uint8_t* here() const { return data_ + pos_; }
    const std::string& file() const { return file_; }

    void require(std::uint64_t n, std::string_view what) const {
        if (n > remaining()) {
            fail(ErrorCode::InvalidFormat,
                 file_ + ": truncated at offset " + std::to_string(pos_) + " while reading " +
                     std::string(what) + " (needs " + std::to_string(n) + " bytes, " +
                     std::to_string(remaining()) +
                     " left); the file is incomplete or corrupt — download or convert it again");
        }
    }

    template <typename T>
    T read(std::string_view what) {
        require(sizeof(T), what);
        T value;
        std::memcpy(&value, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return value;
    }

    void skip(std::uint64_t n, std::string_view what) {
        require(n, what);
        pos_ += n;
    }

    // A gguf string: u64 length + bytes. The length is checked against the bytes left before
    // anything is allocated or viewed.
    std::string_view read_string(std::string_view what) {
        const std::uint64_t start = pos_;
        const auto length = read<std::uint64_t>(what);
        if (length > remaining()) {
            fail(ErrorCode::InvalidFormat,
                 file_ + ": " + std::string(what) + " at offset " + std::to_string(start) +
                     " claims a length of " + std::to_string(length) + " bytes but only " +
                     std::to_string(remaining()) + " bytes remain; the file is corrupt");
        }
        std::string_view s(reinterpret_cast<const char*>(data_ + pos_), length);
        pos_ += length;
        return s;
    }

  private:
    const std::uint8_t* data_;
    std::uint64_t size_;
    std::uint64_t pos_ = 0;
    std::string file_;
};

}  // namespace bitnet::models

#include "bitnet/common/atomic_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bitnet/common/error.hpp"

namespace bitnet {

AtomicFileWriter::AtomicFileWriter(std::string final_path)
    : final_path_(std::move(final_path)),
      temp_path_(final_path_ + ".tmp." + std::to_string(::getpid())) {
    file_ = std::fopen(temp_path_.c_str(), "wb");
    if (file_ == nullptr) {
        fail(ErrorCode::Io, final_path_ + ": cannot create temporary file '" + temp_path_ + "' (" +
                                std::strerror(errno) +
                                "); check that the directory exists and is writable");
    }
}

AtomicFileWriter::~AtomicFileWriter() {
    if (file_ != nullptr) std::fclose(file_);
    if (!committed_) std::remove(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, std::size_t size) {
    if (size == 0) return;
    if (std::fwrite(data, 1, size, file_) != size) {
        fail(ErrorCode::Io, temp_path_ + ": write failed after " + std::to_string(written_) +
                                " bytes (" + std::strerror(errno) + "); is the disk full?");
    }
    written_ += size;
}

void AtomicFileWriter::write(std::span<const std::uint8_t> bytes) {
    write(bytes.data(), bytes.size());
}

void AtomicFileWriter::commit() {
    if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
        fail(ErrorCode::Io,
             temp_path_ + ": flush failed (" + std::string(std::strerror(errno)) + ")");
    }
    std::FILE* closing = file_;
    file_ = nullptr;
    if (std::fclose(closing) != 0) {
        fail(ErrorCode::Io,
             temp_path_ + ": close failed (" + std::string(std::strerror(errno)) + ")");
    }
    if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
        fail(ErrorCode::Io, "cannot rename '" + temp_path_ + "' to '" + final_path_ + "' (" +
                                std::strerror(errno) + ")");
    }
    committed_ = true;
}

}  // namespace bitnet

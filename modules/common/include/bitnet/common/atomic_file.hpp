// bitnet::AtomicFileWriter — writes a file so that the final name only ever holds a complete
// file: data goes to "<path>.tmp.<pid>" and is renamed over <path> by commit(). If the writer is
// destroyed without commit() (an exception, a crash in between), the temp file is removed and
// any existing file at <path> is untouched.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace bitnet {

class AtomicFileWriter {
  public:
    explicit AtomicFileWriter(std::string final_path);
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(std::span<const std::uint8_t> bytes);
    void write(const void* data, std::size_t size);
    std::uint64_t bytes_written() const { return written_; }
    // Flushes, fsyncs and renames the temp file onto the final path.
    void commit();

    const std::string& final_path() const { return final_path_; }
    const std::string& temp_path() const { return temp_path_; }

  private:
    std::string final_path_;
    std::string temp_path_;
    std::FILE* file_ = nullptr;
    std::uint64_t written_ = 0;
    bool committed_ = false;
};

}  // namespace bitnet

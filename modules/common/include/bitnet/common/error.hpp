// bitnet::Error — the one exception type of the engine. Every failure carries an ErrorCode
// (what kind of failure, used for exit codes and tests) and a message that names the file,
// field or tensor involved and says what the user can do about it.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace bitnet {

enum class ErrorCode {
    InvalidArgument,  // a caller/user passed something that can never work (bad flag, bad shape)
    Io,               // the operating system refused: open, read, write, rename, mmap
    InvalidFormat,    // a file is structurally wrong: truncated, corrupt, inconsistent
    Unsupported,      // well-formed but not something this engine implements
    NotFound,         // a named key, tensor, file or device does not exist
    OutOfMemory,      // an allocation (host or device) could not be satisfied
    Internal,         // a broken invariant inside the engine: always a bug
};

std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
  public:
    Error(ErrorCode code, const std::string& message);
    ErrorCode code() const noexcept { return code_; }

  private:
    ErrorCode code_;
};

// Throws Error(code, message). A free function so call sites read as one line.
[[noreturn]] void fail(ErrorCode code, const std::string& message);

}  // namespace bitnet

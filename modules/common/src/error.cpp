#include "bitnet/common/error.hpp"

namespace bitnet {

std::string_view error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidArgument:
            return "invalid argument";
        case ErrorCode::Io:
            return "I/O error";
        case ErrorCode::InvalidFormat:
            return "invalid format";
        case ErrorCode::Unsupported:
            return "unsupported";
        case ErrorCode::NotFound:
            return "not found";
        case ErrorCode::OutOfMemory:
            return "out of memory";
        case ErrorCode::Internal:
            return "internal error";
    }
    return "unknown error";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

void fail(ErrorCode code, const std::string& message) {
    throw Error(code, message);
}

}  // namespace bitnet

// libFuzzer entry point: any byte string must either parse or throw bitnet::Error —
// never crash, hang, or trip a sanitizer.
#include <cstddef>
#include <cstdint>

#include "bitnet/common/error.hpp"
#include "bitnet/models/file_checks.hpp"
#include "bitnet/models/gguf_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto file = bitnet::models::GgufFile::parse(data, size, "fuzz-input");
        (void)bitnet::models::check_model_file(*file, false);
    } catch (const bitnet::Error&) {
    }
    return 0;
}

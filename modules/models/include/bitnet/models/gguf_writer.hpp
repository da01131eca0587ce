// GgufWriter — builds a GGUF v3 file: metadata entries in insertion order, then tensor infos,
// then aligned tensor data. write() goes through AtomicFileWriter (temp file + rename), so the
// target path never holds a partial file. The writer does not judge content: it will write
// whatever it is given (tests use that to produce corrupt files); GgufFile is the validator.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/models/gguf_value.hpp"

namespace bitnet::models {

// Fills `out` (exactly the tensor's byte size) with the tensor's data.
using TensorDataFn = std::function<void(std::uint8_t* out, std::uint64_t size)>;
// Reports progress: bytes written so far, total bytes.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct GgufWriterTensor {
    std::string name;
    std::uint32_t type_id;
    std::vector<std::uint64_t> ne;
    std::uint64_t size_bytes;
    TensorDataFn fill;
};

class GgufWriter {
  public:
    explicit GgufWriter(std::uint32_t alignment = 32) : alignment_(alignment) {}

    void set_u8(std::string_view key, std::uint8_t v);
    void set_u32(std::string_view key, std::uint32_t v);
    void set_i32(std::string_view key, std::int32_t v);
    void set_u64(std::string_view key, std::uint64_t v);
    void set_f32(std::string_view key, float v);
    void set_bool(std::string_view key, bool v);
    void set_string(std::string_view key, std::string_view v);
    void set_string_array(std::string_view key, const std::vector<std::string>& v);
    void set_i32_array(std::string_view key, const std::vector<std::int32_t>& v);
    void set_f32_array(std::string_view key, const std::vector<float>& v);
    // A value read from another file, re-encoded as it was (GGUF -> GGUF conversion).
    void set_value(std::string_view key, const GgufValue& value);
    // Any pre-encoded entry: raw value type id plus the value's bytes (tests forge bad types).
    void set_raw(std::string_view key, std::uint32_t value_type,
                 std::vector<std::uint8_t> value_bytes);

    // Adds a tensor whose size is computed from its type (I2_S includes its trailer).
    void add_tensor(std::string name, std::uint32_t type_id, std::vector<std::uint64_t> ne,
                    TensorDataFn fill);
    // Adds a tensor with an explicit byte size (for types the writer cannot size, or tests).
    void add_tensor_sized(std::string name, std::uint32_t type_id, std::vector<std::uint64_t> ne,
                          std::uint64_t size_bytes, TensorDataFn fill);

    std::uint64_t total_bytes() const;  // the size of the file write() will produce
    void write(const std::string& path, const ProgressFn& progress = {}) const;
    std::vector<std::uint8_t> to_bytes() const;

  private:
    struct Entry {
        std::string key;
        std::uint32_t type;
        std::vector<std::uint8_t> bytes;
    };
    template <typename Sink>
    void emit(Sink& sink, const ProgressFn& progress) const;
    std::vector<std::uint8_t> header_bytes() const;

    std::uint32_t alignment_;
    std::vector<Entry> entries_;
    std::vector<GgufWriterTensor> tensors_;
};

}  // namespace bitnet::models

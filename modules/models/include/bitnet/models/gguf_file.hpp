// GgufFile — reads and validates a GGUF v2/v3 file over a read-only memory map.
// It knows the container only (ARCHITECTURE.md: "one loader, everything else reads tensors by
// name"); model knowledge lives in model_config.hpp. Opening a file runs every structural check
// of GGUF_AND_FORMATS.md §1; each failure is a bitnet::Error naming the file, the key or tensor,
// and the byte offset. Tensor data is never copied.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/common/mapped_file.hpp"
#include "bitnet/models/gguf_value.hpp"
#include "bitnet/quantization/type_traits.hpp"

namespace bitnet::models {

inline constexpr std::uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr std::uint64_t kGgufDefaultAlignment = 32;
inline constexpr std::uint32_t kGgufMaxDims = 4;

struct GgufTensorInfo {
    std::string name;
    std::uint32_t n_dims = 0;
    std::array<std::uint64_t, kGgufMaxDims> ne = {1, 1, 1, 1};  // ne[0] innermost
    std::uint32_t type_id = 0;
    quant::TypeTraits traits{};
    std::uint64_t offset = 0;       // relative to the data section, as stored
    std::uint64_t file_offset = 0;  // absolute position of the first byte in the file
    std::uint64_t n_elements = 0;
    std::uint64_t size_bytes = 0;        // from type and shape (I2_S includes its 32-byte trailer)
    const std::uint8_t* data = nullptr;  // into the memory map
    std::uint64_t info_offset = 0;       // where this tensor's info record starts (for messages)

    std::uint64_t rows() const { return n_elements / ne[0]; }
    std::string shape_string() const;  // "[2560, 640]"
};

struct GgufMetadataEntry {
    std::string key;
    GgufValue value;
    std::uint64_t offset = 0;  // where the key starts in the file
};

class GgufFile {
  public:
    // Maps and validates `path`. Throws bitnet::Error on any structural problem.
    static std::unique_ptr<GgufFile> open(const std::string& path);
    // Validates bytes already in memory (tests, fuzzing). `name` is used in messages.
    // The bytes must outlive the returned object.
    static std::unique_ptr<GgufFile> parse(const std::uint8_t* data, std::size_t size,
                                           const std::string& name);

    const std::string& path() const { return name_; }
    std::uint32_t version() const { return version_; }
    std::uint64_t alignment() const { return alignment_; }
    std::uint64_t data_offset() const { return data_offset_; }
    std::uint64_t file_size() const { return size_; }
    quant::FileProvenance provenance() const { return provenance_; }
    // "bitnet.cpp" or "upstream ggml": the type-id world this file was read in.
    std::string_view provenance_name() const;

    const std::vector<GgufMetadataEntry>& metadata() const { return metadata_; }
    const GgufValue* find(std::string_view key) const;
    // Required lookups: throw NotFound naming the file and key when absent.
    const GgufValue& get(std::string_view key) const;
    std::uint64_t get_u64(std::string_view key) const { return get(key).to_u64(key); }
    double get_f64(std::string_view key) const { return get(key).to_f64(key); }
    std::string_view get_string(std::string_view key) const { return get(key).to_string(key); }
    std::string architecture() const;  // general.architecture, "" when absent

    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(std::string_view name) const;
    const GgufTensorInfo& tensor(std::string_view name) const;  // throws NotFound
    // Releases a tensor's pages from the resident set (memory-mapped files only).
    void release_pages(const GgufTensorInfo& t) const;
    // Copies `size` bytes at `data` (inside a tensor) into `out` by reading the file, leaving
    // the mapping's pages untouched (MappedFile::read_into); a plain copy for in-memory files.
    void read_into(const std::uint8_t* data, std::size_t size, void* out) const;
    // Moves the file's bytes into huge-page private memory at the same addresses (see
    // MappedFile::copy_to_huge_pages); false for in-memory files or where it cannot be done.
    // Const like release_pages: the bytes and their addresses do not change.
    bool copy_to_huge_pages() const;

  private:
    GgufFile() = default;
    void parse_all();
    void decide_provenance(const std::vector<std::uint32_t>& raw_types);
    void check_tensor_extents();

    std::unique_ptr<MappedFile> mapping_;
    const std::uint8_t* bytes_ = nullptr;
    std::uint64_t size_ = 0;
    std::string name_;
    std::uint32_t version_ = 0;
    std::uint64_t alignment_ = kGgufDefaultAlignment;
    std::uint64_t data_offset_ = 0;
    quant::FileProvenance provenance_ = quant::FileProvenance::Upstream;
    std::vector<GgufMetadataEntry> metadata_;
    std::map<std::string, std::size_t, std::less<>> metadata_index_;
    std::vector<GgufTensorInfo> tensors_;
    std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

}  // namespace bitnet::models

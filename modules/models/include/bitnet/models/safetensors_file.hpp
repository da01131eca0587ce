// SafetensorsFile — a Hugging Face .safetensors file, memory-mapped and validated like a GGUF:
// 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} (plus
// an optional "__metadata__" map of strings), then the raw tensor bytes. Every header entry is
// checked (known dtype, non-negative shape, offsets inside the data and matching the shape's
// byte size, no overlaps); errors name the file, the tensor and what to do.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/common/mapped_file.hpp"

namespace bitnet::models {

struct SafetensorsTensor {
    std::string name;
    std::string dtype;  // F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL F8_E4M3 F8_E5M2 ...
    std::vector<std::int64_t> shape;
    const std::uint8_t* data = nullptr;
    std::uint64_t bytes = 0;
    std::uint64_t elements() const;
};

class SafetensorsFile {
  public:
    static std::unique_ptr<SafetensorsFile> open(const std::string& path);

    const std::string& path() const { return path_; }
    const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
    const SafetensorsTensor* find(std::string_view name) const;
    // Throws NotFound naming the file and tensor.
    const SafetensorsTensor& tensor(std::string_view name) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    // The tensor's values as float32: F32, F16 and BF16 (throws Unsupported for other dtypes).
    std::vector<float> to_f32(const SafetensorsTensor& t) const;

  private:
    SafetensorsFile() = default;
    std::string path_;
    std::unique_ptr<MappedFile> map_;
    std::vector<SafetensorsTensor> tensors_;
    std::map<std::string, std::size_t, std::less<>> index_;
    std::map<std::string, std::string> metadata_;
};

// Bytes per element of a safetensors dtype name; 0 for an unknown one.
std::size_t safetensors_dtype_size(std::string_view dtype);

}  // namespace bitnet::models

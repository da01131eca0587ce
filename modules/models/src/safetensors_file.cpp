#include "bitnet/models/safetensors_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

#include "bitnet/common/error.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::models {
namespace {

using nlohmann::json;

// A header larger than this is not a real checkpoint's (the 2B model's is ~40 KB).
constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void bad(const std::string& path, const std::string& what) {
    fail(ErrorCode::InvalidFormat,
         path + ": " + what + "; the safetensors file is corrupt or truncated (download it again)");
}

}  // namespace

std::size_t safetensors_dtype_size(std::string_view dtype) {
    static const std::pair<std::string_view, std::size_t> kSizes[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
        {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
        {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    for (const auto& [name, size] : kSizes)
        if (name == dtype) return size;
    return 0;
}

std::uint64_t SafetensorsTensor::elements() const {
    std::uint64_t n = 1;
    for (std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);
    return n;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->path_ = path;
    f->map_ = std::make_unique<MappedFile>(path);
    const std::uint8_t* base = f->map_->data();
    const std::uint64_t size = f->map_->size();
    if (size < 8)
        bad(path,
            "the file has " + std::to_string(size) + " bytes, fewer than the 8-byte header length");
    std::uint64_t header_len = 0;
    std::memcpy(&header_len, base, 8);  // little-endian on every platform we build for
    if (header_len > kMaxHeaderBytes || header_len > size - 8)
        bad(path, "the header length " + std::to_string(header_len) + " runs past the end of the " +
                      std::to_string(size) + "-byte file");
    json header;
    try {
        header = json::parse(base + 8, base + 8 + header_len);
    } catch (const json::exception& e) {
        bad(path, std::string("the JSON header does not parse (") + e.what() + ")");
    }
    if (!header.is_object()) bad(path, "the JSON header is not an object");
    const std::uint8_t* data = base + 8 + header_len;
    const std::uint64_t data_size = size - 8 - header_len;

    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object()) bad(path, "__metadata__ is not an object");
            for (const auto& [k, v] : entry.items())
                if (v.is_string()) f->metadata_[k] = v.get<std::string>();
            continue;
        }
        const std::string where = "tensor '" + name + "'";
        if (!entry.is_object() || !entry.contains("dtype") || !entry["dtype"].is_string() ||
            !entry.contains("shape") || !entry["shape"].is_array() ||
            !entry.contains("data_offsets") || !entry["data_offsets"].is_array() ||
            entry["data_offsets"].size() != 2)
            bad(path, where + " needs dtype, shape and data_offsets [begin, end]");
        SafetensorsTensor t;
        t.name = name;
        t.dtype = entry["dtype"].get<std::string>();
        const std::size_t element = safetensors_dtype_size(t.dtype);
        if (element == 0)
            fail(ErrorCode::Unsupported, path + ": " + where + " has dtype '" + t.dtype +
                                             "', which is not a safetensors dtype bitnet knows");
        std::uint64_t count = 1;
        for (const json& d : entry["shape"]) {
            if (!d.is_number_integer() || d.get<std::int64_t>() < 0)
                bad(path, where + " has a shape entry that is not a non-negative integer");
            const auto dim = d.get<std::uint64_t>();
            if (dim != 0 && count > (UINT64_MAX / element) / dim)
                bad(path, where + " has a shape whose byte size overflows");
            count *= dim;
            t.shape.push_back(static_cast<std::int64_t>(dim));
        }
        const json& offsets = entry["data_offsets"];
        if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
            bad(path, where + " has data_offsets that are not non-negative integers");
        const auto begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
        if (begin > end || end > data_size)
            bad(path, where + " has data_offsets [" + std::to_string(begin) + ", " +
                          std::to_string(end) + ") outside the " + std::to_string(data_size) +
                          " bytes of tensor data");
        if (end - begin != count * element)
            bad(path, where + " holds " + std::to_string(end - begin) +
                          " bytes but its shape and " + t.dtype + " need " +
                          std::to_string(count * element));
        t.data = data + begin;
        t.bytes = end - begin;
        f->index_[name] = f->tensors_.size();
        f->tensors_.push_back(std::move(t));
    }
    // Tensors may not share bytes (the format requires a contiguous, non-overlapping layout).
    std::vector<const SafetensorsTensor*> by_offset;
    for (const auto& t : f->tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const auto* a, const auto* b) { return a->data < b->data; });
    for (std::size_t i = 1; i < by_offset.size(); ++i)
        if (by_offset[i - 1]->data + by_offset[i - 1]->bytes > by_offset[i]->data)
            bad(path, "tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                          "' overlap");
    return f;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsFile::tensor(std::string_view name) const {
    const SafetensorsTensor* t = find(name);
    if (t == nullptr)
        fail(ErrorCode::NotFound, path_ + ": tensor '" + std::string(name) +
                                      "' is missing; is this a BitNet checkpoint?");
    return *t;
}

std::vector<float> SafetensorsFile::to_f32(const SafetensorsTensor& t) const {
    const std::uint64_t n = t.elements();
    std::vector<float> out(n);
    if (t.dtype == "F32") {
        std::memcpy(out.data(), t.data, n * 4);
    } else if (t.dtype == "F16") {
        for (std::uint64_t i = 0; i < n; ++i) {
            std::uint16_t h;
            std::memcpy(&h, t.data + 2 * i, 2);
            out[i] = quant::fp16_to_fp32(h);
        }
    } else if (t.dtype == "BF16") {
        for (std::uint64_t i = 0; i < n; ++i) {
            std::uint16_t b;
            std::memcpy(&b, t.data + 2 * i, 2);
            const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
            std::memcpy(&out[i], &bits, 4);
        }
    } else {
        fail(ErrorCode::Unsupported, path_ + ": tensor '" + t.name + "' has dtype " + t.dtype +
                                         "; bitnet converts F32, F16 and BF16 weights");
    }
    return out;
}

}  // namespace bitnet::models

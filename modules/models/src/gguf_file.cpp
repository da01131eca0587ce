#include "bitnet/models/gguf_file.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "bitnet/common/error.hpp"
#include "byte_cursor.hpp"

namespace bitnet::models {
namespace {

constexpr int kMaxArrayNesting = 8;
constexpr std::uint64_t kMaxAlignment = 1ull << 20;
// Smallest possible encodings, used to bound counts by the bytes left before allocating.
constexpr std::uint64_t kMinKvBytes = 8 + 4 + 1;                  // empty key, type, u8 value
constexpr std::uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, 1 dim

std::string at(std::uint64_t offset) {
    return " at offset " + std::to_string(offset);
}

[[noreturn]] void corrupt(const std::string& file, const std::string& message) {
    fail(ErrorCode::InvalidFormat, file + ": " + message);
}

GgufValue read_value(ByteCursor& c, GgufValueType type, const std::string& key, int depth) {
    GgufValue v;
    v.type = type;
    const std::string what = "value of metadata key '" + key + "'";
    switch (type) {
        case GgufValueType::U8:
            v.unsigned_value = c.read<std::uint8_t>(what);
            break;
        case GgufValueType::I8:
            v.signed_value = c.read<std::int8_t>(what);
            break;
        case GgufValueType::U16:
            v.unsigned_value = c.read<std::uint16_t>(what);
            break;
        case GgufValueType::I16:
            v.signed_value = c.read<std::int16_t>(what);
            break;
        case GgufValueType::U32:
            v.unsigned_value = c.read<std::uint32_t>(what);
            break;
        case GgufValueType::I32:
            v.signed_value = c.read<std::int32_t>(what);
            break;
        case GgufValueType::U64:
            v.unsigned_value = c.read<std::uint64_t>(what);
            break;
        case GgufValueType::I64:
            v.signed_value = c.read<std::int64_t>(what);
            break;
        case GgufValueType::F32:
            v.float_value = c.read<float>(what);
            break;
        case GgufValueType::F64:
            v.float_value = c.read<double>(what);
            break;
        case GgufValueType::Bool: {
            const std::uint64_t pos = c.position();
            v.unsigned_value = c.read<std::uint8_t>(what);
            if (v.unsigned_value > 1)
                corrupt(c.file(), "metadata key '" + key + "' is a bool with byte value " +
                                      std::to_string(v.unsigned_value) + at(pos) +
                                      " (must be 0 or 1)");
            break;
        }
        case GgufValueType::String:
            v.string_value = c.read_string(what);
            break;
        case GgufValueType::Array: {
            const std::uint64_t pos = c.position();
            const auto raw_element = c.read<std::uint32_t>("element type of " + what);
            if (!is_valid_value_type(raw_element))
                corrupt(c.file(), "metadata key '" + key + "' is an array of unknown value type " +
                                      std::to_string(raw_element) + at(pos));
            v.element_type = static_cast<GgufValueType>(raw_element);
            v.count = c.read<std::uint64_t>("element count of " + what);
            std::uint64_t min_element_bytes = value_type_size(v.element_type);
            if (v.element_type == GgufValueType::String) min_element_bytes = 8;
            if (v.element_type == GgufValueType::Array) min_element_bytes = 12;
            if (v.count > c.remaining() / min_element_bytes)
                corrupt(c.file(), "metadata key '" + key + "' claims " + std::to_string(v.count) +
                                      " array elements" + at(pos) + " but only " +
                                      std::to_string(c.remaining()) + " bytes remain");
            if (v.element_type == GgufValueType::String) {
                v.strings.reserve(v.count);
                for (std::uint64_t i = 0; i < v.count; ++i)
                    v.strings.push_back(c.read_string(what));
            } else if (v.element_type == GgufValueType::Array) {
                if (depth >= kMaxArrayNesting)
                    corrupt(c.file(), "metadata key '" + key + "' nests arrays deeper than " +
                                          std::to_string(kMaxArrayNesting) + " levels" + at(pos));
                v.nested.reserve(v.count);
                for (std::uint64_t i = 0; i < v.count; ++i)
                    v.nested.push_back(read_value(c, GgufValueType::Array, key, depth + 1));
            } else {
                v.raw_elements = c.here();
                c.skip(v.count * min_element_bytes, what);
                if (v.element_type == GgufValueType::Bool) {
                    for (std::uint64_t i = 0; i < v.count; ++i)
                        if (v.raw_elements[i] > 1)
                            corrupt(c.file(), "metadata key '" + key + "' element " +
                                                  std::to_string(i) + " is not a valid bool");
                }
            }
            break;
        }
    }
    return v;
}

std::string describe_version_problem(std::uint32_t version) {
    const std::uint32_t swapped = __builtin_bswap32(version);
    if (version != 0 && swapped >= 1 && swapped <= 3)
        return "is a big-endian GGUF (version field reads " + std::to_string(version) +
               "); only little-endian files are supported — convert it on a little-endian machine";
    if (version == 1)
        return "is GGUF version 1, which this engine does not read; re-convert the model with a "
               "current converter (GGUF v3)";
    return "has GGUF version " + std::to_string(version) +
           ", which this engine does not understand (supported: 2 and 3)";
}

}  // namespace

std::string GgufTensorInfo::shape_string() const {
    std::string out = "[";
    for (std::uint32_t i = 0; i < n_dims; ++i) {
        if (i) out += ", ";
        out += std::to_string(ne[i]);
    }
    return out + "]";
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
    auto mapping = std::make_unique<MappedFile>(path);
    std::unique_ptr<GgufFile> file(new GgufFile());
    file->bytes_ = mapping->data();
    file->size_ = mapping->size();
    file->name_ = path;
    file->mapping_ = std::move(mapping);
    file->parse_all();
    return file;
}

std::unique_ptr<GgufFile> GgufFile::parse(const std::uint8_t* data, std::size_t size,
                                          const std::string& name) {
    std::unique_ptr<GgufFile> file(new GgufFile());
    file->bytes_ = data;
    file->size_ = size;
    file->name_ = name;
    file->parse_all();
    return file;
}

void GgufFile::parse_all() {
    ByteCursor c(bytes_, size_, name_);
    if (size_ < 4 || c.read<std::uint32_t>("magic") != kGgufMagic) {
        corrupt(name_,
                "not a GGUF file (the first 4 bytes are not 'GGUF'); pass a .gguf model file");
    }
    version_ = c.read<std::uint32_t>("version");
    if (version_ != 2 && version_ != 3) corrupt(name_, describe_version_problem(version_));

    const auto tensor_count = c.read<std::uint64_t>("tensor count");
    const auto kv_count = c.read<std::uint64_t>("metadata count");
    if (kv_count > c.remaining() / kMinKvBytes)
        corrupt(name_, "header claims " + std::to_string(kv_count) + " metadata entries but only " +
                           std::to_string(c.remaining()) + " bytes follow; the file is corrupt");

    metadata_.reserve(kv_count);
    for (std::uint64_t i = 0; i < kv_count; ++i) {
        const std::uint64_t key_offset = c.position();
        std::string key(c.read_string("key of metadata entry " + std::to_string(i)));
        if (key.empty())
            corrupt(name_,
                    "metadata entry " + std::to_string(i) + " has an empty key" + at(key_offset));
        const std::uint64_t type_offset = c.position();
        const auto raw_type = c.read<std::uint32_t>("value type of metadata key '" + key + "'");
        if (!is_valid_value_type(raw_type))
            corrupt(name_, "metadata key '" + key + "' has unknown value type " +
                               std::to_string(raw_type) + at(type_offset) + " (valid: 0-12)");
        GgufValue value = read_value(c, static_cast<GgufValueType>(raw_type), key, 0);
        if (metadata_index_.count(key))
            corrupt(name_,
                    "metadata key '" + key + "' appears twice (second time" + at(key_offset) + ")");
        metadata_index_.emplace(key, metadata_.size());
        metadata_.push_back({std::move(key), std::move(value), key_offset});
    }

    if (const GgufValue* align = find("general.alignment")) {
        if (align->type != GgufValueType::U32)
            corrupt(name_, "general.alignment has type " +
                               std::string(value_type_name(align->type)) + ", expected u32");
        alignment_ = align->unsigned_value;
        if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0 || alignment_ > kMaxAlignment)
            corrupt(name_, "general.alignment = " + std::to_string(alignment_) +
                               " is not a power of two between 1 and 2^20");
    }

    if (tensor_count > c.remaining() / kMinTensorInfoBytes)
        corrupt(name_, "header claims " + std::to_string(tensor_count) + " tensors but only " +
                           std::to_string(c.remaining()) + " bytes follow; the file is corrupt");

    std::vector<std::uint32_t> raw_types;
    tensors_.reserve(tensor_count);
    raw_types.reserve(tensor_count);
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
        GgufTensorInfo t;
        t.info_offset = c.position();
        t.name = std::string(c.read_string("name of tensor " + std::to_string(i)));
        if (t.name.empty())
            corrupt(name_,
                    "tensor " + std::to_string(i) + " has an empty name" + at(t.info_offset));
        const std::string label = "tensor '" + t.name + "'";
        t.n_dims = c.read<std::uint32_t>("dimension count of " + label);
        if (t.n_dims == 0 || t.n_dims > kGgufMaxDims)
            corrupt(name_, label + " has " + std::to_string(t.n_dims) + " dimensions" +
                               at(t.info_offset) + " (must be 1 to 4)");
        t.n_elements = 1;
        for (std::uint32_t d = 0; d < t.n_dims; ++d) {
            t.ne[d] = c.read<std::uint64_t>("shape of " + label);
            if (t.ne[d] == 0 ||
                t.ne[d] > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                corrupt(name_, label + " has an invalid size " + std::to_string(t.ne[d]) +
                                   " in dimension " + std::to_string(d) + at(t.info_offset));
            if (t.n_elements >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / t.ne[d])
                corrupt(name_, label + " shape " + t.shape_string() +
                                   " has an element count that overflows 64 bits" +
                                   at(t.info_offset));
            t.n_elements *= t.ne[d];
        }
        raw_types.push_back(c.read<std::uint32_t>("type of " + label));
        t.type_id = raw_types.back();
        t.offset = c.read<std::uint64_t>("data offset of " + label);
        if (tensor_index_.count(t.name))
            corrupt(name_, "tensor name '" + t.name + "' appears twice (second time" +
                               at(t.info_offset) + ")");
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    decide_provenance(raw_types);

    for (GgufTensorInfo& t : tensors_) {
        const std::string label = "tensor '" + t.name + "'";
        auto traits = quant::find_type(t.type_id, provenance_);
        if (!traits)
            corrupt(name_, label + " has unknown type id " + std::to_string(t.type_id) +
                               at(t.info_offset) + " (read as a " + std::string(provenance_name()) +
                               " file); it may come from a newer tool, or the file is corrupt");
        t.traits = *traits;
        if (t.ne[0] % static_cast<std::uint64_t>(t.traits.block_size) != 0)
            corrupt(name_, label + " has row length " + std::to_string(t.ne[0]) +
                               ", not a multiple of " + std::string(t.traits.name) +
                               "'s block size " + std::to_string(t.traits.block_size));
        try {
            t.size_bytes = quant::tensor_bytes(t.traits, t.n_elements);
        } catch (const Error& e) {
            corrupt(name_, label + ": " + e.what());
        }
        if (t.offset % alignment_ != 0)
            corrupt(name_, label + " data offset " + std::to_string(t.offset) +
                               " is not a multiple of the alignment " + std::to_string(alignment_));
    }

    const std::uint64_t end_of_infos = c.position();
    data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
    if (!tensors_.empty() && data_offset_ > size_)
        corrupt(name_, "truncated: the tensor data section should start at offset " +
                           std::to_string(data_offset_) + " but the file has " +
                           std::to_string(size_) + " bytes; download or convert it again");
    check_tensor_extents();
}

void GgufFile::decide_provenance(const std::vector<std::uint32_t>& raw_types) {
    // Type ids 36..39 differ between bitnet.cpp's fork and upstream ggml. A file is read in the
    // bitnet.cpp world when its architecture is one of the fork's BitNet architectures or when
    // it uses an id only the fork assigns (36 I2_S, 37 I8_S, 38 TL1).
    const std::string arch = architecture();
    bool bitnet_cpp = arch.rfind("bitnet", 0) == 0;
    for (std::uint32_t id : raw_types) bitnet_cpp = bitnet_cpp || (id >= 36 && id <= 38);
    provenance_ = bitnet_cpp ? quant::FileProvenance::BitnetCpp : quant::FileProvenance::Upstream;
}

void GgufFile::check_tensor_extents() {
    std::vector<GgufTensorInfo*> by_offset;
    for (GgufTensorInfo& t : tensors_) {
        const std::string label =
            "tensor '" + t.name + "' (" + std::string(t.traits.name) + " " + t.shape_string() + ")";
        t.file_offset = data_offset_ + t.offset;
        if (t.offset > size_ || t.file_offset > size_)
            corrupt(name_, label + " starts at offset " + std::to_string(t.offset) +
                               " of the data section, past the end of the file (" +
                               std::to_string(size_) + " bytes); the file is truncated or corrupt");
        t.data = bytes_ + t.file_offset;
        if (!t.traits.size_is_exact) continue;
        const std::uint64_t available = size_ - t.file_offset;
        if (t.size_bytes > available) {
            std::string hint = "; the file is truncated — download or convert it again";
            if (t.type_id == static_cast<std::uint32_t>(quant::TypeId::I2_S) &&
                available >= t.n_elements / 4 && available < t.size_bytes)
                hint =
                    "; an I2_S tensor needs n/4 + 32 bytes (codes + scale) — the file may "
                    "have been written without the I2_S scale";
            corrupt(name_, label + " needs " + std::to_string(t.size_bytes) +
                               " bytes from offset " + std::to_string(t.file_offset) +
                               " but only " + std::to_string(available) + " remain" + hint);
        }
        by_offset.push_back(&t);
    }
    std::sort(
        by_offset.begin(), by_offset.end(),
        [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
        const GgufTensorInfo& prev = *by_offset[i - 1];
        const GgufTensorInfo& cur = *by_offset[i];
        if (prev.offset + prev.size_bytes > cur.offset) {
            std::string hint;
            if (prev.type_id == static_cast<std::uint32_t>(quant::TypeId::I2_S) &&
                cur.offset - prev.offset >= prev.n_elements / 4)
                hint =
                    "; an I2_S tensor needs n/4 + 32 bytes (codes + scale) — the file may have "
                    "been written without the I2_S scale";
            corrupt(name_, "tensors '" + prev.name + "' (bytes " + std::to_string(prev.offset) +
                               ".." + std::to_string(prev.offset + prev.size_bytes) + ") and '" +
                               cur.name + "' (from " + std::to_string(cur.offset) + ") overlap" +
                               hint);
        }
    }
}

std::string_view GgufFile::provenance_name() const {
    return provenance_ == quant::FileProvenance::BitnetCpp ? "bitnet.cpp" : "upstream ggml";
}

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = metadata_index_.find(key);
    return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufValue& GgufFile::get(std::string_view key) const {
    const GgufValue* v = find(key);
    if (v == nullptr)
        fail(ErrorCode::NotFound, name_ + ": required metadata key '" + std::string(key) +
                                      "' is missing; the file was not written for this model type");
    return *v;
}

std::string GgufFile::architecture() const {
    const GgufValue* v = find("general.architecture");
    if (v == nullptr || v->type != GgufValueType::String) return "";
    return std::string(v->string_value);
}

void GgufFile::release_pages(const GgufTensorInfo& t) const {
    if (mapping_) mapping_->advise_dont_need(t.data, t.size_bytes);
}

void GgufFile::read_into(const std::uint8_t* data, std::size_t size, void* out) const {
    if (mapping_)
        mapping_->read_into(data, size, out);
    else
        std::memcpy(out, data, size);
}

bool GgufFile::copy_to_huge_pages() const {
    return mapping_ && mapping_->copy_to_huge_pages();
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
    const GgufTensorInfo* t = find_tensor(name);
    if (t == nullptr)
        fail(ErrorCode::NotFound, name_ + ": tensor '" + std::string(name) + "' is missing");
    return *t;
}

}  // namespace bitnet::models

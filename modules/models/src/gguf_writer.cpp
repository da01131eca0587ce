#include "bitnet/models/gguf_writer.hpp"

#include <cstring>

#include "bitnet/common/atomic_file.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/quantization/type_traits.hpp"

namespace bitnet::models {
namespace {

// resize + memcpy rather than insert: GCC 12 reports false -Wstringop-overflow on
// vector<uint8_t>::insert at -O3.
void append_bytes(std::vector<std::uint8_t>& out, const void* data, std::size_t size) {
    if (size == 0) return;
    const std::size_t at = out.size();
    out.resize(at + size);
    std::memcpy(out.data() + at, data, size);
}

template <typename T>
void append(std::vector<std::uint8_t>& out, T value) {
    append_bytes(out, &value, sizeof(T));
}

void append_string(std::vector<std::uint8_t>& out, std::string_view s) {
    append<std::uint64_t>(out, s.size());
    append_bytes(out, s.data(), s.size());
}

std::uint64_t align_up(std::uint64_t x, std::uint64_t a) {
    return (x + a - 1) / a * a;
}

struct BufferSink {
    std::vector<std::uint8_t>& out;
    void write(const void* data, std::size_t size) { append_bytes(out, data, size); }
};

struct FileSink {
    AtomicFileWriter& file;
    void write(const void* data, std::size_t size) { file.write(data, size); }
};

// A value's bytes as GGUF stores them after its type id (arrays: element type, count, items).
void encode_value(std::vector<std::uint8_t>& out, const GgufValue& v) {
    switch (v.type) {
        case GgufValueType::String:
            append_string(out, v.string_value);
            return;
        case GgufValueType::Array: {
            append<std::uint32_t>(out, static_cast<std::uint32_t>(v.element_type));
            append<std::uint64_t>(out, v.count);
            if (v.element_type == GgufValueType::String) {
                for (std::string_view s : v.strings) append_string(out, s);
            } else if (v.element_type == GgufValueType::Array) {
                for (const GgufValue& nested : v.nested) encode_value(out, nested);
            } else {
                append_bytes(out, v.raw_elements, v.count * value_type_size(v.element_type));
            }
            return;
        }
        case GgufValueType::F32: {
            const auto f = static_cast<float>(v.float_value);
            append(out, f);
            return;
        }
        case GgufValueType::F64:
            append(out, v.float_value);
            return;
        default: {
            // Integers and bool: the low bytes of the stored value, little-endian.
            const bool is_signed = v.type == GgufValueType::I8 || v.type == GgufValueType::I16 ||
                                   v.type == GgufValueType::I32 || v.type == GgufValueType::I64;
            const std::uint64_t bits =
                is_signed ? static_cast<std::uint64_t>(v.signed_value) : v.unsigned_value;
            append_bytes(out, &bits, value_type_size(v.type));
        }
    }
}

}  // namespace

void GgufWriter::set_value(std::string_view key, const GgufValue& value) {
    std::vector<std::uint8_t> b;
    encode_value(b, value);
    set_raw(key, static_cast<std::uint32_t>(value.type), std::move(b));
}

void GgufWriter::set_raw(std::string_view key, std::uint32_t value_type,
                         std::vector<std::uint8_t> value_bytes) {
    entries_.push_back({std::string(key), value_type, std::move(value_bytes)});
}

void GgufWriter::set_u8(std::string_view key, std::uint8_t v) {
    std::vector<std::uint8_t> b;
    append(b, v);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::U8), std::move(b));
}
void GgufWriter::set_u32(std::string_view key, std::uint32_t v) {
    std::vector<std::uint8_t> b;
    append(b, v);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::U32), std::move(b));
}
void GgufWriter::set_i32(std::string_view key, std::int32_t v) {
    std::vector<std::uint8_t> b;
    append(b, v);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::I32), std::move(b));
}
void GgufWriter::set_u64(std::string_view key, std::uint64_t v) {
    std::vector<std::uint8_t> b;
    append(b, v);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::U64), std::move(b));
}
void GgufWriter::set_f32(std::string_view key, float v) {
    std::vector<std::uint8_t> b;
    append(b, v);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::F32), std::move(b));
}
void GgufWriter::set_bool(std::string_view key, bool v) {
    std::vector<std::uint8_t> b;
    append<std::uint8_t>(b, v ? 1 : 0);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::Bool), std::move(b));
}
void GgufWriter::set_string(std::string_view key, std::string_view v) {
    std::vector<std::uint8_t> b;
    append_string(b, v);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::String), std::move(b));
}
void GgufWriter::set_string_array(std::string_view key, const std::vector<std::string>& v) {
    std::vector<std::uint8_t> b;
    append(b, static_cast<std::uint32_t>(GgufValueType::String));
    append<std::uint64_t>(b, v.size());
    for (const auto& s : v) append_string(b, s);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::Array), std::move(b));
}
void GgufWriter::set_i32_array(std::string_view key, const std::vector<std::int32_t>& v) {
    std::vector<std::uint8_t> b;
    append(b, static_cast<std::uint32_t>(GgufValueType::I32));
    append<std::uint64_t>(b, v.size());
    for (auto x : v) append(b, x);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::Array), std::move(b));
}
void GgufWriter::set_f32_array(std::string_view key, const std::vector<float>& v) {
    std::vector<std::uint8_t> b;
    append(b, static_cast<std::uint32_t>(GgufValueType::F32));
    append<std::uint64_t>(b, v.size());
    for (auto x : v) append(b, x);
    set_raw(key, static_cast<std::uint32_t>(GgufValueType::Array), std::move(b));
}

void GgufWriter::add_tensor(std::string name, std::uint32_t type_id, std::vector<std::uint64_t> ne,
                            TensorDataFn fill) {
    // Type ids 36..39 are only meaningful to the writer in the bitnet.cpp world (I2_S).
    auto traits = quant::find_type(type_id, quant::FileProvenance::BitnetCpp);
    if (!traits || !traits->size_is_exact)
        fail(ErrorCode::InvalidArgument, "GgufWriter: cannot size tensor '" + name +
                                             "' of type id " + std::to_string(type_id) +
                                             "; use add_tensor_sized");
    std::uint64_t n = 1;
    for (auto d : ne) n *= d;
    const std::uint64_t size = quant::tensor_bytes(*traits, n);
    add_tensor_sized(std::move(name), type_id, std::move(ne), size, std::move(fill));
}

void GgufWriter::add_tensor_sized(std::string name, std::uint32_t type_id,
                                  std::vector<std::uint64_t> ne, std::uint64_t size_bytes,
                                  TensorDataFn fill) {
    tensors_.push_back({std::move(name), type_id, std::move(ne), size_bytes, std::move(fill)});
}

std::vector<std::uint8_t> GgufWriter::header_bytes() const {
    std::vector<std::uint8_t> h;
    append<std::uint32_t>(h, kGgufMagic);
    append<std::uint32_t>(h, 3);
    append<std::uint64_t>(h, tensors_.size());
    append<std::uint64_t>(h, entries_.size());
    for (const Entry& e : entries_) {
        append_string(h, e.key);
        append<std::uint32_t>(h, e.type);
        append_bytes(h, e.bytes.data(), e.bytes.size());
    }
    std::uint64_t offset = 0;
    for (const GgufWriterTensor& t : tensors_) {
        append_string(h, t.name);
        append<std::uint32_t>(h, static_cast<std::uint32_t>(t.ne.size()));
        for (auto d : t.ne) append<std::uint64_t>(h, d);
        append<std::uint32_t>(h, t.type_id);
        append<std::uint64_t>(h, offset);
        offset = align_up(offset + t.size_bytes, alignment_);
    }
    h.resize(align_up(h.size(), alignment_), 0);
    return h;
}

std::uint64_t GgufWriter::total_bytes() const {
    std::uint64_t total = header_bytes().size();
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
        total += tensors_[i].size_bytes;
        if (i + 1 < tensors_.size()) total = align_up(total, alignment_);
    }
    return total;
}

template <typename Sink>
void GgufWriter::emit(Sink& sink, const ProgressFn& progress) const {
    const std::vector<std::uint8_t> header = header_bytes();
    sink.write(header.data(), header.size());
    const std::uint64_t total = total_bytes();
    std::uint64_t done = header.size();
    std::vector<std::uint8_t> buffer;
    static const std::uint8_t zeros[256] = {};
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
        const GgufWriterTensor& t = tensors_[i];
        buffer.assign(t.size_bytes, 0);
        if (t.fill) t.fill(buffer.data(), t.size_bytes);
        sink.write(buffer.data(), buffer.size());
        done += t.size_bytes;
        if (i + 1 < tensors_.size()) {
            std::uint64_t pad = align_up(done, alignment_) - done;
            done += pad;
            while (pad > 0) {
                const std::uint64_t chunk = pad < sizeof zeros ? pad : sizeof zeros;
                sink.write(zeros, chunk);
                pad -= chunk;
            }
        }
        if (progress) progress(done, total);
    }
}

void GgufWriter::write(const std::string& path, const ProgressFn& progress) const {
    AtomicFileWriter file(path);
    FileSink sink{file};
    emit(sink, progress);
    file.commit();
}

std::vector<std::uint8_t> GgufWriter::to_bytes() const {
    std::vector<std::uint8_t> out;
    BufferSink sink{out};
    emit(sink, {});
    return out;
}

}  // namespace bitnet::models

#include "bitnet/models/gguf_value.hpp"

#include <cstring>
#include <limits>

#include "bitnet/common/error.hpp"

namespace bitnet::models {
namespace {

[[noreturn]] void wrong_type(std::string_view key, const GgufValue& v, const char* wanted) {
    fail(ErrorCode::InvalidFormat, "metadata key '" + std::string(key) + "' has type " +
                                       std::string(value_type_name(v.type)) + ", expected " +
                                       wanted);
}

template <typename T>
T load(const std::uint8_t* p) {
    T value;
    std::memcpy(&value, p, sizeof(T));
    return value;
}

}  // namespace

std::string_view value_type_name(GgufValueType type) {
    switch (type) {
        case GgufValueType::U8:
            return "u8";
        case GgufValueType::I8:
            return "i8";
        case GgufValueType::U16:
            return "u16";
        case GgufValueType::I16:
            return "i16";
        case GgufValueType::U32:
            return "u32";
        case GgufValueType::I32:
            return "i32";
        case GgufValueType::F32:
            return "f32";
        case GgufValueType::Bool:
            return "bool";
        case GgufValueType::String:
            return "string";
        case GgufValueType::Array:
            return "array";
        case GgufValueType::U64:
            return "u64";
        case GgufValueType::I64:
            return "i64";
        case GgufValueType::F64:
            return "f64";
    }
    return "unknown";
}

std::size_t value_type_size(GgufValueType type) {
    switch (type) {
        case GgufValueType::U8:
        case GgufValueType::I8:
        case GgufValueType::Bool:
            return 1;
        case GgufValueType::U16:
        case GgufValueType::I16:
            return 2;
        case GgufValueType::U32:
        case GgufValueType::I32:
        case GgufValueType::F32:
            return 4;
        case GgufValueType::U64:
        case GgufValueType::I64:
        case GgufValueType::F64:
            return 8;
        case GgufValueType::String:
        case GgufValueType::Array:
            return 0;
    }
    return 0;
}

bool is_valid_value_type(std::uint32_t raw) {
    return raw <= 12;
}

bool GgufValue::is_integer() const {
    switch (type) {
        case GgufValueType::U8:
        case GgufValueType::I8:
        case GgufValueType::U16:
        case GgufValueType::I16:
        case GgufValueType::U32:
        case GgufValueType::I32:
        case GgufValueType::U64:
        case GgufValueType::I64:
            return true;
        default:
            return false;
    }
}

std::uint64_t GgufValue::to_u64(std::string_view key) const {
    if (!is_integer()) wrong_type(key, *this, "an integer");
    bool is_signed = type == GgufValueType::I8 || type == GgufValueType::I16 ||
                     type == GgufValueType::I32 || type == GgufValueType::I64;
    if (!is_signed) return unsigned_value;
    if (signed_value < 0) {
        fail(ErrorCode::InvalidFormat, "metadata key '" + std::string(key) + "' is negative (" +
                                           std::to_string(signed_value) + "), expected >= 0");
    }
    return static_cast<std::uint64_t>(signed_value);
}

std::int64_t GgufValue::to_i64(std::string_view key) const {
    if (!is_integer()) wrong_type(key, *this, "an integer");
    bool is_signed = type == GgufValueType::I8 || type == GgufValueType::I16 ||
                     type == GgufValueType::I32 || type == GgufValueType::I64;
    if (is_signed) return signed_value;
    if (unsigned_value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(ErrorCode::InvalidFormat, "metadata key '" + std::string(key) + "' is too large");
    }
    return static_cast<std::int64_t>(unsigned_value);
}

double GgufValue::to_f64(std::string_view key) const {
    if (type == GgufValueType::F32 || type == GgufValueType::F64) return float_value;
    if (is_integer()) return static_cast<double>(to_i64(key));
    wrong_type(key, *this, "a number");
}

bool GgufValue::to_bool(std::string_view key) const {
    if (type != GgufValueType::Bool) wrong_type(key, *this, "bool");
    return unsigned_value != 0;
}

std::string_view GgufValue::to_string(std::string_view key) const {
    if (type != GgufValueType::String) wrong_type(key, *this, "string");
    return string_value;
}

std::vector<std::string_view> GgufValue::to_string_array(std::string_view key) const {
    if (type != GgufValueType::Array || element_type != GgufValueType::String)
        wrong_type(key, *this, "array of strings");
    return strings;
}

std::vector<std::int64_t> GgufValue::to_int_array(std::string_view key) const {
    if (type != GgufValueType::Array) wrong_type(key, *this, "array of integers");
    std::vector<std::int64_t> out(count);
    const std::size_t size = value_type_size(element_type);
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint8_t* p = raw_elements + i * size;
        switch (element_type) {
            case GgufValueType::U8:
                out[i] = load<std::uint8_t>(p);
                break;
            case GgufValueType::I8:
                out[i] = load<std::int8_t>(p);
                break;
            case GgufValueType::U16:
                out[i] = load<std::uint16_t>(p);
                break;
            case GgufValueType::I16:
                out[i] = load<std::int16_t>(p);
                break;
            case GgufValueType::U32:
                out[i] = load<std::uint32_t>(p);
                break;
            case GgufValueType::I32:
                out[i] = load<std::int32_t>(p);
                break;
            case GgufValueType::I64:
                out[i] = load<std::int64_t>(p);
                break;
            case GgufValueType::U64: {
                auto v = load<std::uint64_t>(p);
                if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                    fail(ErrorCode::InvalidFormat, "metadata key '" + std::string(key) +
                                                       "' element " + std::to_string(i) +
                                                       " is too large");
                out[i] = static_cast<std::int64_t>(v);
                break;
            }
            default:
                wrong_type(key, *this, "array of integers");
        }
    }
    return out;
}

std::vector<float> GgufValue::to_float_array(std::string_view key) const {
    if (type != GgufValueType::Array ||
        (element_type != GgufValueType::F32 && element_type != GgufValueType::F64))
        wrong_type(key, *this, "array of floats");
    std::vector<float> out(count);
    for (std::uint64_t i = 0; i < count; ++i) {
        out[i] = element_type == GgufValueType::F32
                     ? load<float>(raw_elements + i * 4)
                     : static_cast<float>(load<double>(raw_elements + i * 8));
    }
    return out;
}

std::string GgufValue::describe(std::size_t max_chars) const {
    std::string out;
    switch (type) {
        case GgufValueType::String:
            out = "\"" + std::string(string_value) + "\"";
            break;
        case GgufValueType::Array:
            out = "[" + std::string(value_type_name(element_type)) + " x " + std::to_string(count) +
                  "]";
            break;
        case GgufValueType::Bool:
            out = unsigned_value ? "true" : "false";
            break;
        case GgufValueType::F32:
        case GgufValueType::F64: {
            char buffer[64];
            std::snprintf(buffer, sizeof buffer, "%g", float_value);
            out = buffer;
            break;
        }
        default:
            out = (type == GgufValueType::I8 || type == GgufValueType::I16 ||
                   type == GgufValueType::I32 || type == GgufValueType::I64)
                      ? std::to_string(signed_value)
                      : std::to_string(unsigned_value);
    }
    for (char& c : out)
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (out.size() > max_chars) out = out.substr(0, max_chars - 3) + "...";
    return out;
}

}  // namespace bitnet::models

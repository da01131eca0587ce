// A GGUF metadata value as read from a file. Strings and numeric arrays point into the
// memory-mapped file (zero copy), so the GgufFile that produced a value must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::models {

enum class GgufValueType : std::uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

std::string_view value_type_name(GgufValueType type);
// Size in bytes of a fixed-size value type; 0 for String and Array.
std::size_t value_type_size(GgufValueType type);
bool is_valid_value_type(std::uint32_t raw);

class GgufValue {
  public:
    GgufValueType type = GgufValueType::U8;

    // Scalars (exactly one is meaningful, by `type`).
    std::uint64_t unsigned_value = 0;  // U8, U16, U32, U64, Bool
    std::int64_t signed_value = 0;     // I8, I16, I32, I64
    double float_value = 0.0;          // F32, F64
    std::string_view string_value;     // String

    // Arrays.
    GgufValueType element_type = GgufValueType::U8;
    std::uint64_t count = 0;
    const std::uint8_t* raw_elements = nullptr;  // fixed-size element arrays: little-endian bytes
    std::vector<std::string_view> strings;       // string arrays
    std::vector<GgufValue> nested;               // arrays of arrays

    bool is_integer() const;
    bool is_array() const { return type == GgufValueType::Array; }

    // Typed accessors; each throws bitnet::Error(InvalidFormat) naming `key` when the value has
    // the wrong type or does not fit.
    std::uint64_t to_u64(std::string_view key) const;
    std::int64_t to_i64(std::string_view key) const;
    double to_f64(std::string_view key) const;
    bool to_bool(std::string_view key) const;
    std::string_view to_string(std::string_view key) const;
    std::vector<std::string_view> to_string_array(std::string_view key) const;
    std::vector<std::int64_t> to_int_array(std::string_view key) const;
    std::vector<float> to_float_array(std::string_view key) const;

    // Short human-readable rendering (arrays summarized) for `bitnet inspect`.
    std::string describe(std::size_t max_chars = 80) const;
};

}  // namespace bitnet::models

// The table of every tensor type id a GGUF file can carry (upstream ggml and Microsoft's
// bitnet.cpp fork): name, block size, bytes per block, and the reference quantize/dequantize
// functions where the engine implements them. Adding a format = one row in type_traits.cpp.
//
// Id 39 is ambiguous: MXFP4 upstream, TL2 in bitnet.cpp files. Callers say which world a file
// comes from (FileProvenance, decided by the model layer from the architecture and tensor types).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::quant {

enum class TypeId : std::uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    I2_S = 36,  // bitnet.cpp: 2-bit ternary codes, one per-tensor float scale
    I8_S = 37,  // bitnet.cpp: int8 activations, never stored in files
    TL1 = 38,   // bitnet.cpp: lookup-table layout tied to a generated kernel
    TL2_OR_MXFP4 = 39,
};

enum class FileProvenance { Upstream, BitnetCpp };

// Quantize n floats (a whole tensor, or a run of whole blocks) into `out`.
using QuantizeFn = void (*)(const float* in, std::int64_t n, std::uint8_t* out);
// Dequantize n elements starting at `in` (whole blocks; I2_S: whole tensor incl. its scale).
using DequantizeFn = void (*)(const std::uint8_t* in, std::int64_t n, float* out);

struct TypeTraits {
    std::uint32_t id;
    std::string_view name;
    std::int64_t block_size;         // elements per block
    std::uint64_t bytes_per_block;   // bytes per block
    std::uint64_t per_tensor_extra;  // bytes appended once per tensor (I2_S: 32 = scale + pad)
    bool size_is_exact;              // false: the fork's nominal size does not describe the file
    bool usable;                     // the engine can dequantize it
    std::string_view note;           // why not usable / what to do, for messages
    QuantizeFn quantize;             // nullptr when the engine cannot write the type
    DequantizeFn dequantize;         // nullptr when the engine cannot read the type
};

// The traits for an id as read from a file, or nullopt for an id no known writer uses.
std::optional<TypeTraits> find_type(std::uint32_t id, FileProvenance provenance);
// The traits of a type the engine implements (never ambiguous). Throws for unknown ids.
const TypeTraits& traits(TypeId id);
// All known rows, for listings (`bitnet system`, docs).
std::vector<TypeTraits> all_types(FileProvenance provenance);

// Bytes a tensor of n elements occupies in a file. Throws bitnet::Error when n is not a
// multiple of the block size or the byte count overflows 64 bits.
std::uint64_t tensor_bytes(const TypeTraits& t, std::uint64_t n_elements);
// Bytes of one row of `row_length` elements (I2_S: without the per-tensor trailer).
std::uint64_t row_bytes(const TypeTraits& t, std::uint64_t row_length);

// Case-insensitive name lookup ("i2_s", "TQ2_0", ...) for command-line flags.
std::optional<TypeId> type_from_name(std::string_view name);

}  // namespace bitnet::quant

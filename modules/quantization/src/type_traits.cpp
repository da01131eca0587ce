// The type table. Sizes come from ggml-common.h (upstream) and bitnet.cpp's fork of ggml.c.
#include "bitnet/quantization/type_traits.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "bitnet/common/error.hpp"
#include "bitnet/quantization/formats.hpp"

namespace bitnet::quant {
namespace {

constexpr std::string_view kNotImplemented =
    "the engine does not implement this type; re-quantize the model to i2_s, tq2_0, tq1_0, q8_0 "
    "or f16";
constexpr std::string_view kTableLayout =
    "bitnet.cpp lookup-table layout tied to the kernel build that wrote it; use the I2_S file of "
    "the model or `bitnet convert IN OUT --to i2_s`";
constexpr std::string_view kActivationOnly =
    "bitnet.cpp activation type, never valid in a model file";

TypeTraits row(TypeId id, std::string_view name, std::int64_t block, std::uint64_t bytes,
               QuantizeFn q = nullptr, DequantizeFn dq = nullptr,
               std::string_view note = kNotImplemented) {
    return TypeTraits{static_cast<std::uint32_t>(id),
                      name,
                      block,
                      bytes,
                      0,
                      true,
                      dq != nullptr,
                      dq != nullptr ? std::string_view{} : note,
                      q,
                      dq};
}

const std::vector<TypeTraits>& common_rows() {
    static const std::vector<TypeTraits> rows = [] {
        std::vector<TypeTraits> r = {
            row(TypeId::F32, "F32", 1, 4, quantize_f32, dequantize_f32),
            row(TypeId::F16, "F16", 1, 2, quantize_f16, dequantize_f16),
            row(TypeId::Q4_0, "Q4_0", 32, 18, quantize_q4_0, dequantize_q4_0),
            row(TypeId::Q4_1, "Q4_1", 32, 20),
            row(TypeId::Q5_0, "Q5_0", 32, 22),
            row(TypeId::Q5_1, "Q5_1", 32, 24),
            row(TypeId::Q8_0, "Q8_0", 32, 34, quantize_q8_0, dequantize_q8_0),
            row(TypeId::Q8_1, "Q8_1", 32, 36),
            row(TypeId::Q2_K, "Q2_K", 256, 84),
            row(TypeId::Q3_K, "Q3_K", 256, 110),
            row(TypeId::Q4_K, "Q4_K", 256, 144),
            row(TypeId::Q5_K, "Q5_K", 256, 176),
            row(TypeId::Q6_K, "Q6_K", 256, 210, nullptr, dequantize_q6_k),
            row(TypeId::Q8_K, "Q8_K", 256, 292),
            row(TypeId::IQ2_XXS, "IQ2_XXS", 256, 66),
            row(TypeId::IQ2_XS, "IQ2_XS", 256, 74),
            row(TypeId::IQ3_XXS, "IQ3_XXS", 256, 98),
            row(TypeId::IQ1_S, "IQ1_S", 256, 50),
            row(TypeId::IQ4_NL, "IQ4_NL", 32, 18),
            row(TypeId::IQ3_S, "IQ3_S", 256, 110),
            row(TypeId::IQ2_S, "IQ2_S", 256, 82, nullptr, dequantize_iq2_s),
            row(TypeId::IQ4_XS, "IQ4_XS", 256, 136),
            row(TypeId::I8, "I8", 1, 1),
            row(TypeId::I16, "I16", 1, 2),
            row(TypeId::I32, "I32", 1, 4),
            row(TypeId::I64, "I64", 1, 8),
            row(TypeId::F64, "F64", 1, 8),
            row(TypeId::IQ1_M, "IQ1_M", 256, 56),
            row(TypeId::BF16, "BF16", 1, 2, quantize_bf16, dequantize_bf16),
            row(TypeId::TQ1_0, "TQ1_0", 256, 54, quantize_tq1_0, dequantize_tq1_0),
            row(TypeId::TQ2_0, "TQ2_0", 256, 66, quantize_tq2_0, dequantize_tq2_0),
        };
        // I2_S: 128 elements -> 32 bytes, plus the per-tensor scale trailer.
        TypeTraits i2s = row(TypeId::I2_S, "I2_S", kI2SBlock, 32, quantize_i2_s, dequantize_i2_s);
        i2s.per_tensor_extra = kI2STrailerBytes;
        r.push_back(i2s);
        TypeTraits i8s = row(TypeId::I8_S, "I8_S", 1, 1, nullptr, nullptr, kActivationOnly);
        r.push_back(i8s);
        // The fork declares TL1/TL2 as 1 byte per element, which does not describe the packed
        // file layout; the engine refuses them, so their extent is not checked exactly.
        TypeTraits tl1 = row(TypeId::TL1, "TL1", 1, 1, nullptr, nullptr, kTableLayout);
        tl1.size_is_exact = false;
        r.push_back(tl1);
        return r;
    }();
    return rows;
}

TypeTraits tl2_row() {
    TypeTraits tl2 = row(TypeId::TL2_OR_MXFP4, "TL2", 1, 1, nullptr, nullptr, kTableLayout);
    tl2.size_is_exact = false;
    return tl2;
}

TypeTraits mxfp4_row() {
    return row(TypeId::TL2_OR_MXFP4, "MXFP4", 32, 17);
}

}  // namespace

std::optional<TypeTraits> find_type(std::uint32_t id, FileProvenance provenance) {
    if (id == static_cast<std::uint32_t>(TypeId::TL2_OR_MXFP4)) {
        return provenance == FileProvenance::BitnetCpp ? tl2_row() : mxfp4_row();
    }
    for (const TypeTraits& t : common_rows()) {
        if (t.id != id) continue;
        // Ids 36..38 only exist in bitnet.cpp's fork; upstream never assigned them.
        if (id >= 36 && id <= 38 && provenance == FileProvenance::Upstream) return std::nullopt;
        return t;
    }
    return std::nullopt;
}

const TypeTraits& traits(TypeId id) {
    for (const TypeTraits& t : common_rows()) {
        if (t.id == static_cast<std::uint32_t>(id)) return t;
    }
    fail(ErrorCode::Internal, "traits(): type id " + std::to_string(static_cast<unsigned>(id)) +
                                  " is ambiguous or unknown; use find_type with a provenance");
}

std::vector<TypeTraits> all_types(FileProvenance provenance) {
    std::vector<TypeTraits> out;
    for (const TypeTraits& t : common_rows()) {
        if (t.id >= 36 && t.id <= 38 && provenance == FileProvenance::Upstream) continue;
        out.push_back(t);
    }
    out.push_back(provenance == FileProvenance::BitnetCpp ? tl2_row() : mxfp4_row());
    return out;
}

std::uint64_t tensor_bytes(const TypeTraits& t, std::uint64_t n_elements) {
    const auto block = static_cast<std::uint64_t>(t.block_size);
    if (n_elements % block != 0) {
        fail(ErrorCode::InvalidFormat, std::to_string(n_elements) +
                                           " elements is not a multiple of " + std::string(t.name) +
                                           "'s block size " + std::to_string(block));
    }
    const std::uint64_t blocks = n_elements / block;
    if (blocks > (UINT64_MAX - t.per_tensor_extra) / t.bytes_per_block) {
        fail(ErrorCode::InvalidFormat, "tensor of " + std::to_string(n_elements) + " " +
                                           std::string(t.name) + " elements overflows 64-bit size");
    }
    return blocks * t.bytes_per_block + t.per_tensor_extra;
}

std::uint64_t row_bytes(const TypeTraits& t, std::uint64_t row_length) {
    return row_length / static_cast<std::uint64_t>(t.block_size) * t.bytes_per_block;
}

std::optional<TypeId> type_from_name(std::string_view name) {
    std::string upper(name);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    for (const TypeTraits& t : common_rows()) {
        if (t.name == upper) return static_cast<TypeId>(t.id);
    }
    return std::nullopt;
}

}  // namespace bitnet::quant

// WeightView — a weight matrix as the kernels see it: a pointer into the memory-mapped file,
// its type and shape. No ownership, no copy.
#pragma once

#include <cstdint>

#include "bitnet/quantization/type_traits.hpp"

namespace bitnet::kernels {

struct WeightView {
    quant::TypeId type = quant::TypeId::F32;
    const std::uint8_t* data = nullptr;
    std::int64_t rows = 0;  // output features (ne[1])
    std::int64_t cols = 0;  // input features (ne[0], contiguous)
    float scale = 1.0f;     // I2_S: the per-tensor scale (read once at load)

    bool is_ternary() const {
        return type == quant::TypeId::I2_S || type == quant::TypeId::TQ2_0 ||
               type == quant::TypeId::TQ1_0;
    }
    // Bytes of one row (I2_S: without the per-tensor trailer).
    std::uint64_t row_bytes() const {
        return quant::row_bytes(quant::traits(type), static_cast<std::uint64_t>(cols));
    }
    const std::uint8_t* row(std::int64_t r) const {
        return data + static_cast<std::uint64_t>(r) * row_bytes();
    }
};

}  // namespace bitnet::kernels

#include "bitnet/kernels/ternary_dot.hpp"
#include "bitnet/quantization/formats.hpp"

namespace bitnet::kernels {

std::int32_t dot_i2s_i8_reference(const std::uint8_t* packed, const std::int8_t* q,
                                  std::int64_t n) {
    std::int32_t sum = 0;
    for (std::int64_t k = 0; k < n; ++k) sum += quant::i2s_code_at(packed, k) * q[k];
    return sum;
}

}  // namespace bitnet::kernels

// Compute kernels. For now: the scalar reference of the W1.58A8 integer dot product, the
// oracle every optimized CPU/GPU kernel of later issues is tested against.
#pragma once

#include <cstdint>

namespace bitnet::kernels {

// D = sum_k code_k * q_k over n elements of a packed I2_S row (x86 layout; n a multiple of
// 128; `packed` points at the row's first byte). Codes are 0..2; combine with the activation
// sum S and scales via quant::i2s_output to get the float result.
std::int32_t dot_i2s_i8_reference(const std::uint8_t* packed, const std::int8_t* q, std::int64_t n);

}  // namespace bitnet::kernels

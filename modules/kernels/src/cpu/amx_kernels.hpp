// I2_S products on AMX int8 tiles (internal; Sapphire Rapids and later). `tdpbusd` multiplies a
// 16 x 64 tile of unsigned bytes (here: weight codes 0..2, 16 rows) with a 64 x 16 tile of signed
// bytes (activations of 16 tokens) into 16 x 16 int32 sums: 16,384 multiply-adds per instruction,
// against 64 for one 512-bit vpdpbusd. Exact integers like every I2_S kernel (same D[t][r]).
#pragma once

#include <cstdint>

#include "i2s_kernels.hpp"

namespace bitnet::kernels::detail {

// Tokens per activation tile; products with fewer tokens use the VNNI kernels.
constexpr std::int64_t kAmxTokens = 16;

// Bytes of the activation tiles for `n_tokens` rows of `cols` (tokens rounded up to 16).
std::int64_t amx_activation_bytes(std::int64_t n_tokens, std::int64_t cols);
// Activation tiles of token group `group` (tokens 16 g .. 16 g + 15, zeros past n_tokens) from
// rows already in the VNNI kernel's order (i2s_prepare_activations with Avx512Vnni), the 64
// columns a tile covers then match the 64 codes one AVX-512 unpack step gives (see the .cpp).
void amx_arrange_activations(const std::int8_t* vnni_rows, std::int64_t n_tokens, std::int64_t cols,
                             std::int64_t group, std::int8_t* tiles);
// D = codes x activations for p.q in the layout above; p.cols a multiple of 256.
void i2s_dot_amx(const I2sProblem& p);

}  // namespace bitnet::kernels::detail

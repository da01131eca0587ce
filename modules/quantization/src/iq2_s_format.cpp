// IQ2_S (dequantize only), bit-exact with ggml's dequantize_row_iq2_s.
// Block of 256: f16 d; u8 qs[64] (32 grid-index low bytes, then 32 sign bytes); u8 qh[8]
// (2 high index bits per 8-element group); u8 scales[8] (two 4-bit sub-block scales each).
#include <cstdint>

#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::quant {
namespace detail {
extern const std::uint64_t kIq2sGrid[1024];
}

void dequantize_iq2_s(const std::uint8_t* in, std::int64_t n, float* out) {
    constexpr std::int64_t kBlockBytes = 82;
    for (std::int64_t b = 0; b < n / kQK_K; ++b) {
        const std::uint8_t* block = in + b * kBlockBytes;
        const float d = load_fp16(block);
        const std::uint8_t* qs = block + 2;
        const std::uint8_t* signs = qs + 32;
        const std::uint8_t* qh = block + 66;
        const std::uint8_t* scales = block + 74;
        float* y = out + b * kQK_K;
        for (int group32 = 0; group32 < 8; ++group32) {
            // Same evaluation order as ggml: (d * (0.5 + s)) * 0.25.
            const float db[2] = {d * (0.5f + static_cast<float>(scales[group32] & 0xf)) * 0.25f,
                                 d * (0.5f + static_cast<float>(scales[group32] >> 4)) * 0.25f};
            for (int l = 0; l < 4; ++l) {
                const float dl = db[l / 2];
                const unsigned index =
                    qs[l] | ((static_cast<unsigned>(qh[group32]) << (8 - 2 * l)) & 0x300u);
                const std::uint64_t grid = detail::kIq2sGrid[index];
                for (int j = 0; j < 8; ++j) {
                    const auto magnitude = static_cast<float>((grid >> (8 * j)) & 0xff);
                    y[j] = dl * magnitude * ((signs[l] >> j) & 1 ? -1.0f : 1.0f);
                }
                y += 8;
            }
            qs += 4;
            signs += 4;
        }
    }
}

}  // namespace bitnet::quant

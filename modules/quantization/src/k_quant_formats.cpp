// Q6_K (dequantize only): used for token embeddings in many published GGUF files.
// Block of 256: ql[128] low 4 bits, qh[64] high 2 bits, i8 scales[16], f16 d (ggml-common.h).
#include <cstring>

#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::quant {

void dequantize_q6_k(const std::uint8_t* in, std::int64_t n, float* out) {
    constexpr std::int64_t kBlockBytes = 210;
    for (std::int64_t b = 0; b < n / kQK_K; ++b) {
        const std::uint8_t* block = in + b * kBlockBytes;
        const std::uint8_t* ql = block;
        const std::uint8_t* qh = block + 128;
        const auto* sc = reinterpret_cast<const std::int8_t*>(block + 192);
        std::uint16_t d_bits;
        std::memcpy(&d_bits, block + 208, 2);
        const float d = fp16_to_fp32(d_bits);
        float* y = out + b * kQK_K;
        // Two halves of 128 elements; in each, element l + 32*k takes its low nibble from
        // ql[l + 32*(k&1)] (k<2: low nibble, k>=2: high) and its 2 high bits from qh[l] >> 2k.
        for (int half = 0; half < 2; ++half) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                // Same evaluation order as ggml: (d * scale) * q, in float.
                y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
                y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
                y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
                y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

}  // namespace bitnet::quant

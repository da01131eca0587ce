// Ternary formats: TQ2_0 and TQ1_0 (upstream ggml, block scales) and I2_S (bitnet.cpp,
// one per-tensor scale). Values are d*(c-1) with codes c in {0,1,2}.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::quant {
namespace {

constexpr std::int64_t kTQ2_0Bytes = 66;
constexpr std::int64_t kTQ1_0Bytes = 54;
constexpr std::uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};

float block_absmax(const float* x) {
    float amax = 0.0f;
    for (int j = 0; j < kQK_K; ++j) amax = std::max(amax, std::fabs(x[j]));
    return amax;
}

// Trit (0..2) of x relative to the block scale: lroundf(x/d) + 1, as ggml does.
std::uint8_t trit(float x, float inverse_scale) {
    return static_cast<std::uint8_t>(std::lroundf(x * inverse_scale) + 1);
}

// Packs base-3 digits (first most significant) into a byte as ceil(q * 256 / 243).
std::uint8_t pack_trits(std::uint8_t base3_number) {
    return static_cast<std::uint8_t>((static_cast<std::uint16_t>(base3_number) * 256 + 242) / 243);
}

// Digit n (0 = most significant) of a byte packed by pack_trits.
std::uint8_t unpack_trit(std::uint8_t byte, int n) {
    const std::uint8_t shifted = static_cast<std::uint8_t>(byte * kPow3[n]);
    return static_cast<std::uint8_t>((static_cast<std::uint16_t>(shifted) * 3) >> 8);
}

}  // namespace

void quantize_tq2_0(const float* in, std::int64_t n, std::uint8_t* out) {
    for (std::int64_t b = 0; b < n / kQK_K; ++b) {
        const float* x = in + b * kQK_K;
        std::uint8_t* block = out + b * kTQ2_0Bytes;
        const float d = block_absmax(x);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int chunk = 0; chunk < 2; ++chunk) {
            for (int m = 0; m < 32; ++m) {
                std::uint8_t byte = 0;
                for (int k = 0; k < 4; ++k) {
                    byte = static_cast<std::uint8_t>(
                        byte | ((trit(x[chunk * 128 + k * 32 + m], id) & 3) << (2 * k)));
                }
                block[chunk * 32 + m] = byte;
            }
        }
        store_fp16(block + 64, d);
    }
}

void tq2_0_block_codes(const std::uint8_t* block, std::uint8_t* codes) {
    for (int chunk = 0; chunk < 2; ++chunk)
        for (int k = 0; k < 4; ++k)
            for (int m = 0; m < 32; ++m)
                *codes++ = static_cast<std::uint8_t>((block[chunk * 32 + m] >> (2 * k)) & 3);
}

float tq2_0_block_scale(const std::uint8_t* block) {
    return load_fp16(block + 64);
}

void tq1_0_block_codes(const std::uint8_t* block, std::uint8_t* codes) {
    for (int k = 0; k < 5; ++k)
        for (int m = 0; m < 32; ++m) codes[32 * k + m] = unpack_trit(block[m], k);
    for (int k = 0; k < 5; ++k)
        for (int m = 0; m < 16; ++m) codes[160 + 16 * k + m] = unpack_trit(block[32 + m], k);
    for (int k = 0; k < 4; ++k)
        for (int j = 0; j < 4; ++j) codes[240 + 4 * k + j] = unpack_trit(block[48 + j], k);
}

float tq1_0_block_scale(const std::uint8_t* block) {
    return load_fp16(block + 52);
}

void dequantize_tq2_0(const std::uint8_t* in, std::int64_t n, float* out) {
    for (std::int64_t b = 0; b < n / kQK_K; ++b) {
        const std::uint8_t* block = in + b * kTQ2_0Bytes;
        const float d = load_fp16(block + 64);
        float* y = out + b * kQK_K;
        for (int chunk = 0; chunk < 2; ++chunk) {
            for (int k = 0; k < 4; ++k) {
                for (int m = 0; m < 32; ++m) {
                    const int code = (block[chunk * 32 + m] >> (2 * k)) & 3;
                    *y++ = static_cast<float>(code - 1) * d;
                }
            }
        }
    }
}

void quantize_tq1_0(const float* in, std::int64_t n, std::uint8_t* out) {
    for (std::int64_t b = 0; b < n / kQK_K; ++b) {
        const float* x = in + b * kQK_K;
        std::uint8_t* block = out + b * kTQ1_0Bytes;
        const float d = block_absmax(x);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        // Elements 0..159: byte m of qs[0..31] holds m + 32n, n = 0..4.
        for (int m = 0; m < 32; ++m) {
            std::uint8_t q = 0;
            for (int k = 0; k < 5; ++k)
                q = static_cast<std::uint8_t>(q * 3 + trit(x[m + 32 * k], id));
            block[m] = pack_trits(q);
        }
        // Elements 160..239: byte m of qs[32..47] holds 160 + m + 16n, n = 0..4.
        for (int m = 0; m < 16; ++m) {
            std::uint8_t q = 0;
            for (int k = 0; k < 5; ++k)
                q = static_cast<std::uint8_t>(q * 3 + trit(x[160 + m + 16 * k], id));
            block[32 + m] = pack_trits(q);
        }
        // Elements 240..255: byte j of qh holds 240 + j + 4n, n = 0..3, shifted one trit up.
        for (int j = 0; j < 4; ++j) {
            std::uint8_t q = 0;
            for (int k = 0; k < 4; ++k)
                q = static_cast<std::uint8_t>(q * 3 + trit(x[240 + j + 4 * k], id));
            block[48 + j] = pack_trits(static_cast<std::uint8_t>(q * 3));
        }
        store_fp16(block + 52, d);
    }
}

void dequantize_tq1_0(const std::uint8_t* in, std::int64_t n, float* out) {
    for (std::int64_t b = 0; b < n / kQK_K; ++b) {
        const std::uint8_t* block = in + b * kTQ1_0Bytes;
        const float d = load_fp16(block + 52);
        float* y = out + b * kQK_K;
        for (int k = 0; k < 5; ++k)
            for (int m = 0; m < 32; ++m)
                y[32 * k + m] = static_cast<float>(unpack_trit(block[m], k) - 1) * d;
        for (int k = 0; k < 5; ++k)
            for (int m = 0; m < 16; ++m)
                y[160 + 16 * k + m] = static_cast<float>(unpack_trit(block[32 + m], k) - 1) * d;
        for (int k = 0; k < 4; ++k)
            for (int j = 0; j < 4; ++j)
                y[240 + 4 * k + j] = static_cast<float>(unpack_trit(block[48 + j], k) - 1) * d;
    }
}

void pack_i2s_codes(const std::uint8_t* codes, std::int64_t n, std::uint8_t* packed) {
    for (std::int64_t block = 0; block < n / kI2SBlock; ++block) {
        const std::uint8_t* c = codes + block * kI2SBlock;
        for (int b = 0; b < 32; ++b) {
            packed[block * 32 + b] = static_cast<std::uint8_t>((c[b] << 6) | (c[b + 32] << 4) |
                                                               (c[b + 64] << 2) | c[b + 96]);
        }
    }
}

float i2s_scale(const std::uint8_t* tensor, std::int64_t n) {
    float scale;
    std::memcpy(&scale, tensor + n / 4, 4);
    return scale;
}

void quantize_i2_s(const float* in, std::int64_t n, std::uint8_t* out) {
    float scale = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(in[i]));
    std::uint8_t codes[kI2SBlock];
    for (std::int64_t block = 0; block < n / kI2SBlock; ++block) {
        for (int j = 0; j < kI2SBlock; ++j) {
            const float w = in[block * kI2SBlock + j];
            codes[j] = std::fabs(w) < 1e-6f ? 1 : (w > 0 ? 2 : 0);
        }
        pack_i2s_codes(codes, kI2SBlock, out + block * 32);
    }
    std::memset(out + n / 4, 0, kI2STrailerBytes);
    std::memcpy(out + n / 4, &scale, 4);
}

void dequantize_i2_s(const std::uint8_t* in, std::int64_t n, float* out) {
    const float scale = i2s_scale(in, n);
    for (std::int64_t j = 0; j < n; ++j) {
        out[j] = static_cast<float>(static_cast<int>(i2s_code_at(in, j)) - 1) * scale;
    }
}

}  // namespace bitnet::quant

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "bitnet/models/kv_cache.hpp"
#include "bitnet/quantization/fp16.hpp"

using namespace bitnet::models;

TEST_CASE("the KV cache keeps each head's positions contiguous and reads rows back") {
    ModelConfig config;
    config.block_count = 3;
    config.head_count = 6;
    config.head_count_kv = 3;
    config.head_dim = 4;
    const std::int64_t context = 5, row = 12;
    // Value of (layer, position, element) chosen so every slot is distinct and exact in F16.
    auto key = [](std::int64_t l, std::int64_t p, std::int64_t i) {
        return static_cast<float>(l * 100 + p * 16 + i);
    };
    for (const KvType type : {KvType::F16, KvType::F32}) {
        KvCache cache(config, context, type);
        CHECK(cache.row_size() == row);
        CHECK(cache.position_stride() == 4);
        for (std::int64_t l = 0; l < 3; ++l)
            for (std::int64_t p = 0; p < context; ++p) {
                std::vector<float> k(row), v(row);
                for (std::int64_t i = 0; i < row; ++i) {
                    k[static_cast<std::size_t>(i)] = key(l, p, i);
                    v[static_cast<std::size_t>(i)] = -key(l, p, i);
                }
                cache.write(l, p, k.data(), v.data());
            }
        for (std::int64_t l = 0; l < 3; ++l)
            for (std::int64_t p = 0; p < context; ++p) {
                std::vector<float> k(row), v(row);
                cache.read_k(l, p, k.data());
                cache.read_v(l, p, v.data());
                for (std::int64_t i = 0; i < row; ++i) {
                    CHECK(k[static_cast<std::size_t>(i)] == key(l, p, i));
                    CHECK(v[static_cast<std::size_t>(i)] == -key(l, p, i));
                }
                // Head h's run: position p at p * position_stride(), its head_dim values.
                for (std::int64_t h = 0; h < 3; ++h)
                    for (std::int64_t i = 0; i < 4; ++i) {
                        const std::int64_t at = p * cache.position_stride() + i;
                        const float expected = key(l, p, h * 4 + i);
                        if (type == KvType::F16) {
                            CHECK(bitnet::quant::fp16_to_fp32(cache.k_f16(l, h)[at]) == expected);
                            CHECK(bitnet::quant::fp16_to_fp32(cache.v_f16(l, h)[at]) == -expected);
                        } else {
                            CHECK(cache.k_f32(l, h)[at] == expected);
                            CHECK(cache.v_f32(l, h)[at] == -expected);
                        }
                    }
            }
    }
}

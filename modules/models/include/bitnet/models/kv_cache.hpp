// KvCache — keys (after RoPE) and values of every layer for one sequence, stored in F16 (the
// default, as llama.cpp/bitnet.cpp: values are rounded to half precision when written) or F32.
// Memory is reserved for the whole context up front but only touched as positions fill, so
// resident memory grows with use.
//
// Layout: layer, then KV head, then position — each head's keys (and values) of a layer are one
// contiguous run of positions, head_dim values each, so attention reads a head's cache as one
// stream the hardware prefetchers follow (with whole positions side by side, a head's piece of
// each position was a few cache lines at a stride, fetched late).
#pragma once

#include <cstdint>
#include <memory>

#include "bitnet/models/model_config.hpp"

namespace bitnet::models {

enum class KvType { F16, F32 };

class KvCache {
  public:
    KvCache(const ModelConfig& config, std::int64_t context, KvType type);

    std::int64_t context() const { return context_; }
    KvType type() const { return type_; }
    std::int64_t row_size() const { return row_; }  // n_kv_heads * head_dim values per position
    // Values from one position to the next within a head's run (= head_dim).
    std::int64_t position_stride() const { return head_dim_; }
    std::uint64_t bytes() const;

    // Stores one position's keys and values of `layer` (rounding to F16 if that is the type).
    void write(std::int64_t layer, std::int64_t position, const float* k, const float* v);
    // Reads them back as floats.
    void read_k(std::int64_t layer, std::int64_t position, float* out) const;
    void read_v(std::int64_t layer, std::int64_t position, float* out) const;
    // Position 0 of KV head `kv_head` of `layer`; position p is position_stride() values on.
    const std::uint16_t* k_f16(std::int64_t layer, std::int64_t kv_head) const;
    const std::uint16_t* v_f16(std::int64_t layer, std::int64_t kv_head) const;
    const float* k_f32(std::int64_t layer, std::int64_t kv_head) const;
    const float* v_f32(std::int64_t layer, std::int64_t kv_head) const;

    // Context shift: drops positions [keep, keep + discard) of the first `used` positions, moves
    // the later ones down and re-rotates their keys so they are valid at their new positions.
    void shift(std::int64_t used, std::int64_t keep, std::int64_t discard,
               const ModelConfig& config);

  private:
    std::uint64_t offset(std::int64_t layer, std::int64_t kv_head, std::int64_t position) const;
    std::int64_t layers_, context_, heads_, head_dim_, row_;
    KvType type_;
    std::unique_ptr<std::uint16_t[]> k16_, v16_;
    std::unique_ptr<float[]> k32_, v32_;
};

}  // namespace bitnet::models

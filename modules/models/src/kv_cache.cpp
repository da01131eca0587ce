#include "bitnet/models/kv_cache.hpp"

#include <cstring>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/kernels/ops.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::models {

KvCache::KvCache(const ModelConfig& config, std::int64_t context, KvType type)
    : layers_(config.block_count),
      context_(context),
      row_(static_cast<std::int64_t>(config.head_count_kv) * config.head_dim),
      type_(type) {
    if (context <= 0)
        fail(ErrorCode::InvalidArgument,
             "context size must be positive (got " + std::to_string(context) + ")");
    const std::uint64_t n = static_cast<std::uint64_t>(layers_) *
                            static_cast<std::uint64_t>(context_) * static_cast<std::uint64_t>(row_);
    try {
        // Default-initialised (not zeroed): untouched pages are never made resident.
        if (type == KvType::F16) {
            k16_.reset(new std::uint16_t[n]);
            v16_.reset(new std::uint16_t[n]);
        } else {
            k32_.reset(new float[n]);
            v32_.reset(new float[n]);
        }
    } catch (const std::bad_alloc&) {
        fail(ErrorCode::OutOfMemory, "cannot allocate the KV cache (" +
                                         std::to_string(2 * n * (type == KvType::F16 ? 2 : 4)) +
                                         " bytes for " + std::to_string(context) +
                                         " positions); use a smaller -c");
    }
}

std::uint64_t KvCache::bytes() const {
    return 2ull * static_cast<std::uint64_t>(layers_) * static_cast<std::uint64_t>(context_) *
           static_cast<std::uint64_t>(row_) * (type_ == KvType::F16 ? 2 : 4);
}

std::uint64_t KvCache::offset(std::int64_t layer, std::int64_t position) const {
    return (static_cast<std::uint64_t>(layer) * static_cast<std::uint64_t>(context_) +
            static_cast<std::uint64_t>(position)) *
           static_cast<std::uint64_t>(row_);
}

void KvCache::write(std::int64_t layer, std::int64_t position, const float* k, const float* v) {
    if (position < 0 || position >= context_)
        fail(ErrorCode::InvalidArgument, "KV cache position " + std::to_string(position) +
                                             " outside the context of " + std::to_string(context_));
    const std::uint64_t at = offset(layer, position);
    if (type_ == KvType::F16) {
        kernels::to_f16(k, k16_.get() + at, row_);
        kernels::to_f16(v, v16_.get() + at, row_);
    } else {
        std::memcpy(k32_.get() + at, k, static_cast<std::size_t>(row_) * 4);
        std::memcpy(v32_.get() + at, v, static_cast<std::size_t>(row_) * 4);
    }
}

void KvCache::read_k(std::int64_t layer, std::int64_t position, float* out) const {
    const std::uint64_t at = offset(layer, position);
    for (std::int64_t i = 0; i < row_; ++i)
        out[i] = type_ == KvType::F16
                     ? quant::fp16_to_fp32(k16_[at + static_cast<std::uint64_t>(i)])
                     : k32_[at + static_cast<std::uint64_t>(i)];
}

void KvCache::read_v(std::int64_t layer, std::int64_t position, float* out) const {
    const std::uint64_t at = offset(layer, position);
    for (std::int64_t i = 0; i < row_; ++i)
        out[i] = type_ == KvType::F16
                     ? quant::fp16_to_fp32(v16_[at + static_cast<std::uint64_t>(i)])
                     : v32_[at + static_cast<std::uint64_t>(i)];
}

const std::uint16_t* KvCache::k_f16(std::int64_t layer, std::int64_t position) const {
    return k16_.get() + offset(layer, position);
}
const std::uint16_t* KvCache::v_f16(std::int64_t layer, std::int64_t position) const {
    return v16_.get() + offset(layer, position);
}
const float* KvCache::k_f32(std::int64_t layer, std::int64_t position) const {
    return k32_.get() + offset(layer, position);
}
const float* KvCache::v_f32(std::int64_t layer, std::int64_t position) const {
    return v32_.get() + offset(layer, position);
}

void KvCache::shift(std::int64_t used, std::int64_t keep, std::int64_t discard,
                    const ModelConfig& config) {
    if (keep < 0 || discard <= 0 || keep + discard > used || used > context_)
        fail(ErrorCode::Internal, "invalid KV cache shift");
    std::vector<float> k(static_cast<std::size_t>(row_)), v(static_cast<std::size_t>(row_));
    for (std::int64_t layer = 0; layer < layers_; ++layer) {
        for (std::int64_t from = keep + discard; from < used; ++from) {
            read_k(layer, from, k.data());
            read_v(layer, from, v.data());
            // RoPE is a rotation by position * theta: moving back by `discard` positions is a
            // rotation by -discard * theta.
            kernels::rope_neox(k.data(), config.head_count_kv, config.head_dim, config.rope_dim,
                               -discard, config.rope_freq_base);
            write(layer, from - discard, k.data(), v.data());
        }
    }
}

}  // namespace bitnet::models

#include "bitnet/models/kv_cache.hpp"

#include <cstring>
#include <type_traits>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/kernels/ops.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::models {

KvCache::KvCache(const ModelConfig& config, std::int64_t context, KvType type)
    : layers_(config.block_count),
      context_(context),
      heads_(config.head_count_kv),
      head_dim_(config.head_dim),
      row_(heads_ * head_dim_),
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

std::uint64_t KvCache::offset(std::int64_t layer, std::int64_t kv_head,
                              std::int64_t position) const {
    return ((static_cast<std::uint64_t>(layer) * static_cast<std::uint64_t>(heads_) +
             static_cast<std::uint64_t>(kv_head)) *
                static_cast<std::uint64_t>(context_) +
            static_cast<std::uint64_t>(position)) *
           static_cast<std::uint64_t>(head_dim_);
}

void KvCache::write(std::int64_t layer, std::int64_t position, const float* k, const float* v) {
    if (position < 0 || position >= context_)
        fail(ErrorCode::InvalidArgument, "KV cache position " + std::to_string(position) +
                                             " outside the context of " + std::to_string(context_));
    for (std::int64_t h = 0; h < heads_; ++h) {
        const std::uint64_t at = offset(layer, h, position);
        const float* kh = k + h * head_dim_;
        const float* vh = v + h * head_dim_;
        if (type_ == KvType::F16) {
            kernels::to_f16(kh, k16_.get() + at, head_dim_);
            kernels::to_f16(vh, v16_.get() + at, head_dim_);
        } else {
            std::memcpy(k32_.get() + at, kh, static_cast<std::size_t>(head_dim_) * 4);
            std::memcpy(v32_.get() + at, vh, static_cast<std::size_t>(head_dim_) * 4);
        }
    }
}

namespace {

// One position's row (all heads) out of a head-major cache, as floats.
template <typename T>
void gather_row(const T* data, std::uint64_t first, std::uint64_t head_step, std::int64_t heads,
                std::int64_t head_dim, float* out) {
    for (std::int64_t h = 0; h < heads; ++h) {
        const T* src = data + first + static_cast<std::uint64_t>(h) * head_step;
        for (std::int64_t i = 0; i < head_dim; ++i) {
            if constexpr (std::is_same_v<T, std::uint16_t>)
                out[h * head_dim + i] = quant::fp16_to_fp32(src[i]);
            else
                out[h * head_dim + i] = src[i];
        }
    }
}

}  // namespace

void KvCache::read_k(std::int64_t layer, std::int64_t position, float* out) const {
    const std::uint64_t first = offset(layer, 0, position), step = offset(0, 1, 0);
    if (type_ == KvType::F16)
        gather_row(k16_.get(), first, step, heads_, head_dim_, out);
    else
        gather_row(k32_.get(), first, step, heads_, head_dim_, out);
}

void KvCache::read_v(std::int64_t layer, std::int64_t position, float* out) const {
    const std::uint64_t first = offset(layer, 0, position), step = offset(0, 1, 0);
    if (type_ == KvType::F16)
        gather_row(v16_.get(), first, step, heads_, head_dim_, out);
    else
        gather_row(v32_.get(), first, step, heads_, head_dim_, out);
}

const std::uint16_t* KvCache::k_f16(std::int64_t layer, std::int64_t kv_head) const {
    return k16_.get() + offset(layer, kv_head, 0);
}
const std::uint16_t* KvCache::v_f16(std::int64_t layer, std::int64_t kv_head) const {
    return v16_.get() + offset(layer, kv_head, 0);
}
const float* KvCache::k_f32(std::int64_t layer, std::int64_t kv_head) const {
    return k32_.get() + offset(layer, kv_head, 0);
}
const float* KvCache::v_f32(std::int64_t layer, std::int64_t kv_head) const {
    return v32_.get() + offset(layer, kv_head, 0);
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

#include "bitnet/models/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include <omp.h>

#include "bitnet/common/error.hpp"
#include "bitnet/kernels/attention_heads.hpp"
#include "bitnet/kernels/ops.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::models {
namespace {

using quant::TypeId;

kernels::WeightView view_of(const GgufFile& file, const GgufTensorInfo& t) {
    kernels::WeightView w;
    w.type = static_cast<TypeId>(t.type_id);
    w.data = t.data;
    w.cols = static_cast<std::int64_t>(t.ne[0]);
    w.rows = static_cast<std::int64_t>(t.rows());
    if (!t.traits.usable)
        fail(ErrorCode::Unsupported, file.path() + ": tensor '" + t.name + "' has type " +
                                         std::string(t.traits.name) + ": " +
                                         std::string(t.traits.note));
    if (w.type == TypeId::I2_S) {
        w.scale = quant::i2s_scale(t.data, static_cast<std::int64_t>(t.n_elements));
        if (!std::isfinite(w.scale))
            fail(ErrorCode::InvalidFormat,
                 file.path() + ": tensor '" + t.name +
                     "' has a non-finite I2_S scale; the file is corrupt");
    }
    return w;
}

const float* f32_of(const GgufFile& file, const std::string& name) {
    const GgufTensorInfo& t = file.tensor(name);
    if (t.type_id != static_cast<std::uint32_t>(TypeId::F32))
        fail(ErrorCode::Unsupported, file.path() + ": tensor '" + name + "' must be F32");
    return reinterpret_cast<const float*>(t.data);
}

float optional_scale(const GgufFile& file, std::uint32_t layer, const char* suffix) {
    const GgufTensorInfo* t = file.find_tensor(block_tensor_name(layer, suffix));
    if (t == nullptr) return 1.0f;
    float v;
    std::memcpy(&v, t->data, 4);
    if (!std::isfinite(v))
        fail(ErrorCode::InvalidFormat, file.path() + ": tensor '" + t->name + "' is not finite");
    return v;
}

void scale_in_place(float* x, std::int64_t n, float s) {
    if (s == 1.0f) return;
    for (std::int64_t i = 0; i < n; ++i) x[i] *= s;
}

// x += scale * (W in): an output projection added to the residual stream.
void add_projection(const kernels::Backend& backend, const kernels::WeightView& w, float scale,
                    const float* in, std::int64_t n, std::vector<float>& proj,
                    std::vector<float>& x) {
    backend.matmul(w, in, n, proj.data());
    scale_in_place(proj.data(), n * w.rows, scale);
    const auto size = static_cast<std::int64_t>(n * w.rows);
#pragma omp parallel for schedule(static) if (n > 1)
    for (std::int64_t i = 0; i < size; ++i)
        x[static_cast<std::size_t>(i)] += proj[static_cast<std::size_t>(i)];
}

// f(t) for every token row of a pass; rows run on the threads when there are several (prefill,
// batches): the per-row work between the products (norms, activations) would otherwise leave
// all but one core idle. Each row's arithmetic is unchanged, so the results are too. One row
// runs outside any parallel region, so f may open its own (one nested in an inactive region
// starts a second team of threads every time: 40x slower on the 2-core VM).
template <typename PerRow>
void for_each_row(std::int64_t n, PerRow f) {
    if (n == 1) {
        f(0);
        return;
    }
#pragma omp parallel for schedule(static)
    for (std::int64_t t = 0; t < n; ++t) f(t);
}

}  // namespace

Transformer::Transformer(std::shared_ptr<const GgufFile> file)
    : file_(std::move(file)), config_(read_model_config(*file_)) {
    const GgufFile& f = *file_;
    token_embd_ = view_of(f, f.tensor("token_embd.weight"));
    output_ = config_.tied_output ? token_embd_ : view_of(f, f.tensor("output.weight"));
    output_norm_ = f32_of(f, "output_norm.weight");
    for (std::uint32_t b = 0; b < config_.block_count; ++b) {
        auto w = [&](const char* s) { return view_of(f, f.tensor(block_tensor_name(b, s))); };
        LayerWeights l{};
        l.attn_norm = f32_of(f, block_tensor_name(b, "attn_norm.weight"));
        l.attn_sub_norm = f32_of(f, block_tensor_name(b, "attn_sub_norm.weight"));
        l.ffn_norm = f32_of(f, block_tensor_name(b, "ffn_norm.weight"));
        l.ffn_sub_norm = f32_of(f, block_tensor_name(b, "ffn_sub_norm.weight"));
        l.wq = w("attn_q.weight");
        l.wk = w("attn_k.weight");
        l.wv = w("attn_v.weight");
        l.wo = w("attn_output.weight");
        l.gate = w("ffn_gate.weight");
        l.up = w("ffn_up.weight");
        l.down = w("ffn_down.weight");
        l.scale_q = optional_scale(f, b, "attn_q.scale");
        l.scale_k = optional_scale(f, b, "attn_k.scale");
        l.scale_v = optional_scale(f, b, "attn_v.scale");
        l.scale_o = optional_scale(f, b, "attn_output.scale");
        l.scale_gate = optional_scale(f, b, "ffn_gate.scale");
        l.scale_up = optional_scale(f, b, "ffn_up.scale");
        l.scale_down = optional_scale(f, b, "ffn_down.scale");
        layers_.push_back(l);
    }
}

kernels::GpuModelDesc Transformer::gpu_description() const {
    kernels::GpuModelDesc d;
    d.hidden = static_cast<int>(config_.hidden);
    d.ffn = static_cast<int>(config_.ffn_hidden);
    d.heads = static_cast<int>(config_.head_count);
    d.kv_heads = static_cast<int>(config_.head_count_kv);
    d.head_dim = static_cast<int>(config_.head_dim);
    d.rope_dim = static_cast<int>(config_.rope_dim);
    d.rope_base = config_.rope_freq_base;
    d.rms_eps = config_.rms_eps;
    d.embedding = token_embd_;
    d.output = output_;
    d.output_norm = output_norm_;
    for (const LayerWeights& l : layers_) {
        d.layers.push_back({l.wq, l.wk, l.wv, l.wo, l.gate, l.up, l.down, l.attn_norm,
                            l.attn_sub_norm, l.ffn_norm, l.ffn_sub_norm});
        for (float s :
             {l.scale_q, l.scale_k, l.scale_v, l.scale_o, l.scale_gate, l.scale_up, l.scale_down})
            if (s != 1.0f) d.extra_scales = true;
    }
    return d;
}

std::vector<const kernels::WeightView*> Transformer::projection_weights() const {
    std::vector<const kernels::WeightView*> all;
    for (const LayerWeights& l : layers_)
        for (const kernels::WeightView* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down})
            all.push_back(w);
    return all;
}

std::uint64_t Transformer::weight_bytes_per_token() const {
    std::uint64_t total = static_cast<std::uint64_t>(output_.rows) * output_.row_bytes();
    for (const kernels::WeightView* w : projection_weights())
        total += static_cast<std::uint64_t>(w->rows) * w->row_bytes();
    return total;
}

namespace {

// Attention of one query head over positions 0 .. n_pos - 1 of one KV head. Two numerics:
//  - Standard: scores in f32, softmax (sums in double), f32 weighted sum of V — what ggml's
//    non-flash path computes; reproduces bitnet.cpp's prompt logits to ~1e-4.
//  - Flash: llama.cpp's CPU flash-attention (-fa): online softmax, and with an F16 cache the V
//    sum is accumulated in F16 (rounded after every position). bitnet.cpp's greedy continuation
//    in ../shared/fixtures/bitnet-cpp was produced this way (all 32 tokens reproduce with it).
// With an F16 cache the query is rounded to F16 first, as ggml converts it for the K dot product.
template <typename T>
void attend(const float* q, std::int64_t hd, std::int64_t n_pos, float scale, AttentionMode mode,
            const T* keys, const T* values, std::int64_t stride, std::vector<float>& scores,
            float* out) {
    constexpr bool f16 = std::is_same_v<T, std::uint16_t>;
    auto score = [&](std::int64_t p) {
        if constexpr (f16)
            return kernels::dot_f16_f32(keys + p * stride, q, hd);
        else
            return kernels::dot_f32(keys + p * stride, q, hd);
    };
    auto add_v = [&](std::int64_t p, float w) {
        if constexpr (f16)
            kernels::add_scaled_f16(out, values + p * stride, w, hd);
        else
            kernels::add_scaled_f32(out, values + p * stride, w, hd);
    };
    std::memset(out, 0, static_cast<std::size_t>(hd) * 4);
    if (mode == AttentionMode::Standard) {
        scores.resize(static_cast<std::size_t>(n_pos));
        // (the value sums in the order every backend uses: attention_order.hpp)
        if constexpr (f16) {
            kernels::dot_f16_f32_rows(keys, stride, n_pos, q, hd, scores.data());
            kernels::softmax(scores.data(), n_pos, scale);
            kernels::attention_values_f16(out, values, stride, scores.data(), n_pos, hd);
        } else {
            for (std::int64_t p = 0; p < n_pos; ++p) scores[static_cast<std::size_t>(p)] = score(p);
            kernels::softmax(scores.data(), n_pos, scale);
            kernels::attention_values_f32(out, values, stride, scores.data(), n_pos, hd);
        }
        return;
    }
    // Flash: running max, running sum, accumulator rescaled when the max grows.
    float sum = 0.0f, max = -INFINITY;
    for (std::int64_t p = 0; p < n_pos; ++p) {
        const float s = score(p) * scale;
        float ms = 1.0f, vs = 1.0f;
        if (s > max) {
            ms = std::exp(max - s);
            max = s;
            for (std::int64_t i = 0; i < hd; ++i) out[i] *= ms;
            if constexpr (f16) kernels::round_to_f16(out, hd);
        } else {
            vs = std::exp(s - max);
        }
        add_v(p, vs);
        if constexpr (f16) kernels::round_to_f16(out, hd);
        sum = sum * ms + vs;
    }
    const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    for (std::int64_t i = 0; i < hd; ++i) out[i] *= inv;
}

}  // namespace

namespace {

// Attention's per-thread scratch takes its full size once (decode allocates nothing after its
// first token).
void reserve_at_least(std::vector<float>& v, std::int64_t n) {
    if (v.capacity() < static_cast<std::size_t>(n)) v.reserve(static_cast<std::size_t>(n));
}

}  // namespace

void Transformer::reserve_attention_scratch(std::span<const BatchToken> batch,
                                            std::int64_t heads) const {
    std::int64_t context = 0;
    for (const BatchToken& b : batch) context = std::max(context, b.cache->context());
    const std::int64_t scores = heads * context, q = heads * config_.head_dim;
    const auto threads = static_cast<std::size_t>(std::max(1, omp_get_max_threads()));
    if (scratch_.thread_scores.size() < threads) {
        scratch_.thread_scores.resize(threads);
        scratch_.thread_q.resize(threads);
    }
    for (std::size_t t = 0; t < threads; ++t) {
        reserve_at_least(scratch_.thread_scores[t], scores);
        reserve_at_least(scratch_.thread_q[t], q);
    }
}

// The group jobs of attention_by_head_group: a KV head's whole group of query heads per job (its
// cached keys and values converted once for all of them), except where that would leave threads
// idle or unevenly loaded — decode has only n_kv groups per token — where the groups that do not
// fill a last round of the threads are split into smaller ones (power-of-two divisors of the
// group), dealt after the whole ones.
void plan_head_groups(std::int64_t n_tokens, std::int64_t n_kv, std::int64_t group, int threads,
                      std::vector<HeadGroupJob>& jobs) {
    jobs.clear();
    const std::int64_t units = n_tokens * n_kv;
    const std::int64_t whole = units >= 4 * threads ? units : units / threads * threads;
    std::int64_t split = 1;  // parts each remaining group is cut into
    while (split < group && group % (split * 2) == 0 && (units - whole) * split < threads)
        split *= 2;
    for (std::int64_t u = 0; u < units; ++u) {
        const std::int64_t t = u / n_kv, first = (u % n_kv) * group;
        const std::int64_t parts = u < whole ? 1 : split;
        for (std::int64_t part = 0; part < parts; ++part)
            jobs.push_back({t, first + part * (group / parts), group / parts});
    }
    // Whole groups first: with dynamic scheduling the small jobs then even out the threads.
    std::stable_partition(jobs.begin(), jobs.end(),
                          [group](const HeadGroupJob& j) { return j.heads == group; });
}

void Transformer::attention_by_head_group(std::int64_t layer, const float* q,
                                          std::span<const BatchToken> batch, float* out) const {
    const std::int64_t hd = config_.head_dim, n_head = config_.head_count,
                       n_kv = config_.head_count_kv;
    const std::int64_t group = n_head / n_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const auto n_tokens = static_cast<std::int64_t>(batch.size());
    std::vector<HeadGroupJob>& jobs = scratch_.head_groups;
    plan_head_groups(n_tokens, n_kv, group, omp_get_max_threads(), jobs);
    std::int64_t work = 0;
    for (const BatchToken& b : batch) work += b.position + 1;
    const auto n_jobs = static_cast<std::int64_t>(jobs.size());
    reserve_attention_scratch(batch, group);
#pragma omp parallel for schedule(dynamic, 1) if (n_jobs > 1 && work * n_head >= 256)
    for (std::int64_t j = 0; j < n_jobs; ++j) {
        const HeadGroupJob& job = jobs[static_cast<std::size_t>(j)];
        const BatchToken& b = batch[static_cast<std::size_t>(job.token)];
        const KvCache& cache = *b.cache;
        const std::int64_t n_pos = b.position + 1;  // causal: positions 0 .. position
        const std::int64_t kvh = job.first_head / group;
        const std::int64_t first = job.token * n_head + job.first_head;
        std::vector<float>& scores = scratch_.thread_scores[omp_get_thread_num()];
        std::vector<float>& qh = scratch_.thread_q[omp_get_thread_num()];
        // The query rounded to F16, as ggml converts it for the dot products with an F16 cache.
        qh.assign(q + first * hd, q + (first + job.heads) * hd);
        kernels::round_to_f16(qh.data(), job.heads * hd);
        scores.resize(static_cast<std::size_t>(job.heads * n_pos));
        kernels::attention_heads_f16(qh.data(), job.heads, cache.k_f16(layer, kvh),
                                     cache.v_f16(layer, kvh), cache.position_stride(), n_pos, hd,
                                     scale, scores.data(), out + first * hd);
    }
}

void Transformer::attention(std::int64_t layer, const float* q, std::span<const BatchToken> batch,
                            AttentionMode mode, float* out) const {
    const bool all_f16 = std::all_of(batch.begin(), batch.end(), [](const BatchToken& b) {
        return b.cache->type() == KvType::F16;
    });
    if (mode == AttentionMode::Standard && all_f16) {
        attention_by_head_group(layer, q, batch, out);
        return;
    }
    const std::int64_t hd = config_.head_dim, n_head = config_.head_count,
                       n_kv = config_.head_count_kv;
    const std::int64_t group = n_head / n_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const auto n_tokens = static_cast<std::int64_t>(batch.size());
    std::int64_t work = 0;
    for (const BatchToken& b : batch) work += b.position + 1;
    const std::int64_t jobs = n_tokens * n_head;
    reserve_attention_scratch(batch, 1);
    // Heads go to the threads from a few positions on (a parallel region costs a few
    // microseconds; one head's position ~0.1): in decode the other cores would otherwise wait.
#pragma omp parallel for schedule(dynamic, 1) if (jobs > 1 && work * n_head >= 256)
    for (std::int64_t job = 0; job < jobs; ++job) {
        const std::int64_t t = job / n_head, h = job % n_head;
        const BatchToken& b = batch[static_cast<std::size_t>(t)];
        const KvCache& cache = *b.cache;
        const std::int64_t n_pos = b.position + 1;  // causal: positions 0 .. position
        const std::int64_t kvh = h / group;         // query head h uses KV head h / group
        const std::int64_t stride = cache.position_stride();
        std::vector<float>& scores = scratch_.thread_scores[omp_get_thread_num()];
        std::vector<float>& qh = scratch_.thread_q[omp_get_thread_num()];
        qh.assign(q + (t * n_head + h) * hd, q + (t * n_head + h + 1) * hd);
        float* o = out + (t * n_head + h) * hd;
        if (cache.type() == KvType::F16) {
            kernels::round_to_f16(qh.data(), hd);
            attend(qh.data(), hd, n_pos, scale, mode, cache.k_f16(layer, kvh),
                   cache.v_f16(layer, kvh), stride, scores, o);
        } else {
            attend(qh.data(), hd, n_pos, scale, mode, cache.k_f32(layer, kvh),
                   cache.v_f32(layer, kvh), stride, scores, o);
        }
    }
}

void Transformer::forward(std::span<const std::int32_t> tokens, std::int64_t start, KvCache& cache,
                          const kernels::Backend& backend, LogitsFor which,
                          std::vector<float>& logits) const {
    const std::span<const BatchToken> batch = sequence_batch(tokens, start, cache);
    const auto n = static_cast<std::int64_t>(batch.size());
    run(batch, backend, which == LogitsFor::LastPosition ? n - 1 : 0, logits);
}

std::int32_t Transformer::forward_greedy(std::span<const std::int32_t> tokens, std::int64_t start,
                                         KvCache& cache, const kernels::Backend& backend) const {
    const std::span<const BatchToken> batch = sequence_batch(tokens, start, cache);
    const float* normed = run_layers(batch, backend, static_cast<std::int64_t>(batch.size()) - 1);
    return backend.matmul_argmax(output_, normed);
}

void Transformer::forward_top_k(std::span<const std::int32_t> tokens, std::int64_t start,
                                KvCache& cache, const kernels::Backend& backend,
                                const kernels::TopKRule& rule,
                                std::vector<kernels::ScoredRow>& out) const {
    const std::span<const BatchToken> batch = sequence_batch(tokens, start, cache);
    const float* normed = run_layers(batch, backend, static_cast<std::int64_t>(batch.size()) - 1);
    backend.matmul_top_k(output_, normed, rule, out);
}

std::span<const BatchToken> Transformer::sequence_batch(std::span<const std::int32_t> tokens,
                                                        std::int64_t start, KvCache& cache) const {
    const auto n = static_cast<std::int64_t>(tokens.size());
    if (n == 0) fail(ErrorCode::InvalidArgument, "forward() needs at least one token");
    if (start < 0 || start + n > cache.context())
        fail(ErrorCode::InvalidArgument,
             "positions " + std::to_string(start) + ".." + std::to_string(start + n - 1) +
                 " do not fit the context of " + std::to_string(cache.context()) + " tokens");
    std::vector<BatchToken>& batch = scratch_.batch;
    batch.clear();
    for (std::int64_t t = 0; t < n; ++t)
        batch.push_back({tokens[static_cast<std::size_t>(t)], start + t, &cache});
    return batch;
}

void Transformer::forward_batch(std::span<const BatchToken> batch, const kernels::Backend& backend,
                                std::vector<float>& logits) const {
    if (batch.empty()) fail(ErrorCode::InvalidArgument, "forward_batch() needs at least one token");
    for (const BatchToken& b : batch)
        if (b.cache == nullptr || b.position < 0 || b.position >= b.cache->context())
            fail(ErrorCode::InvalidArgument,
                 "batch position " + std::to_string(b.position) + " does not fit its KV cache");
    run(batch, backend, 0, logits);
}

const float* Transformer::run_layers(std::span<const BatchToken> batch,
                                     const kernels::Backend& backend,
                                     std::int64_t first_normed) const {
    const auto n = static_cast<std::int64_t>(batch.size());
    const std::int64_t h = config_.hidden, hd = config_.head_dim, ffn = config_.ffn_hidden;
    const std::int64_t q_dim = static_cast<std::int64_t>(config_.head_count) * hd;
    const std::int64_t kv_dim = static_cast<std::int64_t>(config_.head_count_kv) * hd;
    Scratch& s = scratch_;
    auto sized = [](std::vector<float>& v, std::int64_t size) -> std::vector<float>& {
        v.resize(static_cast<std::size_t>(size));
        return v;
    };
    std::vector<float>& x = sized(s.x, n * h);
    std::vector<float>& xn = sized(s.xn, n * h);
    std::vector<float>& q = sized(s.q, n * q_dim);
    std::vector<float>& k = sized(s.k, n * kv_dim);
    std::vector<float>& v = sized(s.v, n * kv_dim);
    std::vector<float>& att = sized(s.att, n * q_dim);
    std::vector<float>& proj = sized(s.proj, n * h);
    std::vector<float>& g = sized(s.g, n * ffn);
    std::vector<float>& u = sized(s.u, n * ffn);

    // RoPE's angles depend on the position only: once per row for all heads and layers.
    const std::int64_t half = config_.rope_dim / 2;
    std::vector<float>& rope_cos = sized(s.rope_cos, n * half);
    std::vector<float>& rope_sin = sized(s.rope_sin, n * half);
    for (std::int64_t t = 0; t < n; ++t)
        kernels::rope_angles(batch[static_cast<std::size_t>(t)].position, config_.rope_dim,
                             config_.rope_freq_base, rope_cos.data() + t * half,
                             rope_sin.data() + t * half);

    for (std::int64_t t = 0; t < n; ++t) {
        const std::int32_t id = batch[static_cast<std::size_t>(t)].token;
        if (id < 0 || id >= token_embd_.rows)
            fail(ErrorCode::InvalidArgument, "token id " + std::to_string(id) +
                                                 " is outside the embedding of " +
                                                 std::to_string(token_embd_.rows) + " rows");
        backend.get_row(token_embd_, id, x.data() + t * h);
    }

    for (std::size_t layer = 0; layer < layers_.size(); ++layer) {
        const LayerWeights& l = layers_[layer];
        for_each_row(n, [&](std::int64_t t) {
            kernels::rmsnorm(x.data() + t * h, l.attn_norm, h, config_.rms_eps, xn.data() + t * h);
        });
        const kernels::MatmulJob qkv[] = {{&l.wq, q.data()}, {&l.wk, k.data()}, {&l.wv, v.data()}};
        backend.matmul_many(qkv, xn.data(), n);
        scale_in_place(q.data(), n * q_dim, l.scale_q);
        scale_in_place(k.data(), n * kv_dim, l.scale_k);
        scale_in_place(v.data(), n * kv_dim, l.scale_v);
        for (std::int64_t t = 0; t < n; ++t) {
            const BatchToken& b = batch[static_cast<std::size_t>(t)];
            const float* cos = rope_cos.data() + t * half;
            const float* sin = rope_sin.data() + t * half;
            kernels::rope_neox_with(q.data() + t * q_dim, config_.head_count, hd, config_.rope_dim,
                                    cos, sin);
            kernels::rope_neox_with(k.data() + t * kv_dim, config_.head_count_kv, hd,
                                    config_.rope_dim, cos, sin);
            b.cache->write(static_cast<std::int64_t>(layer), b.position, k.data() + t * kv_dim,
                           v.data() + t * kv_dim);
        }
        attention(static_cast<std::int64_t>(layer), q.data(), batch, attention_mode_, att.data());
        for_each_row(n, [&](std::int64_t t) {
            kernels::rmsnorm(att.data() + t * q_dim, l.attn_sub_norm, q_dim, config_.rms_eps,
                             att.data() + t * q_dim);
        });
        add_projection(backend, l.wo, l.scale_o, att.data(), n, proj, x);

        for_each_row(n, [&](std::int64_t t) {
            kernels::rmsnorm(x.data() + t * h, l.ffn_norm, h, config_.rms_eps, xn.data() + t * h);
        });
        if (config_.ffn_activation == FfnActivation::ReluSquared && n > 1) {
            // Several rows: the backend applies relu^2 * up as the products come out (same
            // bits), then the sub-norm.
            backend.matmul_gate_relu_squared_up(l.gate, l.scale_gate, l.up, l.scale_up, xn.data(),
                                                n, g.data());
            for_each_row(n, [&](std::int64_t t) {
                float* row = g.data() + t * ffn;
                kernels::rmsnorm(row, l.ffn_sub_norm, ffn, config_.rms_eps, row);
            });
        } else {
            const kernels::MatmulJob gate_up[] = {{&l.gate, g.data()}, {&l.up, u.data()}};
            backend.matmul_many(gate_up, xn.data(), n);
            scale_in_place(g.data(), n * ffn, l.scale_gate);
            scale_in_place(u.data(), n * ffn, l.scale_up);
            // The activation and the sub-norm (decode: one pass over the row for relu^2, the
            // row's pieces on the threads).
            for_each_row(n, [&](std::int64_t t) {
                float* row = g.data() + t * ffn;
                if (config_.ffn_activation == FfnActivation::ReluSquared) {
                    kernels::relu_squared_mul_rmsnorm(row, u.data() + t * ffn, l.ffn_sub_norm, ffn,
                                                      config_.rms_eps, n == 1);
                } else {
                    kernels::silu_mul(row, u.data() + t * ffn, ffn);
                    kernels::rmsnorm(row, l.ffn_sub_norm, ffn, config_.rms_eps, row);
                }
            });
        }
        add_projection(backend, l.down, l.scale_down, g.data(), n, proj, x);
    }

    const std::int64_t rows = n - first_normed;
    for_each_row(rows, [&](std::int64_t r) {
        kernels::rmsnorm(x.data() + (first_normed + r) * h, output_norm_, h, config_.rms_eps,
                         xn.data() + r * h);
    });
    return xn.data();
}

void Transformer::run(std::span<const BatchToken> batch, const kernels::Backend& backend,
                      std::int64_t first_logits, std::vector<float>& logits) const {
    const float* normed = run_layers(batch, backend, first_logits);
    const std::int64_t rows = static_cast<std::int64_t>(batch.size()) - first_logits;
    logits.resize(static_cast<std::size_t>(rows * output_.rows));
    backend.matmul(output_, normed, rows, logits.data());
}

}  // namespace bitnet::models

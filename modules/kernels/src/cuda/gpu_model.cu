// GpuModel (gpu_model.hpp): the device-resident forward pass. Per layer, ten kernels (eleven
// when attention is split into scores and values, attention.hpp):
//   rmsnorm+quantize -> Q|K|V (one tensor-core launch) -> RoPE + KV write -> attention ->
//   sub-norm+quantize -> output projection added to the residual -> rmsnorm+quantize ->
//   gate|up with relu(gate)^2 * up in the epilogue -> sub-norm+quantize -> down added to the
//   residual;
// then the final norm (rounded to F16) and the F16 head. The matrix products are ternary_mma.cu,
// attention attention.cu, the rest gpu_layer_kernels.cu; a single row (below kFusedStepPositions
// where the step's long-context attention does not fit the shape) runs as one persistent kernel
// instead (decode_step.cu). Every token row has its own position and KV slot, so the same pass
// prefills a prompt, decodes one token, or decodes the next token of many sequences; for up to
// kMaxGraphRows rows the pass is captured once as a CUDA graph and replayed (positions, slots and
// tokens are read from device memory, copied in with one transfer per step), with programmatic
// dependent launch between its kernels on sm_90 (launch_control.cuh).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "attention.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"
#include "bitnet/kernels/gpu_model.hpp"
#include "bitnet/kernels/ops.hpp"
#include "bitnet/quantization/formats.hpp"
#include "cuda_memory.hpp"
#include "decode_step.hpp"
#include "gpu_layer_kernels.hpp"
#include "head_q8_0.hpp"
#include "head_screen.hpp"
#include "launch_control.cuh"
#include "sampling_kernels.hpp"
#include "ternary_mma.hpp"

namespace bitnet::kernels {
namespace {

constexpr int kMaxGraphRows = 64;
// Where the fused step cannot take the long-context attention (decode_step.cu), from this
// position on a single-row step runs the per-kernel pass: its split attention spreads the cache
// reads over a block per SM. H100, 2b4t, tg64 in tok/s fused / per-kernel (session
// 10): 502 / 468 after 1024 positions, 453 / 450 after 1300, 418 / 439 after 1500, 391 / 428
// after 1700, 354 / 409 after 2048, 233 / 329 after 3900.
constexpr int kFusedStepPositions = 1280;
// Split attention launches over spans this long (graph buckets: from 1025 positions) sum the
// values a chunk per block. H100, 2b4t, x8 / x32 tok/s chunked against not (session 16): after
// 512 positions 3008 / 8730 against 3123 / 8922, after 1000 2727 / 7101 against 2647 / 6576,
// after 2000 2302 / 4935 against 2002 / 4425, after 4000 1771 / 3138 against 1364 / 2209.
constexpr int kChunkedValuesFrom = 2048;

template <typename T>
class Buffer {
  public:
    Buffer() = default;
    ~Buffer() { cudaFree(ptr_); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    // (Re)allocates for `count` elements; `total` tracks the bytes held across buffers.
    void allocate(std::size_t count, const char* what, std::uint64_t& total) {
        release(total);
        const std::size_t bytes = count * sizeof(T);
        ptr_ = static_cast<T*>(cuda::device_alloc(bytes, what));
        total += bytes;
        bytes_ = bytes;
    }
    void release(std::uint64_t& total) {
        cudaFree(ptr_);
        ptr_ = nullptr;
        total -= bytes_;
        bytes_ = 0;
    }
    void upload(const void* host, std::size_t count) {
        BITNET_CUDA_CHECK(cudaMemcpy(ptr_, host, count * sizeof(T), cudaMemcpyHostToDevice));
    }
    T* get() const { return ptr_; }

  private:
    T* ptr_ = nullptr;
    std::size_t bytes_ = 0;
};

struct PackedWeight {
    Buffer<unsigned> words;
    int blocks = 0, padded_cols = 0;
    std::vector<int> first_block;
};

struct LayerOnDevice {
    PackedWeight qkv, wo, gate_up, down;
    float scale_q = 1, scale_k = 1, scale_v = 1, scale_o = 1, scale_gate = 1, scale_up = 1,
          scale_down = 1;
    Buffer<float> attn_norm, attn_sub_norm, ffn_norm, ffn_sub_norm;
};

// KV caches of `seqs` sequences x `context` positions for every layer, in one allocation.
struct KvPool {
    Buffer<std::uint16_t> k, v;
    int seqs = 0, context = 0;
    std::size_t layer_stride = 0;  // elements per layer (seqs * context * kv_dim)
};

class CudaModel final : public GpuModel {
  public:
    CudaModel(const GpuModelDesc& d, int device, int context) : d_(d), context_(context) {
        int count = 0;
        BITNET_CUDA_CHECK(cudaGetDeviceCount(&count));
        if (device < 0 || device >= count)
            fail(ErrorCode::Unsupported, "cuda:" + std::to_string(device) + " does not exist (" +
                                             std::to_string(count) + " device(s))");
        BITNET_CUDA_CHECK(cudaSetDevice(device));
        BITNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        cudaDeviceProp prop{};
        BITNET_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
        // Programmatic dependent launch needs sm_90; BITNET_CUDA_PDL=0 turns it off (to measure).
        const char* pdl = std::getenv("BITNET_CUDA_PDL");
        pdl_ = prop.major >= 9 && !(pdl != nullptr && std::string(pdl) == "0");
        shape_.heads = d.heads;
        shape_.kv_heads = d.kv_heads;
        shape_.head_dim = d.head_dim;
        shape_.rope_dim = d.rope_dim;
        shape_.scale = 1.0f / std::sqrt(static_cast<float>(d.head_dim));
        for (const GpuLayer& l : d.layers) {
            auto layer = std::make_unique<LayerOnDevice>();
            upload(cuda::pack_mma_stacked({&l.wq, &l.wk, &l.wv}), layer->qkv);
            upload(cuda::pack_mma_stacked({&l.wo}), layer->wo);
            upload(cuda::pack_mma_paired(l.gate, l.up), layer->gate_up);
            upload(cuda::pack_mma_stacked({&l.down}), layer->down);
            layer->scale_q = l.wq.scale;
            layer->scale_k = l.wk.scale;
            layer->scale_v = l.wv.scale;
            layer->scale_o = l.wo.scale;
            layer->scale_gate = l.gate.scale;
            layer->scale_up = l.up.scale;
            layer->scale_down = l.down.scale;
            upload_floats(l.attn_norm, d.hidden, layer->attn_norm);
            upload_floats(l.attn_sub_norm, d.heads * d.head_dim, layer->attn_sub_norm);
            upload_floats(l.ffn_norm, d.hidden, layer->ffn_norm);
            upload_floats(l.ffn_sub_norm, d.ffn, layer->ffn_sub_norm);
            layers_.push_back(std::move(layer));
        }
        allocate_pool(main_, 1, context);
        const std::size_t vocab = static_cast<std::size_t>(d.output.rows);
        embedding_.allocate(static_cast<std::size_t>(d.embedding.rows) * d.hidden, "embedding",
                            bytes_);
        embedding_.upload(d.embedding.data, static_cast<std::size_t>(d.embedding.rows) * d.hidden);
        if (d.output.type == quant::TypeId::Q8_0) {
            // --head q8_0: the re-quantized head, its codes and scales apart (aligned rows).
            const cuda::Q8_0Split split = cuda::split_q8_0(
                static_cast<const std::uint8_t*>(d.output.data), d.output.rows, d.hidden);
            head_codes_.allocate(split.codes.size(), "output head (Q8_0)", bytes_);
            head_codes_.upload(split.codes.data(), split.codes.size());
            head_scales_.allocate(split.scales.size(), "output head (Q8_0)", bytes_);
            head_scales_.upload(split.scales.data(), split.scales.size());
        } else if (d.output.data == d.embedding.data) {
            head_ = embedding_.get();
        } else {
            own_head_.allocate(vocab * d.hidden, "output head", bytes_);
            own_head_.upload(d.output.data, vocab * d.hidden);
            head_ = own_head_.get();
        }
        upload_floats(d.output_norm, d.hidden, output_norm_);
        // RoPE angles as the CPU computes them (the same function).
        const int half_dim = d.rope_dim / 2;
        std::vector<float> cos_t(static_cast<std::size_t>(context) * half_dim), sin_t(cos_t.size());
        for (int p = 0; p < context; ++p)
            rope_angles(p, d.rope_dim, d.rope_base,
                        cos_t.data() + static_cast<std::size_t>(p) * half_dim,
                        sin_t.data() + static_cast<std::size_t>(p) * half_dim);
        cos_table_.allocate(cos_t.size(), "RoPE tables", bytes_);
        cos_table_.upload(cos_t.data(), cos_t.size());
        sin_table_.allocate(sin_t.size(), "RoPE tables", bytes_);
        sin_table_.upload(sin_t.data(), sin_t.size());
        // BITNET_CUDA_ATTENTION_GROUP=1: one query head per attention block;
        // BITNET_CUDA_ATTENTION_SPLIT=0: no split scores / values kernels (both to compare).
        const char* group = std::getenv("BITNET_CUDA_ATTENTION_GROUP");
        const char* split = std::getenv("BITNET_CUDA_ATTENTION_SPLIT");
        const bool no_split = split != nullptr && std::string(split) == "0";
        // BITNET_CUDA_ATTENTION_CHUNKED=N: split launches over spans of N positions or more sum
        // the values a chunk per block (attention.cu).
        const char* chunked = std::getenv("BITNET_CUDA_ATTENTION_CHUNKED");
        attention_ = cuda::prepare_attention(
            context, shape_, group != nullptr ? std::atoi(group) : 0, no_split ? 0 : kMaxGraphRows,
            chunked != nullptr ? std::max(0, std::atoi(chunked)) : kChunkedValuesFrom);
        prepare_fused_step();
        prepare_screening_head();
    }
    ~CudaModel() override {
        print_profile();
        drop_graphs();
        cudaFreeHost(staging_);
        cudaStreamDestroy(stream_);
    }

    int context() const override { return context_; }
    std::uint64_t device_bytes() const override { return bytes_; }

    double measure_bandwidth_gbs() override {
        const std::size_t bytes = 512ull << 20;
        std::uint64_t scratch = 0;
        Buffer<char> a, b;
        a.allocate(bytes, "the bandwidth test", scratch);
        b.allocate(bytes, "the bandwidth test", scratch);
        BITNET_CUDA_CHECK(cudaMemsetAsync(a.get(), 1, bytes, stream_));
        cudaEvent_t begin, end;
        BITNET_CUDA_CHECK(cudaEventCreate(&begin));
        BITNET_CUDA_CHECK(cudaEventCreate(&end));
        BITNET_CUDA_CHECK(
            cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream_));
        constexpr int kRepeats = 20;
        BITNET_CUDA_CHECK(cudaEventRecord(begin, stream_));
        for (int i = 0; i < kRepeats; ++i)
            BITNET_CUDA_CHECK(cudaMemcpyAsync(i % 2 ? a.get() : b.get(), i % 2 ? b.get() : a.get(),
                                              bytes, cudaMemcpyDeviceToDevice, stream_));
        BITNET_CUDA_CHECK(cudaEventRecord(end, stream_));
        BITNET_CUDA_CHECK(cudaEventSynchronize(end));
        float ms = 0;
        BITNET_CUDA_CHECK(cudaEventElapsedTime(&ms, begin, end));
        cudaEventDestroy(begin);
        cudaEventDestroy(end);
        return 2.0 * static_cast<double>(bytes) * kRepeats / (ms * 1e-3) / 1e9;
    }

    void forward(const std::int32_t* tokens, int n, int start, bool all_logits,
                 float* logits) override {
        stage_rows(tokens, n, start);
        const int rows = all_logits ? n : 1;
        if (rows > kPinnedForwardRows) {
            run(n, main_, n - rows, logits, start, start + n);
            return;
        }
        // A few rows' logits land in pinned memory, then a host copy: a copy into the caller's
        // pageable buffer is staged by the driver, a slower round between two decode steps.
        const std::size_t floats = static_cast<std::size_t>(rows) * d_.output.rows;
        run(n, main_, n - rows, pinned(pinned_forward_, floats), start, start + n);
        std::memcpy(logits, pinned_forward_.data, floats * sizeof(float));
    }

    const float* forward_last(const std::int32_t* tokens, int n, int start) override {
        stage_rows(tokens, n, start);
        float* logits = pinned(pinned_forward_, static_cast<std::size_t>(d_.output.rows));
        run(n, main_, n - 1, logits, start, start + n);
        return logits;
    }

    std::int32_t forward_greedy(const std::int32_t* tokens, int n, int start) override {
        stage_rows(tokens, n, start);
        const bool fused = enqueue_pass(n, main_, n - 1, start, start + n);
        if (!(fused && head_in_step()))  // (the fused step's head leaves the token there)
            cuda::launch_argmax(logits_.get(), static_cast<int>(d_.output.rows),
                                greedy_token_.get(), argmax_work_.get(), stream_);
        BITNET_CUDA_CHECK(cudaMemcpyAsync(staging_, greedy_token_.get(), sizeof(int),
                                          cudaMemcpyDeviceToHost, stream_));
        finish_pass(fused);
        return staging_[0];  // (the staged rows are no longer needed: the pass has run)
    }

    void decode_greedy(std::int32_t token, int start, int count, std::int32_t* out) override {
        if (count < 1 || count > kMaxGreedySteps)
            fail(ErrorCode::InvalidArgument, "decode_greedy: " + std::to_string(count) +
                                                 " steps (1.." + std::to_string(kMaxGreedySteps) +
                                                 ")");
        // The fused step's launches back to back in one graph where it takes every step (its
        // head in the step, every position below fused_until_; not while profiling, whose
        // stamps are per launch): each launch reads the token the one before chose.
        const bool on_device = fused_grid_ > 0 && head_in_step() && stamps_.get() == nullptr &&
                               start >= 0 && start + count <= std::min(fused_until_, context_);
        if (!on_device || count == 1) {
            for (int i = 0; i < count; ++i) {
                token = forward_greedy(&token, 1, start + i);
                out[i] = token;
                if (token < 0) return;  // (every logit NaN: the caller reports it)
            }
            return;
        }
        stage_rows(&token, 1, start);
        cudaStream_t s = stream_;
        // (the barrier counter must not pass what stamp_period allows within the burst)
        if (steps_since_zero_ + count >= stamp_period_) {
            zero_sync_words(s);
            steps_since_zero_ = 0;
        }
        steps_since_zero_ += count;
        BITNET_CUDA_CHECK(
            cudaMemcpyAsync(rows_.get(), staging_, 3 * sizeof(int), cudaMemcpyHostToDevice, s));
        auto it = burst_graphs_.find(count);
        if (it == burst_graphs_.end()) {
            auto burst = [&] {
                for (int k = 0; k < count; ++k) enqueue_fused_step(main_, k, burst_tokens_.get());
            };
            it = burst_graphs_.emplace(count, capture(s, burst)).first;
        }
        BITNET_CUDA_CHECK(cudaGraphLaunch(it->second, s));
        std::int32_t* answer = pinned(pinned_burst_, static_cast<std::size_t>(count));
        BITNET_CUDA_CHECK(cudaMemcpyAsync(answer, burst_tokens_.get(), count * sizeof(int),
                                          cudaMemcpyDeviceToHost, s));
        BITNET_CUDA_CHECK(cudaStreamSynchronize(s));
        std::copy(answer, answer + count, out);
    }

    RowCandidates forward_top_k(const std::int32_t* tokens, int n, int start,
                                const RowChoice& choice,
                                const std::int32_t* penalized_ids) override {
        stage_rows(tokens, n, start);
        upload_choices(1, &choice, penalized_ids);
        const bool fused = enqueue_pass(n, main_, n - 1, start, start + n);
        choose_on_device(1);
        finish_pass(fused);
        return chosen(0);
    }

    // Rows of reserved sequences into the staging rows run() uploads.
    void stage_sequences(const std::int32_t* tokens, const int* positions, const int* seqs, int n) {
        if (n <= 0) fail(ErrorCode::InvalidArgument, "forward_sequences() needs a row");
        for (int i = 0; i < n; ++i)
            if (seqs[i] < 0 || seqs[i] >= batch_.seqs || positions[i] < 0 ||
                positions[i] >= batch_.context)
                fail(ErrorCode::InvalidArgument,
                     "row " + std::to_string(i) + ": sequence " + std::to_string(seqs[i]) +
                         " position " + std::to_string(positions[i]) + " is outside the " +
                         std::to_string(batch_.seqs) + " x " + std::to_string(batch_.context) +
                         " reserved on the GPU");
        stage(n);
        for (int i = 0; i < n; ++i) {
            staging_[i] = tokens[i];
            staging_[n + i] = positions[i];
            staging_[2 * n + i] = seqs[i];
        }
    }

    // The rows' choices go up before the pass is enqueued (the stream is idle after staging),
    // as words: top_k per row | id offsets per row and one past | penalties (float bits) | ids.
    void upload_choices(int rows, const RowChoice* choices, const std::int32_t* penalized_ids) {
        static_assert(sizeof(LogitCandidate) == 2 * sizeof(int));
        static_assert(kMaxGpuTopK <= cuda::kMaxDeviceTopK);
        std::vector<int> ks, offsets = {0}, penalties, ids;
        for (int r = 0; r < rows; ++r) {
            const RowChoice& c = choices[r];
            if (c.top_k < 1 || c.top_k > kMaxGpuTopK || c.penalized_begin < 0 ||
                c.penalized_end < c.penalized_begin)
                fail(ErrorCode::InvalidArgument,
                     "GPU choice of row " + std::to_string(r) + ": top_k must be 1.." +
                         std::to_string(kMaxGpuTopK) + " (got " + std::to_string(c.top_k) +
                         ") and the penalized ids a range");
            ks.push_back(c.top_k);
            int bits = 0;
            std::memcpy(&bits, &c.repeat_penalty, sizeof(bits));
            penalties.push_back(bits);
            if (c.repeat_penalty != 1.0f)
                ids.insert(ids.end(), penalized_ids + c.penalized_begin,
                           penalized_ids + c.penalized_end);
            offsets.push_back(static_cast<int>(ids.size()));
        }
        penalized_ = static_cast<int>(ids.size());
        choice_words_ = ks;
        for (const auto* part : {&offsets, &penalties, &ids})
            choice_words_.insert(choice_words_.end(), part->begin(), part->end());
        if (choice_words_.size() > choice_capacity_) {
            choice_params_.allocate(choice_words_.size(), "sampling choices", bytes_);
            choice_capacity_ = choice_words_.size();
        }
        choice_params_.upload(choice_words_.data(), choice_words_.size());
    }

    // Penalties and the top-k select on the logits of the pass's `rows` rows, their answers into
    // page-locked memory (chosen() reads them after finish_pass).
    void choose_on_device(int rows) {
        const int vocab = static_cast<int>(d_.output.rows);
        const int* words = choice_params_.get();
        if (penalized_ > 0)
            cuda::launch_penalize(logits_.get(), vocab, rows, words + rows, words + 3 * rows + 1,
                                  reinterpret_cast<const float*>(words + 2 * rows + 1), stream_);
        cuda::launch_top_k(logits_.get(), vocab, rows, words, top_k_.get(), stream_);
        const std::size_t ints = static_cast<std::size_t>(rows) * cuda::kTopKAnswerInts;
        BITNET_CUDA_CHECK(cudaMemcpyAsync(pinned(pinned_top_k_, ints), top_k_.get(),
                                          sizeof(int) * ints, cudaMemcpyDeviceToHost, stream_));
    }
    RowCandidates chosen(int row) const {
        const int* answer =
            pinned_top_k_.data + static_cast<std::size_t>(row) * cuda::kTopKAnswerInts;
        return {reinterpret_cast<const LogitCandidate*>(answer + 1), answer[0]};
    }

    // Tokens, positions and sequence 0 of the main cache into the staging rows run() uploads.
    void stage_rows(const std::int32_t* tokens, int n, int start) {
        if (n <= 0 || start < 0 || start + n > context_)
            fail(ErrorCode::InvalidArgument,
                 "positions " + std::to_string(start) + ".." + std::to_string(start + n - 1) +
                     " do not fit the GPU context of " + std::to_string(context_));
        stage(n);
        for (int i = 0; i < n; ++i) {
            staging_[i] = tokens[i];
            staging_[n + i] = start + i;
            staging_[2 * n + i] = 0;
        }
    }

    void reserve_sequences(int count, int context) override {
        if (count < 1 || context < 1 || context > context_)
            fail(ErrorCode::InvalidArgument,
                 "GPU sequences: " + std::to_string(count) + " x " + std::to_string(context) +
                     " positions (the context is at most " + std::to_string(context_) + ")");
        allocate_pool(batch_, count, context);
    }

    const float* forward_sequences(const std::int32_t* tokens, const int* positions,
                                   const int* seqs, int n, bool last_row_only) override {
        stage_sequences(tokens, positions, seqs, n);
        const int rows = last_row_only ? 1 : n;
        const std::size_t floats = static_cast<std::size_t>(rows) * d_.output.rows;
        float* logits = pinned(pinned_logits_, floats);
        run(n, batch_, n - rows, logits, positions[0],
            *std::max_element(positions, positions + n) + 1);
        return logits;
    }

    void forward_sequences_top_k(const std::int32_t* tokens, const int* positions, const int* seqs,
                                 int n, const RowChoice* choices, const std::int32_t* penalized_ids,
                                 std::vector<RowCandidates>& rows) override {
        stage_sequences(tokens, positions, seqs, n);
        upload_choices(n, choices, penalized_ids);
        const bool fused = enqueue_pass(n, batch_, 0, positions[0],
                                        *std::max_element(positions, positions + n) + 1);
        choose_on_device(n);
        finish_pass(fused);
        rows.clear();
        for (int i = 0; i < n; ++i) rows.push_back(chosen(i));
    }

  private:
    // Page-locked host memory for results, grown on demand.
    template <typename T>
    struct Pinned {
        T* data = nullptr;
        std::size_t size = 0;
        Pinned() = default;
        Pinned(const Pinned&) = delete;
        Pinned& operator=(const Pinned&) = delete;
        ~Pinned() { cudaFreeHost(data); }
    };
    template <typename T>
    static T* pinned(Pinned<T>& buffer, std::size_t count) {
        if (count > buffer.size) {
            cudaFreeHost(buffer.data);
            buffer.data = nullptr;
            buffer.size = 0;
            BITNET_CUDA_CHECK(cudaMallocHost(&buffer.data, count * sizeof(T)));
            buffer.size = count;
        }
        return buffer.data;
    }
    static constexpr int kPinnedForwardRows = 8;  // forward() rows copied through pinned memory

    // The single-token step as one persistent kernel (decode_step.hpp) where the shape fits;
    // BITNET_CUDA_FUSED_STEP=0 keeps the per-kernel step (to compare).
    void prepare_fused_step() {
        const char* env = std::getenv("BITNET_CUDA_FUSED_STEP");
        if (env != nullptr && std::string(env) == "0") return;
        std::string why;
        if (!cuda::decode_step_fits(d_.hidden, d_.ffn, shape_, context_, why)) return;
        std::vector<cuda::DecodeLayer> host;
        for (const auto& l : layers_) {
            cuda::DecodeLayer L;
            L.qkv = device_matrix(l->qkv);
            L.wo = device_matrix(l->wo);
            L.gate_up = device_matrix(l->gate_up);
            L.down = device_matrix(l->down);
            L.q_first = l->qkv.first_block[0];
            L.k_first = l->qkv.first_block[1];
            L.v_first = l->qkv.first_block[2];
            L.scale_q = l->scale_q;
            L.scale_k = l->scale_k;
            L.scale_v = l->scale_v;
            L.scale_o = l->scale_o;
            L.scale_gate = l->scale_gate;
            L.scale_up = l->scale_up;
            L.scale_down = l->scale_down;
            L.attn_norm = l->attn_norm.get();
            L.attn_sub_norm = l->attn_sub_norm.get();
            L.ffn_norm = l->ffn_norm.get();
            L.ffn_sub_norm = l->ffn_sub_norm.get();
            host.push_back(L);
        }
        decode_layers_.allocate(host.size(), "layer tables", bytes_);
        decode_layers_.upload(host.data(), host.size());
        // BITNET_CUDA_LONG_RANGES=N: at most N ranges per KV head, so short contexts run ranges
        // of several chunks as long ones do (tests).
        step_plan_ =
            cuda::prepare_decode_step(shape_, context_, std::getenv("BITNET_CUDA_LONG_ATTENTION"),
                                      std::getenv("BITNET_CUDA_LONG_RANGES"));
        fused_grid_ = step_plan_.grid;
        if (fused_grid_ == 0) return;
        // With the long-context attention the step runs at every position; without it (a shape
        // it does not take) only where its one block per head still beats the split kernels.
        fused_until_ = step_plan_.long_from < context_ ? context_ : kFusedStepPositions;
        const cuda::LongAttentionSizes sizes = cuda::long_attention_sizes(shape_, step_plan_);
        // The barrier's counter and the long attention's mailbox: zero at first, both only
        // growing from there until enqueue_pass zeroes them again (the counter in a buffer of
        // its own: every block polls it).
        barrier_.allocate(1, "the grid barrier", bytes_);
        burst_tokens_.allocate(kMaxGreedySteps, "decode_greedy's tokens", bytes_);
        step_head_work_.allocate(cuda::step_head_work_ints(step_plan_), "the step's argmax",
                                 bytes_);
        BITNET_CUDA_CHECK(cudaMemset(step_head_work_.get(), 0,
                                     sizeof(int) * cuda::step_head_work_ints(step_plan_)));
        mailbox_.allocate(sizes.mailbox_words, "attention mailbox", bytes_);
        mailbox_words_ = sizes.mailbox_words;
        zero_sync_words(nullptr);
        long_max_chunks_ = sizes.max_chunks;
        stamp_period_ = cuda::stamp_period(static_cast<int>(layers_.size()), step_plan_);
        const char* profile = std::getenv("BITNET_CUDA_STEP_PROFILE");
        if (profile != nullptr && std::string(profile) == "1")
            stamps_.allocate(stamp_count(), "profiling stamps", bytes_);
    }

    // BITNET_CUDA_STEP_PROFILE=1: where the fused step's time goes, per phase of a layer (from
    // the stamps the kernel writes at its grid barriers), printed when the model is released.
    static constexpr int kStepPhases = 5;
    // [0] start; per phase i: [1 + 2i] unused, [2 + 2i] block 0 leaving its barrier; then 4 marks
    // inside each phase and every block's arrival at each barrier (decode_step.cu).
    std::size_t stamp_count() const {
        return (1 + 6 * kStepPhases + kStepPhases * static_cast<std::size_t>(fused_grid_)) *
                   layers_.size() +
               1;
    }
    void collect_stamps() {
        std::vector<unsigned long long> t(stamp_count());
        BITNET_CUDA_CHECK(
            cudaMemcpy(t.data(), stamps_.get(), t.size() * sizeof(t[0]), cudaMemcpyDeviceToHost));
        const std::size_t detail = 1 + 2 * kStepPhases * layers_.size();
        const std::size_t arrivals = detail + 4 * kStepPhases * layers_.size();
        block_late_ns_.resize(kStepPhases * static_cast<std::size_t>(fused_grid_));
        unsigned long long left = t[0];
        for (std::size_t i = 0; i < kStepPhases * layers_.size(); ++i) {
            unsigned long long at = left;
            for (int k = 0; k < 4; ++k) {
                const unsigned long long m = t[detail + 4 * i + k];
                phase_marks_ns_[i % kStepPhases][k] += static_cast<double>(m - at);
                at = m;
            }
            // Each block's arrival at this phase's barrier, after block 0 left the last one.
            unsigned long long last = left;
            for (int b = 0; b < fused_grid_; ++b) {
                const unsigned long long arrived = t[arrivals + i * fused_grid_ + b];
                block_late_ns_[(i % kStepPhases) * fused_grid_ + b] +=
                    static_cast<double>(arrived - left);
                last = std::max(last, arrived);
            }
            phase_work_ns_[i % kStepPhases] += static_cast<double>(last - left);
            phase_wait_ns_[i % kStepPhases] += static_cast<double>(t[2 + 2 * i] - last);
            left = t[2 + 2 * i];
        }
        // The F16 head in the step: from block 0 leaving the last barrier to the argmax's end.
        if (head_in_step())
            head_ns_ += static_cast<double>(
                t[arrivals + kStepPhases * layers_.size() * fused_grid_] - left);
        ++profiled_steps_;
    }
    void print_profile() const {
        if (profiled_steps_ == 0) return;
        static const char* names[kStepPhases] = {"norm + Q|K|V", "RoPE + attention", "norm + O",
                                                 "norm + gate|up", "norm + down"};
        const double per = 1e-3 / (static_cast<double>(profiled_steps_) * layers_.size());
        std::fprintf(stderr, "fused step, %d steps, microseconds per layer (work / barrier):\n",
                     profiled_steps_);
        for (int i = 0; i < kStepPhases; ++i)
            std::fprintf(stderr, "  %-18s %7.2f / %5.2f   last block: %5.2f %5.2f %5.2f %5.2f\n",
                         names[i], phase_work_ns_[i] * per, phase_wait_ns_[i] * per,
                         phase_marks_ns_[i][0] * per, phase_marks_ns_[i][1] * per,
                         phase_marks_ns_[i][2] * per, phase_marks_ns_[i][3] * per);
        if (head_ns_ > 0)
            std::fprintf(stderr, "  final norm + F16 head + argmax: %.1f microseconds per step\n",
                         head_ns_ * 1e-3 / profiled_steps_);
        for (int i = 0; i < kStepPhases; ++i) {
            std::vector<std::pair<double, int>> late;
            for (int b = 0; b < fused_grid_; ++b)
                late.emplace_back(block_late_ns_[i * fused_grid_ + b] * per, b);
            std::sort(late.begin(), late.end());
            std::fprintf(
                stderr, "  %-18s arrival: first %5.2f (block %d), median %5.2f, slowest:", names[i],
                late.front().first, late.front().second, late[late.size() / 2].first);
            for (std::size_t k = late.size() - 6; k < late.size(); ++k)
                std::fprintf(stderr, " %5.2f (%d)", late[k].first, late[k].second);
            std::fprintf(stderr, "\n");
        }
    }

    static cuda::DecodeMatrix device_matrix(const PackedWeight& w) {
        return {w.words.get(), w.blocks, w.padded_cols};
    }

    // Launch `burst_step` of a burst of greedy steps (DecodeStep::step), its token also to
    // `tokens_out`.
    void enqueue_fused_step(const KvPool& pool, int burst_step = 0, int* tokens_out = nullptr) {
        void* s = stream_;
        cuda::DecodeStep step;
        step.embedding = reinterpret_cast<const std::uint16_t*>(embedding_.get());
        step.layers = decode_layers_.get();
        step.n_layers = static_cast<int>(layers_.size());
        step.hidden = d_.hidden;
        step.ffn = d_.ffn;
        step.shape = shape_;
        step.eps = d_.rms_eps;
        step.row = rows_.get();
        step.k_cache = pool.k.get();
        step.v_cache = pool.v.get();
        step.layer_stride = pool.layer_stride;
        step.seq_stride = static_cast<std::size_t>(pool.context) * d_.kv_heads * d_.head_dim;
        step.cos_table = cos_table_.get();
        step.sin_table = sin_table_.get();
        step.x = x_.get();
        step.q = q_.get();
        step.k = k_.get();
        step.v = v_.get();
        step.att = att_.get();
        step.g = g_.get();
        step.output_norm = output_norm_.get();
        step.out_half = xh_.get();
        step.barrier = barrier_.get();
        step.long_from = step_plan_.long_from;
        step.max_chunks = long_max_chunks_;
        step.long_ranges = step_plan_.long_ranges;
        step.mailbox = mailbox_.get();
        step.stamps = stamps_.get();
        if (head_in_step()) {
            step.head = head_;
            step.vocab = static_cast<int>(d_.output.rows);
            step.logits = logits_.get();
            step.greedy = greedy_token_.get();
            step.greedy_work = step_head_work_.get();
            step.step = burst_step;
            step.tokens_out = tokens_out;
            if (tokens_out != nullptr && head_codes_i8_.get() != nullptr) {
                // (greedy bursts only: nobody reads their logits)
                step.head_codes = head_codes_i8_.get();
                step.head_scale = head_row_scale_.get();
                step.head_slack = head_row_slack_.get();
            }
        }
        cuda::launch_decode_step(step, step_plan_, s);
        if (!head_in_step()) {
            const cuda::ProgrammaticLaunchScope overlap(pdl_);
            enqueue_head(x_.get(), 1, s);
        }
        BITNET_CUDA_CHECK(cudaGetLastError());
    }

    // The int8 screening head for greedy bursts (head_screen.hpp): where the fused step streams
    // an F16 head, its int8 copy (half the bytes) picks the rows worth computing from the F16
    // weights, with the same greedy token. BITNET_CUDA_SCREEN_HEAD=0 turns it off (to measure,
    // or to save its memory: vocab x hidden bytes).
    void prepare_screening_head() {
        const char* env = std::getenv("BITNET_CUDA_SCREEN_HEAD");
        if (env != nullptr && std::string(env) == "0") return;
        if (fused_grid_ == 0 || !head_in_step() || d_.hidden % 16 != 0) return;
        const std::size_t vocab = d_.output.rows;
        // An optimization only: where it would leave less than 512 MB of the device free for the
        // working buffers and other models, greedy steps read the whole F16 head instead.
        const std::size_t bytes = vocab * (d_.hidden + 2 * sizeof(float));
        std::size_t free = 0, total = 0;
        BITNET_CUDA_CHECK(cudaMemGetInfo(&free, &total));
        if (free < bytes + (std::size_t{512} << 20)) {
            log::info("cuda: no int8 screening head ({} MB; {} MB of the device free)", bytes >> 20,
                      free >> 20);
            return;
        }
        head_codes_i8_.allocate(vocab * d_.hidden, "the screening head (int8)", bytes_);
        head_row_scale_.allocate(vocab, "the screening head (int8)", bytes_);
        head_row_slack_.allocate(vocab, "the screening head (int8)", bytes_);
        cuda::launch_quantize_head_rows(head_, static_cast<int>(vocab), d_.hidden,
                                        head_codes_i8_.get(), head_row_scale_.get(),
                                        head_row_slack_.get(), stream_);
        BITNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    // The fused step's barrier counter and mailbox back to zero (on `stream`, before the next
    // step; nullptr: now, at set-up).
    void zero_sync_words(cudaStream_t stream) {
        const std::size_t mailbox_bytes = mailbox_words_ * sizeof(unsigned long long);
        if (stream == nullptr) {
            BITNET_CUDA_CHECK(cudaMemset(barrier_.get(), 0, sizeof(unsigned long long)));
            BITNET_CUDA_CHECK(cudaMemset(mailbox_.get(), 0, mailbox_bytes));
            return;
        }
        BITNET_CUDA_CHECK(cudaMemsetAsync(barrier_.get(), 0, sizeof(unsigned long long), stream));
        BITNET_CUDA_CHECK(cudaMemsetAsync(mailbox_.get(), 0, mailbox_bytes, stream));
    }

    void upload(const cuda::MmaPacked& packed, PackedWeight& out) {
        out.words.allocate(packed.words.size(), "ternary weights", bytes_);
        out.words.upload(packed.words.data(), packed.words.size());
        out.blocks = packed.blocks;
        out.padded_cols = packed.padded_cols;
        out.first_block = packed.first_block;
    }
    void upload_floats(const float* host, int count, Buffer<float>& out) {
        out.allocate(static_cast<std::size_t>(count), "norm weights", bytes_);
        out.upload(host, static_cast<std::size_t>(count));
    }
    void allocate_pool(KvPool& pool, int seqs, int context) {
        drop_graphs();  // captured graphs point at the old caches
        const std::size_t kv_dim = static_cast<std::size_t>(d_.kv_heads) * d_.head_dim;
        pool.k.release(bytes_);
        pool.v.release(bytes_);
        pool.layer_stride = static_cast<std::size_t>(seqs) * context * kv_dim;
        pool.k.allocate(pool.layer_stride * layers_.size(), "the KV cache", bytes_);
        pool.v.allocate(pool.layer_stride * layers_.size(), "the KV cache", bytes_);
        pool.seqs = seqs;
        pool.context = context;
    }
    cuda::KvLayer kv_layer(const KvPool& pool, std::size_t layer) const {
        const std::size_t kv_dim = static_cast<std::size_t>(d_.kv_heads) * d_.head_dim;
        return {pool.k.get() + layer * pool.layer_stride, pool.v.get() + layer * pool.layer_stride,
                static_cast<std::size_t>(pool.context) * kv_dim};
    }

    // Pinned host memory for tokens, positions and slots (3n ints) and device room for n rows.
    void stage(int n) {
        BITNET_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the staging area is free again
        if (n > staging_rows_) {
            cudaFreeHost(staging_);
            staging_ = nullptr;
            BITNET_CUDA_CHECK(cudaMallocHost(&staging_, 3 * static_cast<std::size_t>(n) * 4));
            staging_rows_ = n;
        }
        ensure_work(n);
    }

    // `position`: of the first row (a single row at a long position runs the per-kernel step);
    // `span`: positions the rows attend over at most (sizes the attention's shared memory).
    void run(int n, const KvPool& pool, int first_logits, float* logits, int position, int span) {
        const bool fused = enqueue_pass(n, pool, first_logits, position, span);
        const std::size_t vocab = static_cast<std::size_t>(d_.output.rows);
        BITNET_CUDA_CHECK(cudaMemcpyAsync(logits, logits_.get(),
                                          static_cast<std::size_t>(n - first_logits) * vocab * 4,
                                          cudaMemcpyDeviceToHost, stream_));
        finish_pass(fused);
    }

    // Uploads the staged rows and enqueues the pass (a captured graph for up to kMaxGraphRows
    // rows); returns whether it is the fused single-token step.
    bool enqueue_pass(int n, const KvPool& pool, int first_logits, int position, int span) {
        const bool fused = n == 1 && fused_grid_ > 0 && position < fused_until_;
        // Graphs replay at any position, so they are captured per power-of-two span (from 256):
        // a short conversation does not pay for the whole context's scores.
        if (fused) {
            span = 0;  // (the fused step sizes its own memory for the whole context)
        } else if (n <= kMaxGraphRows) {
            int bucket = 256;
            while (bucket < span) bucket *= 2;
            span = std::min(bucket, context_);
        }
        cudaStream_t s = stream_;
        if (fused && ++steps_since_zero_ >= stamp_period_) {
            zero_sync_words(s);
            steps_since_zero_ = 0;
        }
        BITNET_CUDA_CHECK(cudaMemcpyAsync(
            rows_.get(), staging_, 3 * static_cast<std::size_t>(n) * 4, cudaMemcpyHostToDevice, s));
        if (n <= kMaxGraphRows) {
            const auto key = std::make_tuple(n, &pool == &main_ ? 0 : 1, first_logits, fused, span);
            auto it = graphs_.find(key);
            if (it == graphs_.end()) {
                auto pass = [&] { enqueue(n, pool, first_logits, fused, span); };
                it = graphs_.emplace(key, capture(s, pass)).first;
            }
            BITNET_CUDA_CHECK(cudaGraphLaunch(it->second, s));
        } else {
            enqueue(n, pool, first_logits, fused, span);
        }
        return fused;
    }

    // The work `enqueue_all` puts on stream `s`, captured as a graph ready to launch.
    template <class EnqueueAll>
    static cudaGraphExec_t capture(cudaStream_t s, EnqueueAll&& enqueue_all) {
        BITNET_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        enqueue_all();
        cudaGraph_t graph = nullptr;
        BITNET_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
        cudaGraphExec_t exec = nullptr;
        const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        BITNET_CUDA_CHECK(status);
        return exec;
    }

    void finish_pass(bool fused) {
        BITNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
        if (fused && stamps_.get() != nullptr) collect_stamps();
    }

    // Every kernel of one forward pass over n rows, on the stream.
    void enqueue(int n, const KvPool& pool, int first_logits, bool fused, int span) {
        if (fused) {
            enqueue_fused_step(pool);
            return;
        }
        const int h = d_.hidden, ffn = d_.ffn;
        const int q_dim = d_.heads * d_.head_dim;
        const float eps = d_.rms_eps;
        void* s = stream_;
        const int* tokens = rows_.get();
        const cuda::RowPlaces places{rows_.get() + n, rows_.get() + 2 * n};
        cuda::launch_embed_rows(reinterpret_cast<const std::uint16_t*>(embedding_.get()), tokens, n,
                                h, x_.get(), s);
        // Each later kernel may launch while its predecessor finishes (single steps, which are
        // launch bound; the first kernel follows a copy and is launched normally).
        const cuda::ProgrammaticLaunchScope overlap(pdl_ && n <= kMaxGraphRows);
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            const LayerOnDevice& l = *layers_[i];
            const cuda::KvLayer kv = kv_layer(pool, i);
            quantize(x_.get(), l.attn_norm.get(), n, h, l.qkv.padded_cols);
            cuda::MmaEpilogue qkv;
            qkv.count = 3;
            qkv.seg[0] = {l.qkv.first_block[0], q_dim, l.scale_q, q_.get()};
            qkv.seg[1] = {l.qkv.first_block[1], d_.kv_heads * d_.head_dim, l.scale_k, k_.get()};
            qkv.seg[2] = {l.qkv.first_block[2], d_.kv_heads * d_.head_dim, l.scale_v, v_.get()};
            product(l.qkv, n, qkv);
            cuda::launch_rope_and_store(q_.get(), k_.get(), v_.get(), n, places, shape_,
                                        cos_table_.get(), sin_table_.get(), kv, s);
            cuda::launch_attention(q_.get(), n, places, shape_, kv, attention_, span, scores_.get(),
                                   att_.get(), s);
            quantize(att_.get(), l.attn_sub_norm.get(), n, q_dim, l.wo.padded_cols);
            cuda::MmaEpilogue add_o;
            add_o.kind = cuda::MmaOutput::AddInto;
            add_o.seg[0] = {0, h, l.scale_o, x_.get()};
            product(l.wo, n, add_o);
            quantize(x_.get(), l.ffn_norm.get(), n, h, l.gate_up.padded_cols);
            cuda::MmaEpilogue gate_up;
            gate_up.kind = cuda::MmaOutput::ReluSquaredPair;
            gate_up.count = 2;
            gate_up.seg[0] = {0, ffn, l.scale_gate, g_.get()};
            gate_up.seg[1] = {1, ffn, l.scale_up, nullptr};
            product(l.gate_up, n, gate_up);
            quantize(g_.get(), l.ffn_sub_norm.get(), n, ffn, l.down.padded_cols);
            cuda::MmaEpilogue add_down;
            add_down.kind = cuda::MmaOutput::AddInto;
            add_down.seg[0] = {0, h, l.scale_down, x_.get()};
            product(l.down, n, add_down);
        }
        const int rows = n - first_logits;
        const float* last = x_.get() + static_cast<std::size_t>(first_logits) * h;
        if (head_codes_.get() == nullptr)
            cuda::launch_rmsnorm_half(last, output_norm_.get(), rows, h, eps, xh_.get(), s);
        enqueue_head(last, rows, s);
        BITNET_CUDA_CHECK(cudaGetLastError());
    }

    // The logits of `rows` residual rows at x: the F16 head on xh_ (the final norm, already
    // rounded to F16 there), or the Q8_0 head after its own norm and quantization.
    void enqueue_head(const float* x, int rows, void* s) {
        const int vocab = static_cast<int>(d_.output.rows);
        if (head_codes_.get() == nullptr) {
            cuda::launch_f16_gemv(reinterpret_cast<const std::uint16_t*>(head_), vocab, d_.hidden,
                                  xh_.get(), rows, logits_.get(), s);
            return;
        }
        cuda::launch_rmsnorm_q8_0(x, output_norm_.get(), rows, d_.hidden, d_.rms_eps,
                                  head_q8_.get(), head_q8_scales_.get(), s);
        cuda::launch_q8_0_gemv(head_codes_.get(), head_scales_.get(), vocab, d_.hidden,
                               head_q8_.get(), head_q8_scales_.get(), rows, logits_.get(), s);
    }

    void quantize(const float* x, const float* weight, int n, int cols, int padded) {
        cuda::launch_rmsnorm_quantize(x, weight, n, cols, padded, d_.rms_eps, q8_.get(),
                                      act_scales_.get(), act_sums_.get(), stream_);
    }
    void product(const PackedWeight& w, int n, const cuda::MmaEpilogue& epilogue) {
        cuda::launch_ternary_mma(w.words.get(), w.blocks, w.padded_cols, q8_.get(),
                                 act_scales_.get(), act_sums_.get(), n, epilogue, stream_);
    }

    void drop_graphs() {
        for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
        graphs_.clear();
        for (auto& [count, exec] : burst_graphs_) cudaGraphExecDestroy(exec);
        burst_graphs_.clear();
    }

    // Working buffers for up to n token rows (grown on demand; a prefill may need more).
    void ensure_work(int n) {
        if (n <= work_rows_) return;
        drop_graphs();  // they point at the buffers about to be replaced
        const std::size_t rows = static_cast<std::size_t>(n);
        const std::size_t h = d_.hidden, ffn = d_.ffn, q_dim = d_.heads * d_.head_dim,
                          kv_dim = d_.kv_heads * d_.head_dim, vocab = d_.output.rows;
        const std::size_t widest = cuda::mma_padded_cols(std::max(std::max(h, ffn), q_dim));
        std::uint64_t& b = bytes_;
        rows_.allocate(3 * rows, "token ids and positions", b);
        greedy_token_.allocate(1, "the greedy token", b);
        argmax_work_.allocate(cuda::kArgmaxWorkInts, "the argmax work area", b);
        BITNET_CUDA_CHECK(cudaMemset(argmax_work_.get(), 0, sizeof(int) * cuda::kArgmaxWorkInts));
        top_k_.allocate(rows * cuda::kTopKAnswerInts, "top-k candidates", b);
        // (fewer than top_k candidates leave room that is copied back: zeroed, not uninitialized)
        BITNET_CUDA_CHECK(cudaMemset(top_k_.get(), 0, sizeof(int) * rows * cuda::kTopKAnswerInts));
        x_.allocate(rows * h, "activations", b);
        xh_.allocate(rows * h, "activations", b);
        if (head_codes_.get() != nullptr) {
            head_q8_.allocate(rows * h, "activations", b);
            head_q8_scales_.allocate(rows * h / 32, "activations", b);
        }
        q_.allocate(rows * q_dim, "activations", b);
        k_.allocate(rows * kv_dim, "activations", b);
        v_.allocate(rows * kv_dim, "activations", b);
        att_.allocate(rows * q_dim, "activations", b);
        scores_.allocate(
            std::max<std::size_t>(1, cuda::attention_score_floats(attention_, shape_, n)),
            "attention scores", b);
        g_.allocate(rows * ffn, "activations", b);
        q8_.allocate(rows * widest, "quantized activations", b);
        act_scales_.allocate(rows, "activation scales", b);
        act_sums_.allocate(rows, "activation sums", b);
        logits_.allocate(rows * vocab, "logits", b);
        work_rows_ = n;
    }

    GpuModelDesc d_;
    int context_;
    bool pdl_ = false;
    cuda::HeadShape shape_;
    cuda::AttentionPlan attention_;
    cudaStream_t stream_ = nullptr;
    std::uint64_t bytes_ = 0;
    std::vector<std::unique_ptr<LayerOnDevice>> layers_;
    KvPool main_, batch_;
    Buffer<std::uint16_t> embedding_, own_head_;
    const std::uint16_t* head_ = nullptr;  // F16 head (the embedding when tied)
    Buffer<std::int8_t> head_codes_;       // or the Q8_0 head (--head q8_0): codes and F16 scales
    Buffer<std::uint16_t> head_scales_;
    Buffer<std::int8_t> head_q8_;  // its input rows as Q8_0: codes and float scales
    Buffer<float> head_q8_scales_;
    Buffer<float> output_norm_, cos_table_, sin_table_;
    int work_rows_ = 0;
    Buffer<int> rows_;                   // tokens, positions, slots of the current rows
    Buffer<int> greedy_token_;           // forward_greedy()'s answer on the device
    Buffer<int> argmax_work_;            // launch_argmax's slices and ticket
    Buffer<int> step_head_work_;         // the fused step's argmax: its blocks' answers and ticket
    Buffer<int> burst_tokens_;           // decode_greedy's tokens, one launch's worth
    Buffer<std::int8_t> head_codes_i8_;  // prepare_screening_head()'s int8 head, or empty
    Buffer<float> head_row_scale_, head_row_slack_;
    // The fused step streams the F16 head itself (and picks the greedy token); the Q8_0 head
    // (--head q8_0) stays a kernel of its own after it, with its norm and quantization.
    bool head_in_step() const { return head_codes_.get() == nullptr; }
    Buffer<int> top_k_;  // the rows' chosen candidates on the device (pinned_top_k_'s layout)
    Buffer<int> choice_params_;  // upload_choices()'s words
    std::size_t choice_capacity_ = 0;
    std::vector<int> choice_words_;
    int penalized_ = 0;       // ids among choice_words_
    int* staging_ = nullptr;  // pinned: the same, on the host
    int staging_rows_ = 0;
    Pinned<float> pinned_logits_;   // forward_sequences() results
    Pinned<float> pinned_forward_;  // forward() results of a few rows
    Pinned<int> pinned_top_k_;      // per row: the count, then (logit bits, id) pairs
    Pinned<int> pinned_burst_;      // decode_greedy()'s tokens
    // (rows, pool, first logits, fused step, attention span)
    std::map<std::tuple<int, int, int, bool, int>, cudaGraphExec_t> graphs_;
    std::map<int, cudaGraphExec_t> burst_graphs_;  // decode_greedy's, by steps
    Buffer<float> x_, q_, k_, v_, att_, scores_, g_, act_scales_, logits_;
    Buffer<std::uint16_t> xh_;
    Buffer<int> act_sums_;
    Buffer<std::int8_t> q8_;
    Buffer<cuda::DecodeLayer> decode_layers_;  // the fused step's layer table
    Buffer<unsigned long long> barrier_, mailbox_;
    cuda::StepPlan step_plan_;
    int fused_grid_ = 0;   // blocks of the fused step; 0: not used
    int fused_until_ = 0;  // positions below which a single row takes the fused step
    int long_max_chunks_ = 0;
    std::size_t mailbox_words_ = 0;
    long long stamp_period_ = 0;  // fused steps between zeroings of barrier_ and mailbox_
    long long steps_since_zero_ = 0;
    Buffer<unsigned long long> stamps_;
    double phase_work_ns_[kStepPhases] = {}, phase_wait_ns_[kStepPhases] = {};
    double head_ns_ = 0;
    double phase_marks_ns_[kStepPhases][4] = {};
    std::vector<double> block_late_ns_;
    int profiled_steps_ = 0;
};

}  // namespace

bool gpu_model_supported(const GpuModelDesc& d, std::string& why) {
    if (d.embedding.type != quant::TypeId::F16 ||
        (d.output.type != quant::TypeId::F16 && d.output.type != quant::TypeId::Q8_0)) {
        why = "the embedding must be F16 and the output head F16 or Q8_0";
        return false;
    }
    if (d.output.type == quant::TypeId::Q8_0 && d.hidden % 32 != 0) {
        why = "a Q8_0 head needs rows a multiple of 32 wide";
        return false;
    }
    for (const GpuLayer& l : d.layers)
        for (const WeightView* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down})
            if (w->type != quant::TypeId::I2_S) {
                why = "the projections must be I2_S";
                return false;
            }
    if (d.extra_scales) {
        why = "per-projection scale tensors are not on the GPU path yet";
        return false;
    }
    if (d.hidden % 8 != 0 || d.head_dim % 8 != 0 || d.head_dim > 256 || d.heads % d.kv_heads != 0 ||
        d.rope_dim > d.head_dim) {
        why = "unsupported shape (hidden and head_dim must be multiples of 8, head_dim <= 256)";
        return false;
    }
    return true;
}

std::unique_ptr<GpuModel> make_gpu_model(const GpuModelDesc& desc, int device, int context) {
    std::string why;
    if (!gpu_model_supported(desc, why))
        fail(ErrorCode::Unsupported, "the GPU forward pass cannot run this model: " + why);
    return std::make_unique<CudaModel>(desc, device, context);
}

}  // namespace bitnet::kernels

// GpuModel (gpu_model.hpp): the device-resident forward pass. Per layer: rmsnorm -> int8
// quantization -> Q/K/V (dp4a) -> RoPE + KV cache write -> attention -> sub-norm -> quantize ->
// output projection -> residual; rmsnorm -> quantize -> gate/up -> relu(g)^2 * u -> sub-norm ->
// quantize -> down -> residual. Then the final norm and the F16 head. The CPU's rules are kept
// where they decide rounding (rmsnorm sums in double, RoPE angles by repeated multiplication,
// the query rounded to F16 against the F16 cache, the W1.58A8 output rule), so results track
// the CPU backend closely (tests/gpu checks greedy tokens and logits).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/kernels/gpu_model.hpp"
#include "bitnet/quantization/formats.hpp"
#include "cuda_kernels.hpp"
#include "cuda_memory.hpp"

namespace bitnet::kernels {
namespace {

constexpr int kThreads = 256;

__device__ double block_sum(double v, double* shared) {
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    if ((threadIdx.x & 31) == 0) shared[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < blockDim.x / 32 ? shared[threadIdx.x] : 0.0;
        for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (threadIdx.x == 0) shared[0] = v;
    }
    __syncthreads();
    const double total = shared[0];
    __syncthreads();
    return total;
}

__global__ void embed_rows(const __half* emb, const int* tokens, int hidden, float* x) {
    const __half* row = emb + static_cast<std::size_t>(tokens[blockIdx.x]) * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        x[static_cast<std::size_t>(blockIdx.x) * hidden + i] = __half2float(row[i]);
}

// out = x / sqrt(mean(x^2) + eps) * w, one block per row (out may be x).
__global__ void rmsnorm_rows(const float* x, const float* w, int cols, float eps, float* out) {
    __shared__ double shared[32];
    const float* xr = x + static_cast<std::size_t>(blockIdx.x) * cols;
    float* o = out + static_cast<std::size_t>(blockIdx.x) * cols;
    double s = 0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) s += static_cast<double>(xr[i]) * xr[i];
    const double total = block_sum(s, shared);
    const float mean = static_cast<float>(total / cols);
    const float scale = __fdiv_rn(1.0f, sqrtf(__fadd_rn(mean, eps)));
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
        o[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

// rmsnorm followed by the int8 quantization of its output, in one pass over the row (the
// normalized values are recomputed, identically, instead of stored): the same q and scale as
// rmsnorm_rows + quantize_rows, one launch and no f32 round trip through memory.
__global__ void rmsnorm_quantize(const float* x, const float* w, int cols, float eps,
                                 std::int8_t* q, float* scales) {
    __shared__ double shared[32];
    __shared__ float reduce[32];
    const float* xr = x + static_cast<std::size_t>(blockIdx.x) * cols;
    double s = 0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) s += static_cast<double>(xr[i]) * xr[i];
    const double total = block_sum(s, shared);
    const float mean = static_cast<float>(total / cols);
    const float scale = __fdiv_rn(1.0f, sqrtf(__fadd_rn(mean, eps)));
    float m = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
        m = fmaxf(m, fabsf(__fmul_rn(__fmul_rn(xr[i], scale), w[i])));
    for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if ((threadIdx.x & 31) == 0) reduce[threadIdx.x / 32] = m;
    __syncthreads();
    m = 0.0f;
    for (int k = 0; k < static_cast<int>(blockDim.x / 32); ++k) m = fmaxf(m, reduce[k]);
    const float a = static_cast<float>(127.0 / fmax(static_cast<double>(m), 1e-5));
    if (threadIdx.x == 0) scales[blockIdx.x] = a;
    std::int8_t* qr = q + static_cast<std::size_t>(blockIdx.x) * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        const float v = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
        qr[i] = static_cast<std::int8_t>(max(-128, min(127, __float2int_rn(__fmul_rn(v, a)))));
    }
}

// NeoX RoPE of q and k for token rows t (position start + t), then k and v into the F16 cache.
// cos/sin come from tables the host computed exactly as the CPU does (same float angles, same
// libm), so the rotation is bit-identical to the CPU backend's.
__global__ void rope_and_store(float* q, const float* k, const float* v, const int* start_ptr,
                               int heads, int kv_heads, int hd, int rope_dim,
                               const float* cos_table, const float* sin_table, __half* k_cache,
                               __half* v_cache) {
    const int t = blockIdx.x;
    const int pos = *start_ptr + t;
    const int half_dim = rope_dim / 2;
    const int q_dim = heads * hd, kv_dim = kv_heads * hd;
    __half* kc = k_cache + static_cast<std::size_t>(pos) * kv_dim;
    __half* vc = v_cache + static_cast<std::size_t>(pos) * kv_dim;
    for (int j = threadIdx.x; j < (heads + kv_heads) * half_dim; j += blockDim.x) {
        const int head = j / half_dim, i = j % half_dim;
        const float c = cos_table[static_cast<std::size_t>(pos) * half_dim + i];
        const float s = sin_table[static_cast<std::size_t>(pos) * half_dim + i];
        if (head < heads) {
            float* h = q + static_cast<std::size_t>(t) * q_dim + head * hd;
            const float x0 = h[i], x1 = h[i + half_dim];
            h[i] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
            h[i + half_dim] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
        } else {
            const int kh = head - heads;
            const float* h = k + static_cast<std::size_t>(t) * kv_dim + kh * hd;
            const float x0 = h[i], x1 = h[i + half_dim];
            kc[kh * hd + i] = __float2half_rn(__fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)));
            kc[kh * hd + i + half_dim] =
                __float2half_rn(__fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c)));
        }
    }
    // Dimensions past rope_dim, and all of v, are stored as they are.
    for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) {
        const int i = j % hd;
        if (i >= rope_dim) kc[j] = __float2half_rn(k[static_cast<std::size_t>(t) * kv_dim + j]);
        vc[j] = __float2half_rn(v[static_cast<std::size_t>(t) * kv_dim + j]);
    }
}

// One block per (query head, token): scores over positions 0..start+t, softmax, sum of V —
// in the CPU backend's order of operations (8-lane dot products reduced pairwise, products and
// sums rounded separately, V accumulated position by position), so the result matches it
// except where exp() itself rounds differently (computed in double here, then rounded).
__global__ void attention(const float* q, const __half* k_cache, const __half* v_cache,
                          const int* start_ptr, int heads, int kv_heads, int hd, float scale,
                          float* out) {
    extern __shared__ float smem[];  // hd (query) + positions (scores) floats
    const int h = blockIdx.x, t = blockIdx.y;
    const int n_pos = *start_ptr + t + 1;
    const int kvh = h / (heads / kv_heads);
    const int kv_dim = kv_heads * hd;
    float* qh = smem;
    float* scores = smem + hd;
    const float* qs = q + (static_cast<std::size_t>(t) * heads + h) * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x)
        qh[i] = __half2float(__float2half_rn(qs[i]));  // as ggml: the query meets F16 keys as F16
    __syncthreads();
    for (int p = threadIdx.x; p < n_pos; p += blockDim.x) {
        const __half* kp = k_cache + static_cast<std::size_t>(p) * kv_dim + kvh * hd;
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int i = 0;
        if (hd % 8 == 0 && (kvh * hd) % 8 == 0) {
            // 16-byte loads of 8 keys; the sums stay in the CPU's 8-lane order.
            for (; i + 8 <= hd; i += 8) {
                const uint4 raw = *reinterpret_cast<const uint4*>(kp + i);
                const __half* k8 = reinterpret_cast<const __half*>(&raw);
#pragma unroll
                for (int j = 0; j < 8; ++j)
                    lanes[j] = __fadd_rn(lanes[j], __fmul_rn(__half2float(k8[j]), qh[i + j]));
            }
        }
        for (; i + 8 <= hd; i += 8)
#pragma unroll
            for (int j = 0; j < 8; ++j)
                lanes[j] = __fadd_rn(lanes[j], __fmul_rn(__half2float(kp[i + j]), qh[i + j]));
        for (int j = 0; i < hd; ++i, ++j)
            lanes[j] = __fadd_rn(lanes[j], __fmul_rn(__half2float(kp[i]), qh[i]));
        const float dot =
            __fadd_rn(__fadd_rn(__fadd_rn(lanes[0], lanes[1]), __fadd_rn(lanes[2], lanes[3])),
                      __fadd_rn(__fadd_rn(lanes[4], lanes[5]), __fadd_rn(lanes[6], lanes[7])));
        scores[p] = __fmul_rn(dot, scale);
    }
    __syncthreads();
    __shared__ float reduce[32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    float m = -INFINITY;
    for (int p = threadIdx.x; p < n_pos; p += blockDim.x) m = fmaxf(m, scores[p]);
    for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if (lane == 0) reduce[warp] = m;
    __syncthreads();
    m = reduce[0];
    for (int w = 1; w < warps; ++w) m = fmaxf(m, reduce[w]);
    __syncthreads();
    double sum = 0;
    for (int p = threadIdx.x; p < n_pos; p += blockDim.x) {
        const float e = static_cast<float>(exp(static_cast<double>(__fsub_rn(scores[p], m))));
        scores[p] = e;
        sum += e;
    }
    __shared__ double dshared[32];
    const double total = block_sum(sum, dshared);
    const float inv = static_cast<float>(1.0 / total);
    for (int p = threadIdx.x; p < n_pos; p += blockDim.x) scores[p] = __fmul_rn(scores[p], inv);
    __syncthreads();
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        // Position by position as the CPU adds them; the loads of 8 positions are issued
        // together so their latency overlaps.
        const __half* vi = v_cache + kvh * hd + i;
        float acc = 0;
        int p = 0;
        for (; p + 8 <= n_pos; p += 8) {
            float vv[8];
#pragma unroll
            for (int j = 0; j < 8; ++j)
                vv[j] = __half2float(vi[static_cast<std::size_t>(p + j) * kv_dim]);
#pragma unroll
            for (int j = 0; j < 8; ++j) acc = __fadd_rn(acc, __fmul_rn(scores[p + j], vv[j]));
        }
        for (; p < n_pos; ++p)
            acc = __fadd_rn(
                acc, __fmul_rn(scores[p], __half2float(vi[static_cast<std::size_t>(p) * kv_dim])));
        out[(static_cast<std::size_t>(t) * heads + h) * hd + i] = acc;
    }
}

__global__ void relu2_mul(float* g, const float* u, std::size_t n) {
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const float r = fmaxf(g[i], 0.0f);
        g[i] = __fmul_rn(__fmul_rn(r, r), u[i]);
    }
}

__global__ void add_into(float* x, const float* y, std::size_t n) {
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
        x[i] = __fadd_rn(x[i], y[i]);
}

template <typename T>
class Buffer {
  public:
    Buffer() = default;
    ~Buffer() { cudaFree(ptr_); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    // (Re)allocates for `count` elements; `total` tracks the bytes held across buffers.
    void allocate(std::size_t count, const char* what, std::uint64_t& total) {
        const std::size_t bytes = count * sizeof(T);
        cudaFree(ptr_);
        ptr_ = nullptr;
        total -= bytes_;
        bytes_ = 0;
        ptr_ = static_cast<T*>(cuda::device_alloc(bytes, what));
        total += bytes;
        bytes_ = bytes;
    }
    void upload(const void* host, std::size_t count) {
        BITNET_CUDA_CHECK(cudaMemcpy(ptr_, host, count * sizeof(T), cudaMemcpyHostToDevice));
    }
    T* get() const { return ptr_; }

  private:
    T* ptr_ = nullptr;
    std::size_t bytes_ = 0;
};

struct TernaryWeight {
    Buffer<unsigned> words;
    int rows = 0, cols = 0;
    float scale = 1;
};

struct LayerOnDevice {
    TernaryWeight wq, wk, wv, wo, gate, up, down;
    Buffer<float> attn_norm, attn_sub_norm, ffn_norm, ffn_sub_norm;
    Buffer<__half> k_cache, v_cache;
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
        const int q_dim = d.heads * d.head_dim, kv_dim = d.kv_heads * d.head_dim;
        for (const GpuLayer& l : d.layers) {
            auto layer = std::make_unique<LayerOnDevice>();
            upload_ternary(l.wq, layer->wq);
            upload_ternary(l.wk, layer->wk);
            upload_ternary(l.wv, layer->wv);
            upload_ternary(l.wo, layer->wo);
            upload_ternary(l.gate, layer->gate);
            upload_ternary(l.up, layer->up);
            upload_ternary(l.down, layer->down);
            upload_floats(l.attn_norm, d.hidden, layer->attn_norm);
            upload_floats(l.attn_sub_norm, q_dim, layer->attn_sub_norm);
            upload_floats(l.ffn_norm, d.hidden, layer->ffn_norm);
            upload_floats(l.ffn_sub_norm, d.ffn, layer->ffn_sub_norm);
            layer->k_cache.allocate(static_cast<std::size_t>(context) * kv_dim, "the KV cache",
                                    bytes_);
            layer->v_cache.allocate(static_cast<std::size_t>(context) * kv_dim, "the KV cache",
                                    bytes_);
            layers_.push_back(std::move(layer));
        }
        const std::size_t vocab = static_cast<std::size_t>(d.output.rows);
        embedding_.allocate(static_cast<std::size_t>(d.embedding.rows) * d.hidden, "embedding",
                            bytes_);
        embedding_.upload(d.embedding.data, static_cast<std::size_t>(d.embedding.rows) * d.hidden);
        if (d.output.data == d.embedding.data) {
            head_ = embedding_.get();
        } else {
            own_head_.allocate(vocab * d.hidden, "output head", bytes_);
            own_head_.upload(d.output.data, vocab * d.hidden);
            head_ = own_head_.get();
        }
        upload_floats(d.output_norm, d.hidden, output_norm_);
        // RoPE angles as the CPU computes them (ops.cpp rope_neox): float theta advanced by
        // repeated multiplication, libm cos/sin.
        const int half_dim = d.rope_dim / 2;
        const float theta_scale = std::pow(d.rope_base, -2.0f / static_cast<float>(d.rope_dim));
        std::vector<float> cos_t(static_cast<std::size_t>(context) * half_dim), sin_t(cos_t.size());
        for (int p = 0; p < context; ++p) {
            float theta = static_cast<float>(p);
            for (int i = 0; i < half_dim; ++i) {
                cos_t[static_cast<std::size_t>(p) * half_dim + i] = std::cos(theta);
                sin_t[static_cast<std::size_t>(p) * half_dim + i] = std::sin(theta);
                theta *= theta_scale;
            }
        }
        start_dev_.allocate(1, "the position", bytes_);
        // Shared memory sized for the whole context lets one captured graph serve every step.
        const std::size_t smem = (static_cast<std::size_t>(d.head_dim) + context) * sizeof(float);
        if (smem <= 48 * 1024) fixed_attention_smem_ = smem;
        cos_table_.allocate(cos_t.size(), "RoPE tables", bytes_);
        cos_table_.upload(cos_t.data(), cos_t.size());
        sin_table_.allocate(sin_t.size(), "RoPE tables", bytes_);
        sin_table_.upload(sin_t.data(), sin_t.size());
    }
    ~CudaModel() override {
        if (graph_ != nullptr) cudaGraphExecDestroy(graph_);
        cudaFreeHost(staging_);
        cudaStreamDestroy(stream_);
    }

    int context() const override { return context_; }

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
    std::uint64_t device_bytes() const override { return bytes_; }

    void forward(const std::int32_t* tokens, int n, int start, bool all_logits,
                 float* logits) override {
        if (n <= 0 || start < 0 || start + n > context_)
            fail(ErrorCode::InvalidArgument,
                 "positions " + std::to_string(start) + ".." + std::to_string(start + n - 1) +
                     " do not fit the GPU context of " + std::to_string(context_));
        ensure_work(n);
        cudaStream_t s = stream_;
        // Token ids and the start position go through pinned memory, so a single-token step is
        // two small copies, one graph launch and the copy of the logits.
        if (n > staging_size_) {
            cudaFreeHost(staging_);
            staging_ = nullptr;
            BITNET_CUDA_CHECK(cudaMallocHost(&staging_, (n + 1) * sizeof(int)));
            staging_size_ = n;
        }
        BITNET_CUDA_CHECK(cudaStreamSynchronize(s));  // the staging area is free again
        staging_[0] = start;
        std::memcpy(staging_ + 1, tokens, n * sizeof(int));
        BITNET_CUDA_CHECK(
            cudaMemcpyAsync(start_dev_.get(), staging_, sizeof(int), cudaMemcpyHostToDevice, s));
        BITNET_CUDA_CHECK(cudaMemcpyAsync(tokens_.get(), staging_ + 1, n * sizeof(int),
                                          cudaMemcpyHostToDevice, s));
        const bool graphable = n == 1 && !all_logits && fixed_attention_smem_ > 0;
        if (graphable) {
            if (graph_ == nullptr) {
                BITNET_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
                enqueue(1, false, start);
                cudaGraph_t graph = nullptr;
                BITNET_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
                const cudaError_t status = cudaGraphInstantiate(&graph_, graph, 0);
                cudaGraphDestroy(graph);
                BITNET_CUDA_CHECK(status);
            }
            BITNET_CUDA_CHECK(cudaGraphLaunch(graph_, s));
        } else {
            enqueue(n, all_logits, start);
        }
        const int rows = all_logits ? n : 1;
        const int vocab = static_cast<int>(d_.output.rows);
        BITNET_CUDA_CHECK(cudaMemcpyAsync(logits, logits_.get(),
                                          static_cast<std::size_t>(rows) * vocab * sizeof(float),
                                          cudaMemcpyDeviceToHost, s));
        BITNET_CUDA_CHECK(cudaStreamSynchronize(s));
    }

  private:
    // Every kernel of one forward pass over n rows, on the stream (captured as a graph for n=1:
    // positions are read from start_dev_, so the same graph serves every step).
    void enqueue(int n, bool all_logits, int start) {
        const int h = d_.hidden, ffn = d_.ffn, hd = d_.head_dim;
        const int q_dim = d_.heads * hd;
        cudaStream_t s = stream_;
        embed_rows<<<n, kThreads, 0, s>>>(embedding_.get(), tokens_.get(), h, x_.get());
        const float attn_scale = 1.0f / sqrtf(static_cast<float>(hd));
        const std::size_t attn_smem =
            fixed_attention_smem_ > 0 ? fixed_attention_smem_ : (hd + start + n) * sizeof(float);
        for (const auto& l : layers_) {
            norm_quantize(x_.get(), l->attn_norm.get(), n, h);
            matmul(l->wq, n, q_.get());
            matmul(l->wk, n, k_.get());
            matmul(l->wv, n, v_.get());
            rope_and_store<<<n, kThreads, 0, s>>>(q_.get(), k_.get(), v_.get(), start_dev_.get(),
                                                  d_.heads, d_.kv_heads, hd, d_.rope_dim,
                                                  cos_table_.get(), sin_table_.get(),
                                                  l->k_cache.get(), l->v_cache.get());
            attention<<<dim3(d_.heads, n), 256, attn_smem, s>>>(
                q_.get(), l->k_cache.get(), l->v_cache.get(), start_dev_.get(), d_.heads,
                d_.kv_heads, hd, attn_scale, att_.get());
            norm_quantize(att_.get(), l->attn_sub_norm.get(), n, q_dim);
            matmul(l->wo, n, proj_.get());
            add_into<<<64, kThreads, 0, s>>>(x_.get(), proj_.get(),
                                             static_cast<std::size_t>(n) * h);
            norm_quantize(x_.get(), l->ffn_norm.get(), n, h);
            matmul(l->gate, n, g_.get());
            matmul(l->up, n, u_.get());
            relu2_mul<<<128, kThreads, 0, s>>>(g_.get(), u_.get(),
                                               static_cast<std::size_t>(n) * ffn);
            norm_quantize(g_.get(), l->ffn_sub_norm.get(), n, ffn);
            matmul(l->down, n, proj_.get());
            add_into<<<64, kThreads, 0, s>>>(x_.get(), proj_.get(),
                                             static_cast<std::size_t>(n) * h);
        }
        const int first = all_logits ? 0 : n - 1, rows = n - first;
        rmsnorm_rows<<<rows, kThreads, 0, s>>>(x_.get() + static_cast<std::size_t>(first) * h,
                                               output_norm_.get(), h, d_.rms_eps, xn_.get());
        cuda::launch_to_half(xn_.get(), static_cast<std::size_t>(rows) * h,
                             reinterpret_cast<std::uint16_t*>(xh_.get()), s);
        cuda::launch_f16_matmul(
            reinterpret_cast<const std::uint16_t*>(head_), static_cast<int>(d_.output.rows), h,
            reinterpret_cast<const std::uint16_t*>(xh_.get()), rows, logits_.get(), s);
        BITNET_CUDA_CHECK(cudaGetLastError());
    }

    void upload_ternary(const WeightView& w, TernaryWeight& out) {
        const std::vector<unsigned> packed = cuda::pack_i2s_rows(w);
        out.words.allocate(packed.size(), "ternary weights", bytes_);
        out.words.upload(packed.data(), packed.size());
        out.rows = static_cast<int>(w.rows);
        out.cols = static_cast<int>(w.cols);
        out.scale = w.scale;
    }
    void upload_floats(const float* host, int count, Buffer<float>& out) {
        out.allocate(static_cast<std::size_t>(count), "norm weights", bytes_);
        out.upload(host, static_cast<std::size_t>(count));
    }
    void norm_quantize(const float* x, const float* weight, int n, int cols) {
        rmsnorm_quantize<<<n, 1024, 0, stream_>>>(x, weight, cols, d_.rms_eps, q8_.get(),
                                                  act_scales_.get());
        padded_ = cols;
    }
    void matmul(const TernaryWeight& w, int n, float* y) {
        cuda::launch_i2s_matmul(w.words.get(), w.rows, w.cols / 16, q8_.get(), padded_,
                                act_scales_.get(), n, w.scale, y, stream_);
    }
    // Working buffers for up to n token rows (grown on demand; a prefill may need more).
    void ensure_work(int n) {
        if (n <= work_rows_) return;
        if (graph_ != nullptr) {  // it points at the buffers about to be replaced
            cudaGraphExecDestroy(graph_);
            graph_ = nullptr;
        }
        const std::size_t rows = static_cast<std::size_t>(n);
        const std::size_t h = d_.hidden, ffn = d_.ffn, q_dim = d_.heads * d_.head_dim,
                          kv_dim = d_.kv_heads * d_.head_dim, vocab = d_.output.rows;
        const std::size_t widest = std::max(std::max(h, ffn), q_dim);
        std::uint64_t& b = bytes_;
        tokens_.allocate(rows, "token ids", b);
        x_.allocate(rows * h, "activations", b);
        xn_.allocate(rows * widest, "activations", b);
        xh_.allocate(rows * h, "activations", b);
        q_.allocate(rows * q_dim, "activations", b);
        k_.allocate(rows * kv_dim, "activations", b);
        v_.allocate(rows * kv_dim, "activations", b);
        att_.allocate(rows * q_dim, "activations", b);
        proj_.allocate(rows * h, "activations", b);
        g_.allocate(rows * ffn, "activations", b);
        u_.allocate(rows * ffn, "activations", b);
        q8_.allocate(rows * widest, "quantized activations", b);
        act_scales_.allocate(rows, "activation scales", b);
        logits_.allocate(rows * vocab, "logits", b);
        work_rows_ = n;
    }

    GpuModelDesc d_;
    int context_;
    cudaStream_t stream_ = nullptr;
    std::uint64_t bytes_ = 0;
    std::vector<std::unique_ptr<LayerOnDevice>> layers_;
    Buffer<__half> embedding_, own_head_;
    const __half* head_ = nullptr;
    Buffer<float> output_norm_, cos_table_, sin_table_;
    int work_rows_ = 0, padded_ = 0;
    Buffer<int> tokens_, start_dev_;
    int* staging_ = nullptr;  // pinned: start position, then token ids
    int staging_size_ = 0;
    cudaGraphExec_t graph_ = nullptr;
    std::size_t fixed_attention_smem_ = 0;  // attention's shared memory for any position
    Buffer<float> x_, xn_, q_, k_, v_, att_, proj_, g_, u_, act_scales_, logits_;
    Buffer<__half> xh_;
    Buffer<std::int8_t> q8_;
};

}  // namespace

bool gpu_model_supported(const GpuModelDesc& d, std::string& why) {
    if (d.embedding.type != quant::TypeId::F16 || d.output.type != quant::TypeId::F16) {
        why = "the embedding and output head must be F16";
        return false;
    }
    for (const GpuLayer& l : d.layers)
        for (const WeightView* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down})
            if (w->type != quant::TypeId::I2_S || w->cols % 16 != 0) {
                why = "the projections must be I2_S with rows a multiple of 16";
                return false;
            }
    if (d.hidden % 2 != 0 || d.head_dim > 256 || d.heads % d.kv_heads != 0) {
        why = "unsupported head shape";
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

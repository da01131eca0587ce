// The CUDA backend (see cuda_backend.hpp): device memory, weight upload and repacking, and the
// per-product flow — copy activations in, quantize, launch, copy results out.
#include <cuda_runtime.h>

#include <cstring>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"
#include "bitnet/kernels/cuda_backend.hpp"
#include "bitnet/quantization/formats.hpp"
#include "cuda_kernels.hpp"
#include "cuda_memory.hpp"
#include "ternary_mma.hpp"

namespace bitnet::kernels {
namespace {

// Device memory, grown on demand (allocation failures name the sizes: cuda_memory.hpp).
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    ~DeviceBuffer() { cudaFree(ptr_); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_) {
        o.ptr_ = nullptr;
        o.size_ = 0;
    }

    void reserve(std::size_t bytes, const char* what) {
        if (bytes <= size_) return;
        cudaFree(ptr_);
        ptr_ = nullptr;
        size_ = 0;
        ptr_ = cuda::device_alloc(bytes, what);
        size_ = bytes;
    }
    template <typename T>
    T* as() const {
        return static_cast<T*>(ptr_);
    }

  private:
    void* ptr_ = nullptr;
    std::size_t size_ = 0;
};

struct DeviceWeight {
    quant::TypeId type;
    std::int64_t rows, cols;
    float scale = 1.0f;
    int blocks = 0, padded_cols = 0;  // I2_S: the tensor-core layout (ternary_mma.hpp)
    DeviceBuffer data;
};

class CudaBackend final : public Backend {
  public:
    CudaBackend(int device, int cpu_threads)
        : device_(device), cpu_(make_cpu_backend(cpu_threads)) {
        int count = 0;
        const cudaError_t status = cudaGetDeviceCount(&count);
        if (status != cudaSuccess)
            fail(ErrorCode::Unsupported, std::string("cuda:") + std::to_string(device) +
                                             " requested, but the CUDA runtime says: " +
                                             cudaGetErrorString(status) + "; use --device cpu");
        if (device < 0 || device >= count)
            fail(ErrorCode::Unsupported, "cuda:" + std::to_string(device) + " requested, but " +
                                             std::to_string(count) +
                                             " CUDA device(s) are present; use --device cpu or "
                                             "cuda:0..");
        BITNET_CUDA_CHECK(cudaSetDevice(device));
        cudaDeviceProp prop{};
        BITNET_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
        device_name_ = prop.name;
        sm_ = std::to_string(prop.major) + std::to_string(prop.minor);
        BITNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    }
    ~CudaBackend() override {
        weights_.clear();
        cudaStreamDestroy(stream_);
    }

    void matmul(const WeightView& w, const float* x, std::int64_t n, float* y) const override {
        if (n <= 0) return;
        const DeviceWeight* dw = upload(w);
        if (dw == nullptr) {  // a type without a GPU kernel yet
            cpu_->matmul(w, x, n, y);
            return;
        }
        BITNET_CUDA_CHECK(cudaSetDevice(device_));
        const std::size_t in_bytes = static_cast<std::size_t>(n * w.cols) * sizeof(float);
        const std::size_t out_bytes = static_cast<std::size_t>(n * w.rows) * sizeof(float);
        x_.reserve(in_bytes, "activations");
        y_.reserve(out_bytes, "outputs");
        BITNET_CUDA_CHECK(
            cudaMemcpyAsync(x_.as<void>(), x, in_bytes, cudaMemcpyHostToDevice, stream_));
        if (dw->type == quant::TypeId::I2_S) {
            const int padded = dw->padded_cols;
            q_.reserve(static_cast<std::size_t>(n) * padded, "quantized activations");
            scales_.reserve(static_cast<std::size_t>(n) * sizeof(float), "activation scales");
            sums_.reserve(static_cast<std::size_t>(n) * sizeof(int), "activation sums");
            cuda::launch_quantize_rows(x_.as<float>(), static_cast<int>(n),
                                       static_cast<int>(w.cols), padded, q_.as<std::int8_t>(),
                                       scales_.as<float>(), sums_.as<int>(), stream_);
            BITNET_CUDA_CHECK(cudaGetLastError());
            cuda::MmaEpilogue epilogue;
            epilogue.seg[0] = {0, static_cast<int>(dw->rows), dw->scale, y_.as<float>()};
            cuda::launch_ternary_mma(dw->data.as<unsigned>(), dw->blocks, padded,
                                     q_.as<std::int8_t>(), scales_.as<float>(), sums_.as<int>(),
                                     static_cast<int>(n), epilogue, stream_);
        } else {  // F16
            const std::size_t count = static_cast<std::size_t>(n * w.cols);
            half_.reserve(count * 2, "half activations");
            cuda::launch_to_half(x_.as<float>(), count, half_.as<std::uint16_t>(), stream_);
            BITNET_CUDA_CHECK(cudaGetLastError());
            cuda::launch_f16_matmul(dw->data.as<std::uint16_t>(), static_cast<int>(dw->rows),
                                    static_cast<int>(dw->cols), half_.as<std::uint16_t>(),
                                    static_cast<int>(n), y_.as<float>(), stream_);
        }
        BITNET_CUDA_CHECK(cudaGetLastError());
        BITNET_CUDA_CHECK(
            cudaMemcpyAsync(y, y_.as<void>(), out_bytes, cudaMemcpyDeviceToHost, stream_));
        BITNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    void get_row(const WeightView& w, std::int64_t index, float* out) const override {
        cpu_->get_row(w, index, out);
    }
    std::string name() const override { return "cuda"; }
    std::vector<std::string> kernel_names() const override {
        return {"i2_s int8 tensor cores (cuda:" + std::to_string(device_) + " " + device_name_ +
                    ", sm_" + sm_ + ")",
                "f16 fp32-accumulate (cuda)", "other types: " + cpu_->name()};
    }

  private:
    // The device copy of `w`, made on first use; nullptr for types that stay on the CPU.
    const DeviceWeight* upload(const WeightView& w) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const Key key{w.data, w.type, w.rows, w.cols};
        if (auto it = weights_.find(key); it != weights_.end()) return it->second.get();
        const bool i2s = w.type == quant::TypeId::I2_S;
        const bool f16 = w.type == quant::TypeId::F16 && w.cols % 2 == 0;
        if (!i2s && !f16) {
            if (warned_.insert(static_cast<int>(w.type)).second)
                log::warn("cuda: no GPU kernel for {} weights yet; those products run on the CPU",
                          quant::traits(w.type).name);
            weights_.emplace(key, nullptr);
            return nullptr;
        }
        BITNET_CUDA_CHECK(cudaSetDevice(device_));
        auto dw = std::make_unique<DeviceWeight>();
        dw->type = w.type;
        dw->rows = w.rows;
        dw->cols = w.cols;
        if (i2s) {
            const cuda::MmaPacked packed = cuda::pack_mma_stacked({&w});
            dw->scale = w.scale;
            dw->blocks = packed.blocks;
            dw->padded_cols = packed.padded_cols;
            const std::size_t bytes = packed.words.size() * 4;
            dw->data.reserve(bytes, "ternary weights");
            BITNET_CUDA_CHECK(cudaMemcpy(dw->data.as<void>(), packed.words.data(), bytes,
                                         cudaMemcpyHostToDevice));
        } else {
            const std::size_t bytes = static_cast<std::size_t>(w.rows * w.cols) * 2;
            dw->data.reserve(bytes, "f16 weights");
            BITNET_CUDA_CHECK(
                cudaMemcpy(dw->data.as<void>(), w.data, bytes, cudaMemcpyHostToDevice));
        }
        const DeviceWeight* raw = dw.get();
        weights_.emplace(key, std::move(dw));
        return raw;
    }

    int device_;
    std::unique_ptr<Backend> cpu_;
    std::string device_name_, sm_;
    cudaStream_t stream_ = nullptr;
    mutable std::mutex mutex_;
    // Device copies by host address and shape: weights must not change in place while the
    // backend lives (true of memory-mapped model files and of the engine's re-quantized head).
    struct Key {
        const void* data;
        quant::TypeId type;
        std::int64_t rows, cols;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& k) const {
            return std::hash<const void*>()(k.data) ^ (static_cast<std::size_t>(k.rows) << 1) ^
                   (static_cast<std::size_t>(k.cols) << 17) ^ static_cast<std::size_t>(k.type);
        }
    };
    mutable std::unordered_map<Key, std::unique_ptr<DeviceWeight>, KeyHash> weights_;
    mutable std::unordered_set<int> warned_;
    mutable DeviceBuffer x_, y_, q_, scales_, sums_, half_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device, int cpu_threads) {
    return std::make_unique<CudaBackend>(device, cpu_threads);
}

}  // namespace bitnet::kernels

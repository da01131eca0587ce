// The CUDA backend (gpu preset): a kernels::Backend whose matrix products run on an NVIDIA GPU.
// Weights are uploaded on first use and stay there — ternary ones 2-bit, repacked into the int8
// tensor cores' fragment order — so each product moves only activations across the bus. I2_S
// products are W1.58A8 exactly as on the CPU: activations quantized on the device with the same
// rule (absmax, round half to even), exact integer dots on the tensor cores, the same output
// rounding, so results are bit-identical to the reference backend. F16 weights (the tied head) use
// f32 accumulation of F16-rounded activations. Other weight types and embedding lookups run on the
// CPU backend this one wraps (a documented, logged fallback).
//
// Per-product launches with host round trips: the fallback for models the device-resident
// forward pass (gpu_model.hpp) does not take, sharing its ternary kernels.
#pragma once

#include <memory>

#include "bitnet/kernels/backend.hpp"

namespace bitnet::kernels {

// Throws bitnet::Error(Unsupported) when the build has no CUDA or the device does not exist,
// with the reason (driver, device count) in the message.
std::unique_ptr<Backend> make_cuda_backend(int device, int cpu_threads = 0);

}  // namespace bitnet::kernels

// The CUDA backend (gpu preset): a kernels::Backend whose matrix products run on an NVIDIA GPU.
// Weights are uploaded on first use and stay there — ternary ones 2-bit, repacked to 16 codes
// per 32-bit word, row-major — so each product moves only activations across the bus. I2_S
// products are W1.58A8 exactly as on the CPU: activations quantized on the device with the same
// rule (absmax, round half to even), integer dots with __dp4a, the same output rounding, so
// results are bit-identical to the reference backend. F16 weights (the tied head) use f32
// accumulation of F16-rounded activations. Other weight types and embedding lookups run on the
// CPU backend this one wraps (a documented, logged fallback).
//
// This is the first GPU step: per-product launches with host round trips. The device-resident
// forward pass with CUDA graphs builds on these kernels (docs/performance.md).
#pragma once

#include <memory>

#include "bitnet/kernels/backend.hpp"

namespace bitnet::kernels {

// Throws bitnet::Error(Unsupported) when the build has no CUDA or the device does not exist,
// with the reason (driver, device count) in the message.
std::unique_ptr<Backend> make_cuda_backend(int device, int cpu_threads = 0);

}  // namespace bitnet::kernels

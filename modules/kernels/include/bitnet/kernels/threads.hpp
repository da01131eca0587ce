// The CPU thread count of everything that runs on OpenMP's default team: the backends pass their
// own count to each parallel region, and the model's per-row work and attention use the default,
// which this sets, so `-t N` bounds them all.
#pragma once

namespace bitnet::kernels {

void use_cpu_threads(int threads);

}  // namespace bitnet::kernels

#include "bitnet/kernels/threads.hpp"

#include <omp.h>

namespace bitnet::kernels {

void use_cpu_threads(int threads) {
    if (threads > 0) omp_set_num_threads(threads);
}

}  // namespace bitnet::kernels

#include "bitnet/quantization/activation.hpp"

#include <algorithm>
#include <cmath>

namespace bitnet::quant {

ActivationScale quantize_activations_i8(const float* x, std::int64_t n, std::int8_t* q) {
    // bitnet.cpp computes the absmax in double and floors it at 1e-5 (an all-zero row must not
    // divide by zero); the scale is then rounded to float once.
    double amax = 0.0;
    for (std::int64_t k = 0; k < n; ++k)
        amax = std::max(amax, std::fabs(static_cast<double>(x[k])));
    amax = std::max(amax, 1e-5);
    const float a = static_cast<float>(127.0 / amax);
    std::int32_t sum = 0;
    for (std::int64_t k = 0; k < n; ++k) {
        const int v = std::clamp(nearest_int(x[k] * a), -128, 127);
        q[k] = static_cast<std::int8_t>(v);
        sum += v;
    }
    return {a, sum};
}

}  // namespace bitnet::quant

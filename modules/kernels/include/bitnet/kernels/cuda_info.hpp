// What CUDA devices the process can see. Safe to call in every build: without the gpu preset
// (or without a driver/GPU) it reports zero devices and a reason.
#pragma once

#include <string>

namespace bitnet::kernels {

struct CudaInfo {
    bool compiled = false;  // built with the gpu preset
    int device_count = 0;
    std::string reason;  // why there are no devices, when device_count == 0
    std::string first_device_name;
};

CudaInfo cuda_info();

}  // namespace bitnet::kernels

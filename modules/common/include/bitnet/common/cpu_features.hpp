// CPU feature detection, done once per process (cpuid + xgetbv for OS support of the wide
// registers). Kernel dispatch and `bitnet system` read it; nothing else probes the CPU.
#pragma once

#include <string>

namespace bitnet {

struct CpuFeatures {
    bool sse42 = false;
    bool avx = false;
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512vnni = false;
    bool avx512vbmi = false;
    bool avxvnni = false;  // VEX-encoded VNNI (Alder Lake and later)
    bool gfni = false;     // Galois-field byte transforms, 256-bit forms usable (Ice Lake, Zen 4)
    // AMX int8 tiles (Sapphire Rapids and later) usable by this process: the CPU has them, the OS
    // saves their state, and (Linux) the process was granted the tile data permission.
    bool amx_int8 = false;
    int physical_cores = 1;
    int logical_cores = 1;
    std::string vendor;  // cpuid leaf 0: "GenuineIntel", "AuthenticAMD", ... (empty off x86)
    std::string brand;

    // Space-separated names of the features present, e.g. "sse4.2 avx2 fma f16c".
    std::string summary() const;
};

// Detected once (thread-safe) and cached.
const CpuFeatures& cpu_features();

}  // namespace bitnet

#include "bitnet/common/cpu_features.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define BITNET_X86 1
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace bitnet {
namespace {

#if BITNET_X86
struct CpuidRegs {
    unsigned a = 0, b = 0, c = 0, d = 0;
};

CpuidRegs cpuid(unsigned leaf, unsigned subleaf) {
    CpuidRegs r;
    __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
    return r;
}

// Linux hands AMX tile data (8 kB of state per thread) only to processes that ask for it
// (arch_prctl ARCH_REQ_XCOMP_PERM, kernel 5.16+); a tile instruction without it is SIGILL.
bool request_amx_permission() {
#if defined(__linux__) && defined(__x86_64__)
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
}

std::uint64_t xgetbv0() {
    unsigned eax = 0, edx = 0;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<std::uint64_t>(edx) << 32) | eax;
}

void detect_x86(CpuFeatures& f) {
    unsigned max_leaf = __get_cpuid_max(0, nullptr);
    {
        // Leaf 0 spells the vendor in EBX, EDX, ECX (in that order).
        const CpuidRegs l0 = cpuid(0, 0);
        char vendor[13] = {};
        std::memcpy(vendor, &l0.b, 4);
        std::memcpy(vendor + 4, &l0.d, 4);
        std::memcpy(vendor + 8, &l0.c, 4);
        f.vendor = vendor;
    }
    if (max_leaf < 1) return;
    CpuidRegs l1 = cpuid(1, 0);
    f.sse42 = (l1.c >> 20) & 1;
    bool osxsave = (l1.c >> 27) & 1;
    std::uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool os_ymm = (xcr0 & 0x6) == 0x6;    // XMM + YMM state saved by the OS
    bool os_zmm = (xcr0 & 0xe6) == 0xe6;  // + opmask, ZMM_Hi256, Hi16_ZMM
    f.avx = os_ymm && ((l1.c >> 28) & 1);
    f.fma = f.avx && ((l1.c >> 12) & 1);
    f.f16c = f.avx && ((l1.c >> 29) & 1);
    if (max_leaf >= 7) {
        CpuidRegs l7 = cpuid(7, 0);
        f.avx2 = f.avx && ((l7.b >> 5) & 1);
        f.avx512f = os_zmm && ((l7.b >> 16) & 1);
        f.avx512bw = f.avx512f && ((l7.b >> 30) & 1);
        f.avx512vl = f.avx512f && ((l7.b >> 31) & 1);
        f.avx512vbmi = f.avx512f && ((l7.c >> 1) & 1);
        f.avx512vnni = f.avx512f && ((l7.c >> 11) & 1);
        f.gfni = f.avx && ((l7.c >> 8) & 1);
        CpuidRegs l71 = cpuid(7, 1);
        f.avxvnni = os_ymm && ((l71.a >> 4) & 1);
        const bool os_tiles = (xcr0 & 0x60000) == 0x60000;          // XTILECFG + XTILEDATA
        const bool amx = ((l7.d >> 24) & 1) && ((l7.d >> 25) & 1);  // AMX-TILE, AMX-INT8
        f.amx_int8 = os_tiles && amx && request_amx_permission();
    }
    unsigned max_ext = __get_cpuid_max(0x80000000, nullptr);
    if (max_ext >= 0x80000004) {
        char brand[49] = {};
        for (unsigned i = 0; i < 3; ++i) {
            CpuidRegs r = cpuid(0x80000002 + i, 0);
            std::memcpy(brand + 16 * i, &r, 16);
        }
        f.brand = brand;
        auto first = f.brand.find_first_not_of(' ');
        f.brand = first == std::string::npos ? "" : f.brand.substr(first);
    }
}
#endif

// Physical cores = distinct (package, core) pairs among online CPUs in sysfs.
int count_physical_cores(int logical) {
    std::set<std::pair<std::string, std::string>> cores;
    for (int cpu = 0; cpu < logical * 4 + 64; ++cpu) {
        std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
        std::ifstream core_file(base + "core_id");
        std::ifstream package_file(base + "physical_package_id");
        if (!core_file || !package_file) continue;
        std::string core, package;
        core_file >> core;
        package_file >> package;
        cores.emplace(package, core);
    }
    if (cores.empty()) return logical;
    return static_cast<int>(cores.size());
}

CpuFeatures detect() {
    CpuFeatures f;
#if BITNET_X86
    detect_x86(f);
#endif
    f.logical_cores = static_cast<int>(std::thread::hardware_concurrency());
    if (f.logical_cores <= 0) f.logical_cores = 1;
    f.physical_cores = count_physical_cores(f.logical_cores);
    if (f.physical_cores > f.logical_cores) f.physical_cores = f.logical_cores;
    return f;
}

}  // namespace

std::string CpuFeatures::summary() const {
    std::string out;
    auto add = [&out](bool present, const char* name) {
        if (!present) return;
        if (!out.empty()) out += ' ';
        out += name;
    };
    add(sse42, "sse4.2");
    add(avx, "avx");
    add(avx2, "avx2");
    add(fma, "fma");
    add(f16c, "f16c");
    add(avxvnni, "avx-vnni");
    add(gfni, "gfni");
    add(avx512f, "avx512f");
    add(avx512bw, "avx512bw");
    add(avx512vl, "avx512vl");
    add(avx512vnni, "avx512vnni");
    add(avx512vbmi, "avx512vbmi");
    add(amx_int8, "amx-int8");
    return out.empty() ? "none" : out;
}

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

}  // namespace bitnet

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "bitnet/common/cpu_features.hpp"

using namespace bitnet;

TEST_CASE("core counts are positive and physical <= logical") {
    const CpuFeatures& f = cpu_features();
    CHECK(f.logical_cores >= 1);
    CHECK(f.physical_cores >= 1);
    CHECK(f.physical_cores <= f.logical_cores);
}

TEST_CASE("feature implications hold (a wider ISA implies the narrower one)") {
    const CpuFeatures& f = cpu_features();
    if (f.avx2) CHECK(f.avx);
    if (f.avx512bw) CHECK(f.avx512f);
    if (f.avx512vnni) CHECK(f.avx512f);
    if (f.fma) CHECK(f.avx);
}

TEST_CASE("detected features agree with the kernel's /proc/cpuinfo flags") {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    std::string flags;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("flags", 0) == 0) {
            flags = " " + line.substr(line.find(':') + 1) + " ";
            break;
        }
    }
    if (flags.empty()) {
        WARN("SKIPPED: no flags line in /proc/cpuinfo");
        return;
    }
    auto has = [&flags](const char* name) {
        return flags.find(std::string(" ") + name + " ") != std::string::npos;
    };
    const CpuFeatures& f = cpu_features();
    CHECK(f.sse42 == has("sse4_2"));
    CHECK(f.avx2 == has("avx2"));
    CHECK(f.f16c == has("f16c"));
    CHECK(f.avx512f == has("avx512f"));
    CHECK(f.avx512bw == has("avx512bw"));
    CHECK(f.avx512vnni == has("avx512_vnni"));
}

TEST_CASE("the vendor string agrees with /proc/cpuinfo's vendor_id") {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line, vendor_id;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("vendor_id", 0) == 0) {
            std::istringstream(line.substr(line.find(':') + 1)) >> vendor_id;
            break;
        }
    }
    if (vendor_id.empty()) {
        WARN("SKIPPED: no vendor_id line in /proc/cpuinfo (not x86)");
        return;
    }
    CHECK(cpu_features().vendor == vendor_id);
}

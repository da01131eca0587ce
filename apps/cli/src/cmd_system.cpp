// `bitnet system [--json]`: CPU features, cores, memory and CUDA devices as the engine sees them.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/common/env.hpp"
#include "bitnet/common/memory_usage.hpp"
#include "bitnet/common/progress.hpp"
#include "bitnet/kernels/cuda_info.hpp"
#include "commands.hpp"

namespace bitnet::cli {

Command add_system_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("system", "Show CPU features, threads, memory and CUDA devices");
    auto json_output = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json_output, "Machine-readable output on stdout");
    return {cmd, [json_output]() {
                const CpuFeatures& cpu = cpu_features();
                const kernels::CudaInfo cuda = kernels::cuda_info();
                const EnvConfig& env = env_config();
                const int threads = env.threads.value_or(cpu.physical_cores);
                nlohmann::json j = {
                    {"cpu",
                     {{"brand", cpu.brand},
                      {"vendor", cpu.vendor},
                      {"features", cpu.summary()},
                      {"physical_cores", cpu.physical_cores},
                      {"logical_cores", cpu.logical_cores}}},
                    {"threads", threads},
                    {"memory_bytes", total_physical_memory_bytes()},
                    {"cuda",
                     {{"compiled", cuda.compiled},
                      {"devices", cuda.device_count},
                      {"reason", cuda.reason},
                      {"first_device", cuda.first_device_name}}},
                    {"strict_mode", env.strict_mode},
                };
                if (*json_output) {
                    std::printf("%s\n", j.dump(2).c_str());
                    return kExitOk;
                }
                std::printf("cpu:      %s%s\n", cpu.brand.empty() ? "(unknown)" : cpu.brand.c_str(),
                            cpu.vendor.empty() ? "" : (" (" + cpu.vendor + ")").c_str());
                std::printf("features: %s\n", cpu.summary().c_str());
                std::printf("cores:    %d physical, %d logical; threads used: %d%s\n",
                            cpu.physical_cores, cpu.logical_cores, threads,
                            env.threads ? " (BITNET_THREADS)" : "");
                std::printf("memory:   %s\n", format_bytes(total_physical_memory_bytes()).c_str());
                if (cuda.device_count > 0) {
                    std::printf("cuda:     %d device(s), first: %s\n", cuda.device_count,
                                cuda.first_device_name.c_str());
                } else {
                    std::printf("cuda:     none (%s)\n", cuda.reason.c_str());
                }
                std::printf("strict:   %s\n", env.strict_mode ? "on (BITNET_STRICT_MODE)" : "off");
                return kExitOk;
            }};
}

}  // namespace bitnet::cli

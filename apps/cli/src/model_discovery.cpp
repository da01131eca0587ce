#include "model_discovery.hpp"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "bitnet/common/env.hpp"
#include "bitnet/common/error.hpp"

namespace bitnet::cli {
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> gguf_files_under(const std::string& dir) {
    std::vector<fs::path> found;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return found;
    for (fs::recursive_directory_iterator
             it(dir, fs::directory_options::skip_permission_denied, ec),
         end;
         !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec) && it->path().extension() == ".gguf")
            found.push_back(it->path());
    }
    std::sort(found.begin(), found.end());
    return found;
}

}  // namespace

ModelChoice discover_model(const std::string& flag, const std::string& models_dir) {
    if (!flag.empty()) return {flag, "", false};
    if (const auto& gguf = env_config().gguf)
        return {*gguf, "model: " + *gguf + " (from BITNET_GGUF)", false};
    const std::vector<fs::path> found = gguf_files_under(models_dir);
    if (!found.empty()) {
        auto official = std::find_if(found.begin(), found.end(), [](const fs::path& p) {
            return p.filename() == "ggml-model-i2_s.gguf";
        });
        const fs::path chosen = official != found.end() ? *official : found.front();
        std::string reason = "model: " + chosen.string() + " (found in " + models_dir + "/";
        if (found.size() > 1)
            reason += ", 1 of " + std::to_string(found.size()) + " files; -m picks another";
        return {chosen.string(), reason + ")", false};
    }
    const std::string builtin = BITNET_DEFAULT_MODEL;
    if (!fs::exists(builtin))
        fail(ErrorCode::NotFound,
             "no model given (-m or BITNET_GGUF), none in " + models_dir +
                 "/, and the built-in demo model " + builtin +
                 " is missing; build the project (cmake --build --preset cpu), download the 2B "
                 "model (xtask download-model) or pass -m MODEL.gguf");
    return {builtin,
            "model: built-in demo model (" + builtin +
                ")\n"
                "       a 5.7 MB BitNet b1.58 trained on the King James Bible: a demonstration, "
                "not an assistant.\n"
                "       For the real 2B model: `xtask download-model` (into models/), then run "
                "again.",
            true};
}

}  // namespace bitnet::cli

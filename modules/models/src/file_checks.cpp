#include "bitnet/models/file_checks.hpp"

#include <cmath>
#include <cstring>

#include "bitnet/common/error.hpp"
#include "bitnet/models/model_config.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"

namespace bitnet::models {
namespace {

using quant::TypeId;

bool is_type(const GgufTensorInfo& t, TypeId id) {
    return t.type_id == static_cast<std::uint32_t>(id);
}

void check_i2s(const GgufTensorInfo& t, TensorStats& stats, std::vector<Finding>& findings) {
    const float scale = quant::i2s_scale(t.data, static_cast<std::int64_t>(t.n_elements));
    stats.scale = scale;
    if (!std::isfinite(scale)) {
        findings.push_back({true, t.name,
                            "I2_S scale is " + std::to_string(scale) +
                                " (not finite); the file is corrupt — convert it again"});
        return;
    }
    if (scale < 0)
        findings.push_back(
            {true, t.name, "I2_S scale is negative (" + std::to_string(scale) + ")"});
    if (scale == 0)
        findings.push_back({false, t.name, "I2_S scale is 0: every weight of this tensor is zero"});
    std::uint64_t zeros = 0, invalid = 0;
    const std::uint64_t bytes = t.n_elements / 4;
    for (std::uint64_t i = 0; i < bytes; ++i) {
        const std::uint8_t b = t.data[i];
        for (int shift = 0; shift < 8; shift += 2) {
            const int code = (b >> shift) & 3;
            zeros += code == 1;
            invalid += code == 3;
        }
    }
    stats.zero_fraction = static_cast<double>(zeros) / static_cast<double>(t.n_elements);
    if (invalid > 0)
        findings.push_back({true, t.name,
                            std::to_string(invalid) +
                                " I2_S codes are 3 (only 0, 1, 2 are valid); the file is "
                                "corrupt or not in the x86 I2_S layout"});
}

void check_block_scales(const GgufTensorInfo& t, std::uint64_t block_bytes, std::uint64_t d_offset,
                        std::vector<Finding>& findings) {
    const std::uint64_t blocks = t.size_bytes / block_bytes;
    for (std::uint64_t b = 0; b < blocks; ++b) {
        std::uint16_t h;
        std::memcpy(&h, t.data + b * block_bytes + d_offset, 2);
        if (!std::isfinite(quant::fp16_to_fp32(h))) {
            findings.push_back(
                {true, t.name, "block " + std::to_string(b) + " has a non-finite scale"});
            return;
        }
    }
}

void check_tq2(const GgufTensorInfo& t, TensorStats& stats, std::vector<Finding>& findings) {
    check_block_scales(t, 66, 64, findings);
    std::uint64_t zeros = 0, invalid = 0;
    for (std::uint64_t b = 0; b < t.n_elements / 256; ++b) {
        for (int i = 0; i < 64; ++i) {
            const std::uint8_t byte = t.data[b * 66 + i];
            for (int shift = 0; shift < 8; shift += 2) {
                zeros += ((byte >> shift) & 3) == 1;
                invalid += ((byte >> shift) & 3) == 3;
            }
        }
    }
    stats.zero_fraction = static_cast<double>(zeros) / static_cast<double>(t.n_elements);
    if (invalid > 0)
        findings.push_back(
            {true, t.name, std::to_string(invalid) + " TQ2_0 codes are 3 (invalid)"});
}

void check_finite_floats(const GgufTensorInfo& t, std::vector<Finding>& findings) {
    const std::uint64_t n = t.n_elements;
    for (std::uint64_t i = 0; i < n; ++i) {
        float v;
        if (is_type(t, TypeId::F32)) {
            std::memcpy(&v, t.data + 4 * i, 4);
        } else {
            std::uint16_t h;
            std::memcpy(&h, t.data + 2 * i, 2);
            v = is_type(t, TypeId::F16) ? quant::fp16_to_fp32(h) : quant::bf16_to_fp32(h);
        }
        if (!std::isfinite(v)) {
            findings.push_back({true, t.name, "element " + std::to_string(i) + " is not finite"});
            return;
        }
    }
}

}  // namespace

bool FileReport::ok() const {
    for (const Finding& f : findings)
        if (f.fatal) return false;
    return true;
}

std::string FileReport::first_problem() const {
    for (const Finding& f : findings)
        if (f.fatal) return f.where + ": " + f.message;
    return "";
}

FileReport check_model_file(const GgufFile& file, bool strict) {
    FileReport report;
    for (const GgufTensorInfo& t : file.tensors()) {
        TensorStats stats;
        stats.name = t.name;
        stats.type = std::string(t.traits.name);
        if (!t.traits.usable) {
            report.findings.push_back(
                {true, t.name,
                 "type " + std::string(t.traits.name) + ": " + std::string(t.traits.note)});
        } else if (is_type(t, TypeId::I2_S)) {
            check_i2s(t, stats, report.findings);
            stats.checked = true;
        } else if (is_type(t, TypeId::TQ2_0)) {
            check_tq2(t, stats, report.findings);
            stats.checked = true;
        } else if (is_type(t, TypeId::TQ1_0)) {
            check_block_scales(t, 54, 52, report.findings);
            stats.checked = true;
        } else if (is_type(t, TypeId::Q8_0)) {
            check_block_scales(t, 34, 0, report.findings);
            stats.checked = true;
        } else if (is_type(t, TypeId::F32) || is_type(t, TypeId::F16) || is_type(t, TypeId::BF16)) {
            check_finite_floats(t, report.findings);
            stats.checked = true;
        }
        if (stats.zero_fraction >= 0 && (stats.zero_fraction < 0.01 || stats.zero_fraction > 0.99))
            report.findings.push_back({strict, t.name,
                                       "unusual ternary distribution: " +
                                           std::to_string(stats.zero_fraction * 100) + "% zeros"});
        report.tensors.push_back(stats);
    }
    // After the tensor findings: an unusable tensor type is the more specific problem.
    try {
        read_model_config(file);
    } catch (const Error& e) {
        report.findings.push_back({true, "model", e.what()});
    }
    if (strict) {
        for (Finding& f : report.findings) f.fatal = true;
    }
    return report;
}

}  // namespace bitnet::models

#include "bad_gguf.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/gguf_writer.hpp"
#include "bitnet/models/synthetic_model.hpp"
#include "bitnet/quantization/type_traits.hpp"

namespace bitnet::test {
namespace {

using models::GgufFile;
using models::GgufWriter;

template <typename T>
void poke(std::vector<std::uint8_t>& bytes, std::uint64_t offset, T value) {
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

std::vector<std::uint8_t> truncated(const std::vector<std::uint8_t>& bytes, std::uint64_t size) {
    return {bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(size)};
}

// Where the fields of a tensor info record are (after its name).
struct InfoFields {
    std::uint64_t n_dims, type, offset;
};
InfoFields fields_of(const models::GgufTensorInfo& t) {
    const std::uint64_t n_dims = t.info_offset + 8 + t.name.size();
    const std::uint64_t type = n_dims + 4 + 8ull * t.n_dims;
    return {n_dims, type, type + 4};
}

GgufWriter header_only_writer() {
    GgufWriter w;
    w.set_string("general.architecture", "bitnet-b1.58");
    return w;
}

}  // namespace

std::vector<std::uint8_t> valid_tiny_model_bytes() {
    models::SyntheticModelOptions options;
    options.config = models::preset_config("tiny", 256);
    options.seed = 3;
    return models::synthetic_model_writer(options).to_bytes();
}

std::vector<BadGgufCase> bad_gguf_cases() {
    const std::vector<std::uint8_t> good = valid_tiny_model_bytes();
    auto layout = GgufFile::parse(good.data(), good.size(), "layout");
    const auto& tensors = layout->tensors();
    const auto& meta = layout->metadata();
    std::vector<BadGgufCase> cases;

    // Truncation at every section boundary (and inside each section).
    const std::vector<std::pair<std::string, std::uint64_t>> cuts = {
        {"empty", 0},
        {"inside-magic", 2},
        {"after-magic", 4},
        {"after-version", 8},
        {"inside-counts", 16},
        {"after-counts", 24},
        {"inside-first-key", meta[0].offset + 10},
        {"inside-last-value", meta.back().offset + 12},
        {"after-metadata", tensors[0].info_offset},
        {"inside-tensor-infos", tensors[1].info_offset + 5},
        {"after-tensor-infos", layout->data_offset() - 1},
        {"inside-tensor-data", tensors[1].file_offset + 7},
        {"last-byte-missing", good.size() - 1},
    };
    for (const auto& [label, size] : cuts) {
        const bool no_magic = size < 4;
        cases.push_back({"truncated-" + label, truncated(good, size),
                         no_magic ? "not a GGUF file" : "truncated", true});
    }

    auto patched = [&good](auto&& edit) {
        std::vector<std::uint8_t> b = good;
        edit(b);
        return b;
    };
    cases.push_back({"wrong-magic", patched([](auto& b) { b[0] = 'X'; }), "not a GGUF file", true});
    cases.push_back({"big-endian", patched([](auto& b) { poke<std::uint32_t>(b, 4, 0x03000000u); }),
                     "big-endian", true});
    cases.push_back(
        {"version-0", patched([](auto& b) { poke<std::uint32_t>(b, 4, 0); }), "version 0", true});
    cases.push_back({"version-99", patched([](auto& b) { poke<std::uint32_t>(b, 4, 99); }),
                     "version 99", true});
    cases.push_back({"string-longer-than-file",
                     patched([&](auto& b) { poke<std::uint64_t>(b, meta[0].offset, 1ull << 40); }),
                     "claims a length", true});
    cases.push_back({"huge-metadata-count",
                     patched([](auto& b) { poke<std::uint64_t>(b, 16, 1ull << 60); }),
                     "metadata entries", true});
    cases.push_back({"huge-tensor-count",
                     patched([](auto& b) { poke<std::uint64_t>(b, 8, 1ull << 60); }),
                     "tensors but only", true});
    {
        GgufWriter w = header_only_writer();
        std::vector<std::uint8_t> value;
        value.resize(12);
        std::uint32_t elem = 4;  // u32
        std::uint64_t count = 1ull << 60;
        std::memcpy(value.data(), &elem, 4);
        std::memcpy(value.data() + 4, &count, 8);
        w.set_raw("test.huge_array", 9, value);
        cases.push_back({"array-count-2^60", w.to_bytes(), "array elements", true});
    }
    {
        GgufWriter w = header_only_writer();
        w.set_raw("test.bad_type", 13, {0, 0, 0, 0});
        cases.push_back({"unknown-value-type", w.to_bytes(), "unknown value type 13", true});
    }
    {
        GgufWriter w = header_only_writer();
        w.set_u32("test.key", 1);
        w.set_u32("test.key", 2);
        cases.push_back({"duplicate-key", w.to_bytes(), "appears twice", true});
    }
    const InfoFields f0 = fields_of(tensors[0]);
    const InfoFields f1 = fields_of(tensors[1]);
    cases.push_back({"n_dims-0", patched([&](auto& b) { poke<std::uint32_t>(b, f0.n_dims, 0); }),
                     "has 0 dimensions", true});
    cases.push_back({"n_dims-5", patched([&](auto& b) { poke<std::uint32_t>(b, f0.n_dims, 5); }),
                     "has 5 dimensions", true});
    {
        GgufWriter w = header_only_writer();
        w.add_tensor_sized("overflowing", 0, {1ull << 32, 1ull << 32, 1ull << 32}, 0, {});
        cases.push_back({"element-count-overflow", w.to_bytes(), "overflows 64 bits", true});
    }
    cases.push_back({"unaligned-offset", patched([&](auto& b) {
                         poke<std::uint64_t>(b, f1.offset, tensors[1].offset + 1);
                     }),
                     "not a multiple of the alignment", true});
    cases.push_back({"tensor-past-eof", patched([&](auto& b) {
                         poke<std::uint64_t>(b, f1.offset, (good.size() / 32 + 1) * 32);
                     }),
                     "past the end of the file", true});
    cases.push_back({"overlapping-tensors", patched([&](auto& b) {
                         poke<std::uint64_t>(b, f1.offset, tensors[0].offset);
                     }),
                     "overlap", true});
    cases.push_back({"unknown-tensor-type",
                     patched([&](auto& b) { poke<std::uint32_t>(b, f0.type, 200); }),
                     "unknown type id 200", true});
    {
        GgufWriter w = header_only_writer();
        w.add_tensor("same.weight", 0, {32}, {});
        w.add_tensor("same.weight", 0, {32}, {});
        cases.push_back({"duplicate-tensor-names", w.to_bytes(), "appears twice", true});
    }
    {
        // Two I2_S tensors written without their 32-byte trailers (n/4 bytes each).
        GgufWriter w = header_only_writer();
        const auto i2s = static_cast<std::uint32_t>(quant::TypeId::I2_S);
        w.add_tensor_sized("a.weight", i2s, {128, 4}, 128, {});
        w.add_tensor_sized("b.weight", i2s, {128, 4}, 128, {});
        cases.push_back({"i2s-without-scale", w.to_bytes(), "n/4 + 32", true});
    }
    {
        // Structurally fine, but an I2_S scale is NaN / Inf: only content checks catch it.
        const auto* q = layout->find_tensor("blk.0.attn_q.weight");
        const std::uint64_t scale_at = q->file_offset + q->n_elements / 4;
        cases.push_back({"i2s-nan-scale", patched([&](auto& b) {
                             poke<float>(b, scale_at, std::numeric_limits<float>::quiet_NaN());
                         }),
                         "not finite", false});
        cases.push_back({"i2s-inf-scale", patched([&](auto& b) {
                             poke<float>(b, scale_at, std::numeric_limits<float>::infinity());
                         }),
                         "not finite", false});
        cases.push_back({"i2s-invalid-code", patched([&](auto& b) { b[q->file_offset] = 0xff; }),
                         "codes are 3", false});
    }
    return cases;
}

}  // namespace bitnet::test

#include "bitnet/models/model_config.hpp"

#include <cmath>

#include "bitnet/common/error.hpp"
#include "bitnet/quantization/type_traits.hpp"

namespace bitnet::models {
namespace {

using quant::TypeId;

std::uint32_t read_positive_u32(const GgufFile& file, const std::string& key, std::uint32_t max) {
    const std::uint64_t v = file.get_u64(key);
    if (v == 0 || v > max)
        fail(ErrorCode::InvalidFormat, file.path() + ": metadata " + key + " = " +
                                           std::to_string(v) + " is out of range (1.." +
                                           std::to_string(max) + ")");
    return static_cast<std::uint32_t>(v);
}

float read_positive_float(const GgufFile& file, const std::string& key, float fallback) {
    const GgufValue* v = file.find(key);
    if (v == nullptr) return fallback;
    const double value = v->to_f64(key);
    if (!std::isfinite(value) || value <= 0)
        fail(ErrorCode::InvalidFormat, file.path() + ": metadata " + key + " = " +
                                           std::to_string(value) +
                                           " must be a positive finite number");
    return static_cast<float>(value);
}

std::uint32_t vocab_size_of(const GgufFile& file, const std::string& arch) {
    if (const GgufValue* v = file.find(arch + ".vocab_size")) {
        const std::uint64_t n = v->to_u64(arch + ".vocab_size");
        if (n == 0 || n > (1u << 24))
            fail(ErrorCode::InvalidFormat, file.path() + ": " + arch + ".vocab_size = " +
                                               std::to_string(n) + " is out of range");
        return static_cast<std::uint32_t>(n);
    }
    if (const GgufValue* tokens = file.find("tokenizer.ggml.tokens")) {
        if (tokens->type == GgufValueType::Array && tokens->count > 0)
            return static_cast<std::uint32_t>(tokens->count);
    }
    // Fall back to the embedding rows.
    if (const GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
        embd && embd->n_dims == 2)
        return static_cast<std::uint32_t>(embd->ne[1]);
    fail(ErrorCode::NotFound, file.path() + ": cannot determine the vocabulary size (no " + arch +
                                  ".vocab_size, no tokenizer.ggml.tokens, no token_embd.weight)");
}

}  // namespace

std::optional<Architecture> architecture_from_name(const std::string& name) {
    if (name == "bitnet-b1.58") return Architecture::BitnetB158;
    if (name == "bitnet") return Architecture::Bitnet;
    return std::nullopt;
}

std::string supported_architectures() {
    return "bitnet-b1.58, bitnet";
}

std::string block_tensor_name(std::uint32_t block, const char* suffix) {
    return "blk." + std::to_string(block) + "." + suffix;
}

std::string role_name(TensorRole role) {
    switch (role) {
        case TensorRole::Embedding:
            return "embedding";
        case TensorRole::Norm:
            return "norm";
        case TensorRole::Ternary:
            return "ternary projection";
        case TensorRole::Scale:
            return "projection scale";
        case TensorRole::Output:
            return "output projection";
    }
    return "tensor";
}

bool type_allowed_for_role(TensorRole role, std::uint32_t id) {
    auto is = [id](TypeId t) { return id == static_cast<std::uint32_t>(t); };
    switch (role) {
        case TensorRole::Norm:
        case TensorRole::Scale:
            return is(TypeId::F32);
        case TensorRole::Ternary:
            return is(TypeId::I2_S) || is(TypeId::TQ2_0) || is(TypeId::TQ1_0) || is(TypeId::F16) ||
                   is(TypeId::F32) || is(TypeId::BF16) || is(TypeId::TL1) ||
                   is(TypeId::TL2_OR_MXFP4);
        case TensorRole::Embedding:
        case TensorRole::Output:
            return is(TypeId::F16) || is(TypeId::F32) || is(TypeId::BF16) || is(TypeId::Q8_0) ||
                   is(TypeId::Q4_0) || is(TypeId::Q6_K) || is(TypeId::IQ2_S) || is(TypeId::I2_S) ||
                   is(TypeId::TQ2_0) || is(TypeId::TQ1_0);
    }
    return false;
}

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
    const std::uint64_t h = c.hidden, f = c.ffn_hidden, v = c.vocab_size;
    const std::uint64_t q_out = static_cast<std::uint64_t>(c.head_count) * c.head_dim;
    const std::uint64_t kv_out = static_cast<std::uint64_t>(c.head_count_kv) * c.head_dim;
    std::vector<ExpectedTensor> out;
    out.push_back({"token_embd.weight", {h, v}, TensorRole::Embedding, false});
    out.push_back({"output_norm.weight", {h}, TensorRole::Norm, false});
    out.push_back({"output.weight", {h, v}, TensorRole::Output, true});
    const bool scales = c.architecture == Architecture::Bitnet;
    for (std::uint32_t b = 0; b < c.block_count; ++b) {
        auto name = [b](const char* s) { return block_tensor_name(b, s); };
        out.push_back({name("attn_norm.weight"), {h}, TensorRole::Norm, false});
        out.push_back({name("attn_q.weight"), {h, q_out}, TensorRole::Ternary, false});
        out.push_back({name("attn_k.weight"), {h, kv_out}, TensorRole::Ternary, false});
        out.push_back({name("attn_v.weight"), {h, kv_out}, TensorRole::Ternary, false});
        out.push_back({name("attn_output.weight"), {q_out, h}, TensorRole::Ternary, false});
        out.push_back({name("attn_sub_norm.weight"), {q_out}, TensorRole::Norm, false});
        out.push_back({name("ffn_norm.weight"), {h}, TensorRole::Norm, false});
        out.push_back({name("ffn_gate.weight"), {h, f}, TensorRole::Ternary, false});
        out.push_back({name("ffn_up.weight"), {h, f}, TensorRole::Ternary, false});
        out.push_back({name("ffn_down.weight"), {f, h}, TensorRole::Ternary, false});
        out.push_back({name("ffn_sub_norm.weight"), {f}, TensorRole::Norm, false});
        if (scales) {
            for (const char* s :
                 {"attn_q.scale", "attn_k.scale", "attn_v.scale", "attn_output.scale",
                  "ffn_gate.scale", "ffn_up.scale", "ffn_down.scale"})
                out.push_back({name(s), {1}, TensorRole::Scale, true});
        }
    }
    return out;
}

ModelConfig read_model_config(const GgufFile& file) {
    ModelConfig c;
    c.architecture_name = file.architecture();
    if (c.architecture_name.empty())
        fail(ErrorCode::InvalidFormat,
             file.path() + ": general.architecture is missing; not a model file");
    auto arch = architecture_from_name(c.architecture_name);
    if (!arch)
        fail(ErrorCode::Unsupported, file.path() + ": unsupported architecture '" +
                                         c.architecture_name +
                                         "'; supported: " + supported_architectures());
    c.architecture = *arch;
    c.ffn_activation = c.architecture == Architecture::BitnetB158 ? FfnActivation::ReluSquared
                                                                  : FfnActivation::Silu;
    const std::string& a = c.architecture_name;
    c.context_length = read_positive_u32(file, a + ".context_length", 1u << 24);
    c.hidden = read_positive_u32(file, a + ".embedding_length", 1u << 20);
    c.block_count = read_positive_u32(file, a + ".block_count", 4096);
    c.ffn_hidden = read_positive_u32(file, a + ".feed_forward_length", 1u << 22);
    c.head_count = read_positive_u32(file, a + ".attention.head_count", 4096);
    c.head_count_kv = c.head_count;
    if (file.find(a + ".attention.head_count_kv"))
        c.head_count_kv = read_positive_u32(file, a + ".attention.head_count_kv", 4096);
    if (c.head_count % c.head_count_kv != 0)
        fail(ErrorCode::InvalidFormat,
             file.path() + ": attention.head_count " + std::to_string(c.head_count) +
                 " is not a multiple of head_count_kv " + std::to_string(c.head_count_kv));
    if (c.hidden % c.head_count != 0)
        fail(ErrorCode::InvalidFormat,
             file.path() + ": embedding_length " + std::to_string(c.hidden) +
                 " is not divisible by attention.head_count " + std::to_string(c.head_count));
    c.head_dim = c.hidden / c.head_count;
    c.rope_dim = c.head_dim;
    if (file.find(a + ".rope.dimension_count")) {
        c.rope_dim = read_positive_u32(file, a + ".rope.dimension_count", 1u << 16);
        if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0)
            fail(ErrorCode::InvalidFormat,
                 file.path() + ": rope.dimension_count " + std::to_string(c.rope_dim) +
                     " must be even and at most the head size " + std::to_string(c.head_dim));
    }
    c.rope_freq_base = read_positive_float(file, a + ".rope.freq_base", 10000.0f);
    c.rms_eps = read_positive_float(file, a + ".attention.layer_norm_rms_epsilon", 1e-5f);
    c.vocab_size = vocab_size_of(file, a);

    for (const ExpectedTensor& e : expected_tensors(c)) {
        const GgufTensorInfo* t = file.find_tensor(e.name);
        if (t == nullptr) {
            if (e.optional) continue;
            fail(ErrorCode::InvalidFormat, file.path() + ": tensor '" + e.name + "' (" +
                                               role_name(e.role) +
                                               ") is missing; the file is incomplete or not a " +
                                               c.architecture_name + " model");
        }
        std::vector<std::uint64_t> actual(t->ne.begin(), t->ne.begin() + t->n_dims);
        if (actual != e.ne) {
            std::string expected = "[";
            for (std::size_t i = 0; i < e.ne.size(); ++i)
                expected += (i ? ", " : "") + std::to_string(e.ne[i]);
            fail(ErrorCode::InvalidFormat, file.path() + ": tensor '" + e.name + "' has shape " +
                                               t->shape_string() +
                                               " but the model config implies " + expected + "]");
        }
        if (!type_allowed_for_role(e.role, t->type_id))
            fail(ErrorCode::InvalidFormat, file.path() + ": tensor '" + e.name + "' has type " +
                                               std::string(t->traits.name) + ", not valid for a " +
                                               role_name(e.role));
        if (e.name == "output.weight") c.tied_output = false;
        if (e.role == TensorRole::Scale) c.has_scale_tensors = true;
    }
    return c;
}

std::uint32_t file_type_for(quant::TypeId ternary_type) {
    // As the writers of each format set it: bitnet.cpp's "mostly I2_S" is 40, upstream
    // llama.cpp's MOSTLY_TQ1_0 / MOSTLY_TQ2_0 are 36 / 37, MOSTLY_F16 is 1.
    switch (ternary_type) {
        case quant::TypeId::I2_S:
            return 40;
        case quant::TypeId::TQ1_0:
            return 36;
        case quant::TypeId::TQ2_0:
            return 37;
        default:
            return 1;
    }
}

void write_model_metadata(GgufWriter& w, const ModelConfig& c, quant::TypeId ternary_type,
                          const std::string& name) {
    const std::string& a = c.architecture_name;
    w.set_string("general.architecture", a);
    w.set_string("general.name", name);
    w.set_u32("general.quantization_version", 2);
    w.set_u32("general.alignment", 32);
    w.set_u32("general.file_type", file_type_for(ternary_type));
    w.set_u32(a + ".vocab_size", c.vocab_size);
    w.set_u32(a + ".context_length", c.context_length);
    w.set_u32(a + ".embedding_length", c.hidden);
    w.set_u32(a + ".block_count", c.block_count);
    w.set_u32(a + ".feed_forward_length", c.ffn_hidden);
    w.set_u32(a + ".rope.dimension_count", c.rope_dim);
    w.set_u32(a + ".attention.head_count", c.head_count);
    w.set_u32(a + ".attention.head_count_kv", c.head_count_kv);
    w.set_f32(a + ".rope.freq_base", c.rope_freq_base);
    w.set_f32(a + ".attention.layer_norm_rms_epsilon", c.rms_eps);
}

}  // namespace bitnet::models

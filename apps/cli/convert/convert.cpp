#include "convert.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include "bitnet/common/atomic_file.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"
#include "bitnet/common/progress.hpp"
#include "bitnet/common/timer.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/gguf_writer.hpp"
#include "bitnet/models/model_config.hpp"
#include "bitnet/models/safetensors_file.hpp"
#include "bitnet/quantization/type_traits.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"

namespace bitnet::convert {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using quant::TypeId;

TypeId ternary_type_from(const std::string& to) {
    if (to == "i2_s") return TypeId::I2_S;
    if (to == "tq2_0") return TypeId::TQ2_0;
    if (to == "tq1_0") return TypeId::TQ1_0;
    if (to == "f16") return TypeId::F16;
    fail(ErrorCode::InvalidArgument, "--to '" + to + "' is not one of i2_s, tq2_0, tq1_0, f16");
}

std::optional<TypeId> head_type_from(const std::string& head) {
    if (head.empty()) return std::nullopt;
    if (head == "f16") return TypeId::F16;
    if (head == "q8_0") return TypeId::Q8_0;
    fail(ErrorCode::InvalidArgument, "--head '" + head + "' is not one of f16, q8_0");
}

// Values -> bytes of `type` (whole tensor: I2_S keeps one scale per tensor).
std::vector<std::uint8_t> encode(const std::vector<float>& values, TypeId type,
                                 const std::string& name, std::uint64_t row_length) {
    const quant::TypeTraits& t = quant::traits(type);
    const auto n = static_cast<std::int64_t>(values.size());
    // Blocks never straddle rows (I2_S blocks run over the flat tensor, so only its total counts).
    const std::uint64_t unit = type == TypeId::I2_S ? static_cast<std::uint64_t>(n) : row_length;
    if (unit % static_cast<std::uint64_t>(t.block_size) != 0)
        fail(ErrorCode::InvalidArgument,
             "tensor '" + name + "' has rows of " + std::to_string(row_length) +
                 " values, not a multiple of " + std::string(t.name) + "'s block of " +
                 std::to_string(t.block_size) + "; choose another --to (i2_s or f16)");
    std::vector<std::uint8_t> out(quant::tensor_bytes(t, static_cast<std::uint64_t>(n)));
    t.quantize(values.data(), n, out.data());
    return out;
}

// Adds a tensor whose bytes are ready; they are freed as soon as the writer has copied them.
void add_encoded(models::GgufWriter& writer, const std::string& name, TypeId type,
                 const std::vector<std::uint64_t>& ne, std::vector<std::uint8_t> encoded) {
    auto bytes = std::make_shared<std::vector<std::uint8_t>>(std::move(encoded));
    writer.add_tensor_sized(name, static_cast<std::uint32_t>(type), ne, bytes->size(),
                            [bytes](std::uint8_t* out, std::uint64_t size) {
                                std::copy_n(bytes->data(), size, out);
                                bytes->clear();
                                bytes->shrink_to_fit();
                            });
}

// Writes the GGUF with a progress bar and fills in the summary's size and time.
void write_output(const models::GgufWriter& writer, const ConvertOptions& o, Timer& timer,
                  ConvertSummary& summary) {
    ProgressBar bar("writing " + o.output, writer.total_bytes(), o.progress);
    writer.write(o.output, [&bar](std::uint64_t done, std::uint64_t) { bar.update(done); });
    bar.finish();
    summary.bytes = writer.total_bytes();
    summary.seconds = timer.seconds();
}

// ---- Hugging Face checkpoints ---------------------------------------------------------------

struct Checkpoint {
    fs::path dir;
    json config;
    std::vector<std::unique_ptr<models::SafetensorsFile>> shards;

    const models::SafetensorsTensor* find(const std::string& name,
                                          const models::SafetensorsFile** owner) const {
        for (const auto& s : shards)
            if (const auto* t = s->find(name)) {
                *owner = s.get();
                return t;
            }
        return nullptr;
    }
};

json read_json(const fs::path& path, const std::string& what) {
    std::ifstream in(path);
    if (!in) fail(ErrorCode::NotFound, path.string() + ": cannot open " + what);
    try {
        return json::parse(in);
    } catch (const json::exception& e) {
        fail(ErrorCode::InvalidFormat, path.string() + ": not valid JSON (" + e.what() + ")");
    }
}

Checkpoint open_checkpoint(const std::string& input) {
    Checkpoint c;
    fs::path weights;
    if (fs::is_directory(input)) {
        c.dir = input;
    } else {
        weights = input;
        c.dir = fs::path(input).parent_path();
        if (c.dir.empty()) c.dir = ".";
    }
    c.config = read_json(c.dir / "config.json", "the checkpoint's config.json");
    if (!weights.empty()) {
        c.shards.push_back(models::SafetensorsFile::open(weights.string()));
    } else if (fs::exists(c.dir / "model.safetensors")) {
        c.shards.push_back(models::SafetensorsFile::open((c.dir / "model.safetensors").string()));
    } else if (fs::exists(c.dir / "model.safetensors.index.json")) {
        const json index =
            read_json(c.dir / "model.safetensors.index.json", "the safetensors index");
        std::vector<std::string> files;
        if (index.contains("weight_map") && index["weight_map"].is_object())
            for (const auto& [tensor, file] : index["weight_map"].items())
                if (file.is_string() &&
                    std::find(files.begin(), files.end(), file.get<std::string>()) == files.end())
                    files.push_back(file.get<std::string>());
        if (files.empty())
            fail(ErrorCode::InvalidFormat,
                 (c.dir / "model.safetensors.index.json").string() + ": no weight_map");
        for (const std::string& f : files)
            c.shards.push_back(models::SafetensorsFile::open((c.dir / f).string()));
    } else {
        fail(ErrorCode::NotFound, c.dir.string() +
                                      ": no model.safetensors or model.safetensors.index.json; "
                                      "give a Hugging Face checkpoint directory");
    }
    return c;
}

std::uint32_t config_u32(const json& config, const char* key, const fs::path& path,
                         std::optional<std::uint32_t> fallback = std::nullopt) {
    if (!config.contains(key) || config[key].is_null()) {
        if (fallback) return *fallback;
        fail(ErrorCode::InvalidFormat, path.string() + ": '" + key + "' is missing");
    }
    if (!config[key].is_number_unsigned() || config[key].get<std::uint64_t>() == 0 ||
        config[key].get<std::uint64_t>() > (1u << 30))
        fail(ErrorCode::InvalidFormat,
             path.string() + ": '" + key + "' must be a positive integer");
    return config[key].get<std::uint32_t>();
}

models::ModelConfig model_config_of(const Checkpoint& ckpt, bool& tied) {
    const json& j = ckpt.config;
    const fs::path path = ckpt.dir / "config.json";
    bool bitnet = false;
    if (j.contains("architectures") && j["architectures"].is_array())
        for (const json& a : j["architectures"])
            if (a == "BitNetForCausalLM") bitnet = true;
    if (!bitnet)
        fail(ErrorCode::Unsupported,
             path.string() +
                 ": architectures does not list BitNetForCausalLM; bitnet converts "
                 "BitNet b1.58 checkpoints only");
    const std::string act = j.value("hidden_act", "relu2");
    if (act != "relu2")
        fail(ErrorCode::Unsupported, path.string() + ": hidden_act '" + act +
                                         "' (BitNet b1.58 uses relu2, the only one converted)");
    models::ModelConfig c;
    c.architecture = models::Architecture::BitnetB158;
    c.architecture_name = "bitnet-b1.58";
    c.ffn_activation = models::FfnActivation::ReluSquared;
    c.hidden = config_u32(j, "hidden_size", path);
    c.ffn_hidden = config_u32(j, "intermediate_size", path);
    c.block_count = config_u32(j, "num_hidden_layers", path);
    c.head_count = config_u32(j, "num_attention_heads", path);
    c.head_count_kv = config_u32(j, "num_key_value_heads", path, c.head_count);
    c.head_dim = config_u32(j, "head_dim", path, c.hidden / c.head_count);
    c.rope_dim = c.head_dim;
    c.vocab_size = config_u32(j, "vocab_size", path);
    c.context_length = config_u32(j, "max_position_embeddings", path, 4096);
    c.rms_eps = static_cast<float>(j.value("rms_norm_eps", 1e-5));
    c.rope_freq_base = static_cast<float>(j.value("rope_theta", 10000.0));
    if (c.head_count % c.head_count_kv != 0)
        fail(ErrorCode::InvalidFormat, path.string() + ": num_attention_heads (" +
                                           std::to_string(c.head_count) +
                                           ") is not a multiple of num_key_value_heads (" +
                                           std::to_string(c.head_count_kv) + ")");
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
        fail(ErrorCode::Unsupported, path.string() + ": rope_scaling is not supported");
    tied = j.value("tie_word_embeddings", true);
    c.tied_output = tied;
    return c;
}

// The Hugging Face name of a GGUF tensor of the bitnet-b1.58 layout.
std::string hf_name(const std::string& gguf) {
    static const std::map<std::string, std::string> kTop = {
        {"token_embd.weight", "model.embed_tokens.weight"},
        {"output_norm.weight", "model.norm.weight"},
        {"output.weight", "lm_head.weight"}};
    if (auto it = kTop.find(gguf); it != kTop.end()) return it->second;
    static const std::map<std::string, std::string> kBlock = {
        {"attn_norm.weight", "input_layernorm.weight"},
        {"attn_q.weight", "self_attn.q_proj.weight"},
        {"attn_k.weight", "self_attn.k_proj.weight"},
        {"attn_v.weight", "self_attn.v_proj.weight"},
        {"attn_output.weight", "self_attn.o_proj.weight"},
        {"attn_sub_norm.weight", "self_attn.attn_sub_norm.weight"},
        {"ffn_norm.weight", "post_attention_layernorm.weight"},
        {"ffn_gate.weight", "mlp.gate_proj.weight"},
        {"ffn_up.weight", "mlp.up_proj.weight"},
        {"ffn_down.weight", "mlp.down_proj.weight"},
        {"ffn_sub_norm.weight", "mlp.ffn_sub_norm.weight"}};
    // blk.N.suffix
    const auto dot = gguf.find('.', 4);
    const std::string block = gguf.substr(4, dot - 4), suffix = gguf.substr(dot + 1);
    return "model.layers." + block + "." + kBlock.at(suffix);
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

ConvertSummary convert_checkpoint(const ConvertOptions& o, Timer& timer) {
    const TypeId ternary = ternary_type_from(o.to);
    const TypeId head = head_type_from(o.head).value_or(TypeId::F16);
    Checkpoint ckpt = open_checkpoint(o.input);
    bool tied = true;
    const models::ModelConfig config = model_config_of(ckpt, tied);

    // Every tensor the GGUF needs, present with the shape the config implies.
    struct Planned {
        models::ExpectedTensor expected;
        const models::SafetensorsFile* file;
        const models::SafetensorsTensor* tensor;
    };
    std::vector<Planned> plan;
    for (const models::ExpectedTensor& e : models::expected_tensors(config)) {
        if (e.role == models::TensorRole::Scale) continue;
        if (e.role == models::TensorRole::Output && tied) continue;
        const std::string name = hf_name(e.name);
        const models::SafetensorsFile* file = nullptr;
        const models::SafetensorsTensor* t = ckpt.find(name, &file);
        if (t == nullptr)
            fail(ErrorCode::InvalidFormat,
                 ckpt.dir.string() + ": tensor '" + name + "' (for " + e.name +
                     ") is missing from the checkpoint" +
                     (e.role == models::TensorRole::Output
                          ? "; if the output is tied to the embedding, set tie_word_embeddings"
                          : ""));
        if (t->dtype == "U8" || t->dtype == "I8")
            fail(ErrorCode::Unsupported,
                 file->path() + ": tensor '" + name + "' is " + t->dtype +
                     ": packed 2-bit checkpoints (like microsoft/bitnet-b1.58-2B-4T) are not "
                     "converted; use the -bf16 master-weight checkpoint or the GGUF release");
        std::vector<std::int64_t> want;  // safetensors shape = GGUF ne reversed
        for (auto it = e.ne.rbegin(); it != e.ne.rend(); ++it)
            want.push_back(static_cast<std::int64_t>(*it));
        if (t->shape != want)
            fail(ErrorCode::InvalidFormat, file->path() + ": tensor '" + name + "' has shape " +
                                               shape_string(t->shape) +
                                               " but config.json implies " + shape_string(want) +
                                               "; the config does not belong to these weights");
        plan.push_back({e, file, t});
    }

    // The tokenizer, embedded; its vocabulary must be the model's.
    const fs::path tokenizer_path =
        o.tokenizer.empty() ? ckpt.dir / "tokenizer.json" : fs::path(o.tokenizer);
    if (!fs::exists(tokenizer_path))
        fail(ErrorCode::NotFound, tokenizer_path.string() +
                                      " does not exist; pass --tokenizer tokenizer.json (a GGUF "
                                      "model carries its tokenizer)");
    const tokenizers::TokenizerData tokenizer =
        tokenizers::read_tokenizer_json(tokenizer_path.string());
    if (tokenizer.vocab_size() != config.vocab_size)
        fail(ErrorCode::InvalidFormat,
             tokenizer_path.string() + " has " + std::to_string(tokenizer.vocab_size()) +
                 " tokens but config.json's vocab_size is " + std::to_string(config.vocab_size) +
                 "; the tokenizer does not belong to this checkpoint");

    models::GgufWriter writer;
    const std::string name = o.name.empty() ? fs::absolute(ckpt.dir).filename().string() : o.name;
    models::write_model_metadata(writer, config, ternary, name);
    tokenizers::write_tokenizer_metadata(writer, tokenizer);

    ConvertSummary summary;
    summary.source = "hf-checkpoint";
    for (const Planned& p : plan) {
        TypeId type = TypeId::F32;
        if (p.expected.role == models::TensorRole::Ternary) type = ternary;
        if (p.expected.role == models::TensorRole::Embedding ||
            p.expected.role == models::TensorRole::Output)
            type = head;
        const bool is_ternary = p.expected.role == models::TensorRole::Ternary;
        // Ternarize now (not in the write callback) so the summary can say what happened.
        auto values = std::make_shared<std::vector<float>>(p.file->to_f32(*p.tensor));
        if (is_ternary) {
            bool exact = false;
            ternarize(*values, exact);
            ++(exact ? summary.ternary_exact : summary.ternary_absmean);
        }
        add_encoded(writer, p.expected.name, type, p.expected.ne,
                    encode(*values, type, p.tensor->name, p.expected.ne[0]));
        values.reset();
        ++summary.tensors;
    }
    write_output(writer, o, timer, summary);
    return summary;
}

// ---- GGUF -> GGUF ---------------------------------------------------------------------------

ConvertSummary requantize_gguf(const ConvertOptions& o, Timer& timer) {
    const TypeId ternary = ternary_type_from(o.to);
    const std::optional<TypeId> head = head_type_from(o.head);
    const auto file = models::GgufFile::open(o.input);
    const models::ModelConfig config = models::read_model_config(*file);
    std::map<std::string, models::TensorRole> roles;
    for (const auto& e : models::expected_tensors(config)) roles[e.name] = e.role;

    models::GgufWriter writer;
    for (const models::GgufMetadataEntry& m : file->metadata()) {
        if (m.key == "general.file_type")
            writer.set_u32(m.key, models::file_type_for(ternary));
        else if (m.key == "general.alignment")
            writer.set_u32(m.key, 32);  // the writer aligns to 32
        else
            writer.set_value(m.key, m.value);
    }
    ConvertSummary summary;
    summary.source = "gguf";
    for (const models::GgufTensorInfo& t : file->tensors()) {
        const auto role = roles.count(t.name) ? roles[t.name] : models::TensorRole::Norm;
        const auto from = static_cast<TypeId>(t.type_id);
        TypeId to = from;
        if (role == models::TensorRole::Ternary) to = ternary;
        if ((role == models::TensorRole::Embedding || role == models::TensorRole::Output) && head)
            to = *head;
        std::vector<std::uint64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
        const models::GgufTensorInfo* info = &t;
        ++summary.tensors;
        if (to == from) {  // copied byte for byte
            writer.add_tensor_sized(t.name, t.type_id, ne, t.size_bytes,
                                    [info](std::uint8_t* out, std::uint64_t size) {
                                        std::copy_n(info->data, size, out);
                                    });
            continue;
        }
        if (!t.traits.dequantize)
            fail(ErrorCode::Unsupported, o.input + ": tensor '" + t.name + "' has type " +
                                             std::string(t.traits.name) +
                                             ", which bitnet cannot read to re-quantize");
        std::vector<float> values(t.n_elements);
        t.traits.dequantize(t.data, static_cast<std::int64_t>(t.n_elements), values.data());
        if (role == models::TensorRole::Ternary) {
            bool exact = false;
            ternarize(values, exact);
            if (!exact)
                log::warn(
                    "{}: '{}' ({}) was not exactly ternary with one scale; ternarized "
                    "with absmean",
                    o.input, t.name, t.traits.name);
        }
        add_encoded(writer, t.name, to, ne, encode(values, to, t.name, t.ne[0]));
        ++summary.requantized;
    }
    write_output(writer, o, timer, summary);
    return summary;
}

}  // namespace

float ternarize(std::vector<float>& w, bool& already_ternary) {
    float max_abs = 0;
    for (float v : w) {
        if (!std::isfinite(v))
            fail(ErrorCode::InvalidFormat, "a weight is not finite (NaN or Inf)");
        max_abs = std::max(max_abs, std::fabs(v));
    }
    already_ternary = max_abs > 0 && std::all_of(w.begin(), w.end(), [max_abs](float v) {
                          return v == 0.0f || std::fabs(v) == max_abs;
                      });
    if (already_ternary) return max_abs;
    double sum = 0;
    for (float v : w) sum += std::fabs(v);
    const float gamma = std::max(
        static_cast<float>(sum / static_cast<double>(std::max<std::size_t>(1, w.size()))), 1e-5f);
    for (float& v : w) {
        const float code = std::clamp(std::nearbyint(v / gamma), -1.0f, 1.0f);
        v = code * gamma;
    }
    return gamma;
}

void write_hf_weights(const std::string& gguf_path, const std::string& path,
                      const std::string& exact_from) {
    const auto file = models::GgufFile::open(gguf_path);
    std::unique_ptr<models::SafetensorsFile> exact;
    if (!exact_from.empty()) exact = models::SafetensorsFile::open(exact_from);
    const models::ModelConfig config = models::read_model_config(*file);
    struct Entry {
        std::string name;
        std::vector<std::int64_t> shape;
        std::vector<std::uint16_t> bf16;
    };
    std::vector<Entry> entries;
    for (const models::ExpectedTensor& e : models::expected_tensors(config)) {
        const models::GgufTensorInfo* t = file->find_tensor(e.name);
        if (t == nullptr) continue;  // optional (tied output, scales)
        if (!t->traits.dequantize)
            fail(ErrorCode::Unsupported, gguf_path + ": tensor '" + t->name + "' cannot be read");
        Entry entry{hf_name(e.name), {}, std::vector<std::uint16_t>(t->n_elements)};
        for (auto it = e.ne.rbegin(); it != e.ne.rend(); ++it)
            entry.shape.push_back(static_cast<std::int64_t>(*it));
        if (const models::SafetensorsTensor* x = exact ? exact->find(entry.name) : nullptr) {
            if (x->dtype != "BF16" || x->shape != entry.shape)
                fail(ErrorCode::InvalidFormat,
                     exact_from + ": tensor '" + entry.name + "' is not BF16 of the GGUF's shape");
            std::memcpy(entry.bf16.data(), x->data, x->bytes);
            entries.push_back(std::move(entry));
            continue;
        }
        std::vector<float> values(t->n_elements);
        t->traits.dequantize(t->data, static_cast<std::int64_t>(t->n_elements), values.data());
        for (std::size_t i = 0; i < values.size(); ++i) {
            std::uint32_t bits;
            std::memcpy(&bits, &values[i], 4);
            if ((bits & 0xffffu) != 0)
                fail(ErrorCode::InvalidFormat, gguf_path + ": tensor '" + t->name +
                                                   "' has values that BF16 cannot hold exactly");
            entry.bf16[i] = static_cast<std::uint16_t>(bits >> 16);
        }
        entries.push_back(std::move(entry));
    }
    json header = {{"__metadata__", {{"format", "pt"}}}};
    std::uint64_t offset = 0;
    for (const Entry& e : entries) {
        const std::uint64_t bytes = e.bf16.size() * 2;
        header[e.name] = {
            {"dtype", "BF16"}, {"shape", e.shape}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    text.resize((text.size() + 7) / 8 * 8, ' ');  // the data starts 8-byte aligned
    AtomicFileWriter out(path);
    const std::uint64_t length = text.size();
    out.write(&length, 8);
    out.write(text.data(), text.size());
    for (const Entry& e : entries) out.write(e.bf16.data(), e.bf16.size() * 2);
    out.commit();
}

ConvertSummary convert_model(const ConvertOptions& o) {
    Timer timer;
    if (o.input.empty() || o.output.empty())
        fail(ErrorCode::InvalidArgument, "convert needs an input and an output path");
    if (fs::exists(o.output) && fs::equivalent(o.input, o.output))
        fail(ErrorCode::InvalidArgument, "the output must not be the input file");
    const bool gguf = fs::is_regular_file(o.input) && fs::path(o.input).extension() == ".gguf";
    if (gguf && !o.tokenizer.empty())
        fail(ErrorCode::InvalidArgument,
             "--tokenizer applies to Hugging Face checkpoints; a GGUF keeps its own tokenizer");
    if (!fs::exists(o.input)) fail(ErrorCode::NotFound, o.input + " does not exist");
    return gguf ? requantize_gguf(o, timer) : convert_checkpoint(o, timer);
}

}  // namespace bitnet::convert

#include "model_summary.hpp"

#include <cstdio>
#include <map>

#include "bitnet/common/error.hpp"
#include "bitnet/common/progress.hpp"
#include "bitnet/models/model_config.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"

namespace bitnet::cli {
namespace {

using nlohmann::json;

json architecture_json(const models::GgufFile& file) {
    json out;
    out["name"] = file.architecture();
    try {
        const models::ModelConfig c = models::read_model_config(file);
        out["loadable"] = true;
        out["context_length"] = c.context_length;
        out["hidden"] = c.hidden;
        out["blocks"] = c.block_count;
        out["ffn_hidden"] = c.ffn_hidden;
        out["heads"] = c.head_count;
        out["kv_heads"] = c.head_count_kv;
        out["head_dim"] = c.head_dim;
        out["vocab_size"] = c.vocab_size;
        out["rope_freq_base"] = c.rope_freq_base;
        out["rms_eps"] = c.rms_eps;
        out["ffn_activation"] =
            c.ffn_activation == models::FfnActivation::ReluSquared ? "relu^2" : "silu";
        out["tied_output"] = c.tied_output;
        // KV cache in f16 at the full context: K and V, every layer.
        const std::uint64_t kv_bytes =
            2ull * c.block_count * c.context_length * c.head_count_kv * c.head_dim * 2;
        out["kv_cache_bytes_f16_full_context"] = kv_bytes;
    } catch (const Error& e) {
        out["loadable"] = false;
        out["problem"] = e.what();
    }
    return out;
}

json tokenizer_json(const models::GgufFile& file) {
    json out;
    if (!file.find("tokenizer.ggml.model")) {
        out["present"] = false;
        return out;
    }
    out["present"] = true;
    try {
        const tokenizers::TokenizerData t = tokenizers::read_gguf_tokenizer(file);
        out["model"] = t.model;
        out["pre"] = t.pre;
        out["tokens"] = t.tokens.size();
        out["merges"] = t.merges.size();
        if (t.bos) out["bos"] = *t.bos;
        if (t.eos) out["eos"] = *t.eos;
        if (t.eot) out["eot"] = *t.eot;
        out["add_bos"] = t.add_bos;
        out["chat_template"] = !t.chat_template.empty();
    } catch (const Error& e) {
        out["problem"] = e.what();
    }
    return out;
}

}  // namespace

json summarize_model(const models::GgufFile& file, bool include_tensors) {
    json s;
    s["file"] = file.path();
    s["file_size"] = file.file_size();
    s["gguf_version"] = file.version();
    s["alignment"] = file.alignment();
    s["type_ids_read_as"] = std::string(file.provenance_name());
    s["architecture"] = architecture_json(file);
    s["tokenizer"] = tokenizer_json(file);

    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_type;  // count, bytes
    std::uint64_t max_block = 0;
    for (const auto& t : file.tensors()) {
        auto& entry = by_type[std::string(t.traits.name)];
        ++entry.first;
        entry.second += t.size_bytes;
        const std::string prefix = "blk.";
        if (t.name.rfind(prefix, 0) == 0) {
            const std::uint64_t b = std::stoull(t.name.substr(4, t.name.find('.', 4) - 4));
            max_block = std::max(max_block, b + 1);
        }
    }
    s["tensor_count"] = file.tensors().size();
    s["blocks_with_tensors"] = max_block;
    json types = json::object();
    std::uint64_t weight_bytes = 0;
    for (const auto& [name, cb] : by_type) {
        types[name] = {{"count", cb.first}, {"bytes", cb.second}};
        weight_bytes += cb.second;
    }
    s["tensor_types"] = types;
    s["weight_bytes"] = weight_bytes;
    if (s["architecture"]["loadable"].get<bool>())
        s["estimated_memory_bytes"] =
            weight_bytes +
            s["architecture"]["kv_cache_bytes_f16_full_context"].get<std::uint64_t>();

    json metadata = json::array();
    for (const auto& m : file.metadata()) {
        metadata.push_back({{"key", m.key},
                            {"type", std::string(models::value_type_name(m.value.type))},
                            {"value", m.value.describe(120)}});
    }
    s["metadata"] = metadata;
    if (include_tensors) {
        json tensors = json::array();
        for (const auto& t : file.tensors()) {
            tensors.push_back(
                {{"name", t.name},
                 {"type", std::string(t.traits.name)},
                 {"shape", std::vector<std::uint64_t>(t.ne.begin(), t.ne.begin() + t.n_dims)},
                 {"bytes", t.size_bytes},
                 {"offset", t.file_offset}});
        }
        s["tensors"] = tensors;
    }
    return s;
}

void print_model_summary(const json& s, bool include_tensors, bool include_metadata) {
    auto u64 = [](const json& j) { return j.get<std::uint64_t>(); };
    std::printf("file:          %s (%s, %llu bytes)\n", s["file"].get<std::string>().c_str(),
                format_bytes(u64(s["file_size"])).c_str(),
                static_cast<unsigned long long>(u64(s["file_size"])));
    std::printf("format:        GGUF v%llu, alignment %llu, type ids read as %s\n",
                static_cast<unsigned long long>(u64(s["gguf_version"])),
                static_cast<unsigned long long>(u64(s["alignment"])),
                s["type_ids_read_as"].get<std::string>().c_str());
    const json& a = s["architecture"];
    if (a["loadable"].get<bool>()) {
        std::printf(
            "architecture:  %s — %llu blocks, hidden %llu, ffn %llu, %llu heads (%llu KV, head dim "
            "%llu), "
            "vocab %llu, context %llu, rope base %g, ffn %s%s\n",
            a["name"].get<std::string>().c_str(), static_cast<unsigned long long>(u64(a["blocks"])),
            static_cast<unsigned long long>(u64(a["hidden"])),
            static_cast<unsigned long long>(u64(a["ffn_hidden"])),
            static_cast<unsigned long long>(u64(a["heads"])),
            static_cast<unsigned long long>(u64(a["kv_heads"])),
            static_cast<unsigned long long>(u64(a["head_dim"])),
            static_cast<unsigned long long>(u64(a["vocab_size"])),
            static_cast<unsigned long long>(u64(a["context_length"])),
            a["rope_freq_base"].get<double>(), a["ffn_activation"].get<std::string>().c_str(),
            a["tied_output"].get<bool>() ? ", tied output" : "");
    } else {
        std::printf("architecture:  '%s' — not loadable: %s\n",
                    a["name"].get<std::string>().c_str(), a["problem"].get<std::string>().c_str());
    }
    std::string types;
    for (const auto& [name, v] : s["tensor_types"].items()) {
        if (!types.empty()) types += ", ";
        types += name + " x" + std::to_string(u64(v["count"])) + " (" +
                 format_bytes(u64(v["bytes"])) + ")";
    }
    std::printf("tensors:       %llu in %llu blocks: %s\n",
                static_cast<unsigned long long>(u64(s["tensor_count"])),
                static_cast<unsigned long long>(u64(s["blocks_with_tensors"])), types.c_str());
    const json& t = s["tokenizer"];
    if (!t["present"].get<bool>()) {
        std::printf("tokenizer:     none embedded (use --tokenizer tokenizer.json)\n");
    } else if (t.contains("problem")) {
        std::printf("tokenizer:     unreadable: %s\n", t["problem"].get<std::string>().c_str());
    } else {
        std::printf(
            "tokenizer:     %s (pre %s), %llu tokens, %llu merges, bos %s, eos %s, eot %s, chat "
            "template %s\n",
            t["model"].get<std::string>().c_str(), t["pre"].get<std::string>().c_str(),
            static_cast<unsigned long long>(u64(t["tokens"])),
            static_cast<unsigned long long>(u64(t["merges"])),
            t.contains("bos") ? std::to_string(t["bos"].get<int>()).c_str() : "-",
            t.contains("eos") ? std::to_string(t["eos"].get<int>()).c_str() : "-",
            t.contains("eot") ? std::to_string(t["eot"].get<int>()).c_str() : "-",
            t["chat_template"].get<bool>() ? "yes" : "no");
    }
    if (s.contains("estimated_memory_bytes")) {
        std::printf(
            "memory:        ~%s (weights %s memory-mapped + f16 KV cache %s at full context)\n",
            format_bytes(u64(s["estimated_memory_bytes"])).c_str(),
            format_bytes(u64(s["weight_bytes"])).c_str(),
            format_bytes(u64(a["kv_cache_bytes_f16_full_context"])).c_str());
    }
    if (include_metadata) {
        std::printf("metadata:      %zu keys\n", s["metadata"].size());
        for (const auto& m : s["metadata"])
            std::printf("  %-44s %-7s %s\n", m["key"].get<std::string>().c_str(),
                        m["type"].get<std::string>().c_str(),
                        m["value"].get<std::string>().c_str());
    }
    if (include_tensors) {
        std::printf("%-36s %-6s %-16s %14s %14s\n", "tensor", "type", "shape", "bytes", "offset");
        for (const auto& x : s["tensors"]) {
            std::string shape = "[";
            for (const auto& d : x["shape"])
                shape += (shape.size() > 1 ? ", " : "") + std::to_string(d.get<std::uint64_t>());
            shape += "]";
            std::printf("%-36s %-6s %-16s %14llu %14llu\n", x["name"].get<std::string>().c_str(),
                        x["type"].get<std::string>().c_str(), shape.c_str(),
                        static_cast<unsigned long long>(u64(x["bytes"])),
                        static_cast<unsigned long long>(u64(x["offset"])));
        }
    }
}

}  // namespace bitnet::cli

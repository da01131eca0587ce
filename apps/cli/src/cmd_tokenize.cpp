// `bitnet tokenize` and `bitnet detokenize`: inspect how text maps to token ids.
#include <climits>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bitnet/common/env.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/tokenizers/tokenizer.hpp"
#include "commands.hpp"

namespace bitnet::cli {
namespace {

struct TokenizerSource {
    std::string model;
    std::string tokenizer_json;
};

void add_source_options(CLI::App* cmd, TokenizerSource& source) {
    cmd->add_option("-m,--model", source.model,
                    "GGUF model whose embedded tokenizer to use (default: BITNET_GGUF)");
    cmd->add_option("--tokenizer", source.tokenizer_json,
                    "Hugging Face tokenizer.json (default: BITNET_TOKENIZER)");
}

std::unique_ptr<tokenizers::Tokenizer> open_tokenizer(const TokenizerSource& source) {
    const EnvConfig& env = env_config();
    std::string json = source.tokenizer_json, model = source.model;
    if (json.empty() && model.empty()) {
        if (env.tokenizer)
            json = *env.tokenizer;
        else if (env.gguf)
            model = *env.gguf;
    }
    if (!json.empty()) return tokenizers::load_tokenizer_json(json);
    if (!model.empty()) {
        auto file = models::GgufFile::open(model);
        return tokenizers::load_tokenizer(*file);
    }
    fail(ErrorCode::InvalidArgument,
         "no tokenizer: pass -m MODEL.gguf or --tokenizer tokenizer.json "
         "(or set BITNET_GGUF / BITNET_TOKENIZER)");
}

// Printable form of a token's bytes: UTF-8 as is, control and invalid bytes as \xNN.
std::string escape_piece(const std::string& piece) {
    std::string out;
    for (std::size_t i = 0; i < piece.size(); ++i) {
        const auto c = static_cast<unsigned char>(piece[i]);
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\r')
            out += "\\r";
        else if (c < 0x20 || c == 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02X", c);
            out += b;
        } else
            out += static_cast<char>(c);
    }
    return out;
}

std::vector<std::int32_t> parse_ids(const std::vector<std::string>& args) {
    std::vector<std::int32_t> ids;
    for (const std::string& arg : args) {
        std::size_t start = 0;
        while (start <= arg.size()) {
            const std::size_t end = arg.find_first_of(", ", start);
            const std::string item =
                arg.substr(start, end == std::string::npos ? std::string::npos : end - start);
            if (!item.empty()) {
                std::size_t used = 0;
                long long v = 0;
                try {
                    v = std::stoll(item, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (used != item.size() || v < 0 || v > INT32_MAX)
                    fail(ErrorCode::InvalidArgument,
                         "'" + item + "' is not a token id (non-negative integer)");
                ids.push_back(static_cast<std::int32_t>(v));
            }
            if (end == std::string::npos) break;
            start = end + 1;
        }
    }
    return ids;
}

}  // namespace

Command add_tokenize_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("tokenize", "Show the token ids and pieces of a text");
    struct Options {
        TokenizerSource source;
        std::string text;
        bool ids_only = false, no_bos = false, parse_special = false, json = false;
    };
    auto o = std::make_shared<Options>();
    add_source_options(cmd, o->source);
    cmd->add_option("text", o->text, "Text to tokenize")->required();
    cmd->add_flag("--ids-only", o->ids_only, "Print only the ids, space-separated");
    cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token");
    cmd->add_flag("--parse-special", o->parse_special,
                  "Treat special tokens written in the text (<|eot_id|>) as tokens");
    cmd->add_flag("--json", o->json, "Machine-readable output");
    return {
        cmd, [o]() {
            const auto tok = open_tokenizer(o->source);
            const bool add_bos = !o->no_bos && tok->data().add_bos;
            const auto ids = tok->encode(o->text, add_bos, o->parse_special);
            if (o->json) {
                nlohmann::json j = {{"ids", ids}, {"pieces", nlohmann::json::array()}};
                for (auto id : ids)
                    j["pieces"].push_back(tok->decode(std::vector<std::int32_t>{id}));
                std::printf("%s\n", j.dump().c_str());
            } else if (o->ids_only) {
                std::string line;
                for (auto id : ids) line += (line.empty() ? "" : " ") + std::to_string(id);
                std::printf("%s\n", line.c_str());
            } else {
                for (auto id : ids)
                    std::printf("%8d  '%s'\n", id, escape_piece(tok->token_to_piece(id)).c_str());
                std::fprintf(stderr, "%zu tokens (%s)\n", ids.size(), tok->description().c_str());
            }
            return kExitOk;
        }};
}

Command add_detokenize_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("detokenize", "Turn token ids back into text");
    struct Options {
        TokenizerSource source;
        std::vector<std::string> ids;
        bool skip_special = false;
    };
    auto o = std::make_shared<Options>();
    add_source_options(cmd, o->source);
    cmd->add_option("ids", o->ids, "Token ids, separated by spaces or commas")->required();
    cmd->add_flag("--skip-special", o->skip_special,
                  "Leave out control tokens such as <|begin_of_text|>");
    return {cmd, [o]() {
                const auto ids = parse_ids(o->ids);
                const auto tok = open_tokenizer(o->source);
                std::printf("%s\n", tok->decode(ids, o->skip_special).c_str());
                return kExitOk;
            }};
}

}  // namespace bitnet::cli

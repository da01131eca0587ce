#include "bitnet/crossval/logits_file.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

#include "bitnet/common/atomic_file.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/common/mapped_file.hpp"

namespace bitnet::crossval {
namespace {
constexpr char kMagic[8] = {'B', 'N', 'L', 'O', 'G', 'I', 'T', '1'};
}

void write_logits_file(const std::string& path, const LogitsFile& f) {
    if (f.logits.size() != f.positions.size() * static_cast<std::size_t>(f.n_vocab))
        fail(ErrorCode::InvalidArgument, "logits size does not match positions x n_vocab");
    nlohmann::json header = {{"format", "bitnet-logits"}, {"version", 1},
                             {"producer", f.producer},    {"model_sha256", f.model_sha256},
                             {"n_vocab", f.n_vocab},      {"tokens", f.tokens},
                             {"positions", f.positions}};
    if (!f.greedy.empty()) header["greedy"] = f.greedy;
    const std::string text = header.dump();
    const auto length = static_cast<std::uint32_t>(text.size());
    AtomicFileWriter out(path);
    out.write(kMagic, 8);
    out.write(&length, 4);
    out.write(text.data(), text.size());
    out.write(f.logits.data(), f.logits.size() * 4);
    out.commit();
}

LogitsFile read_logits_file(const std::string& path) {
    MappedFile file(path);
    auto bad = [&path](const std::string& what) {
        fail(ErrorCode::InvalidFormat, path + ": " + what);
    };
    if (file.size() < 12 || std::memcmp(file.data(), kMagic, 8) != 0)
        bad("not a bitnet reference-logits file (magic BNLOGIT1 missing)");
    std::uint32_t length;
    std::memcpy(&length, file.data() + 8, 4);
    if (length > file.size() - 12)
        bad("header length " + std::to_string(length) + " runs past the end of the file");
    nlohmann::json h;
    try {
        h = nlohmann::json::parse(
            std::string(reinterpret_cast<const char*>(file.data() + 12), length));
    } catch (const nlohmann::json::exception& e) {
        bad(std::string("header is not valid JSON: ") + e.what());
    }
    LogitsFile f;
    try {
        if (h.value("format", "") != "bitnet-logits" || h.value("version", 0) != 1)
            bad("unsupported format/version in header");
        f.producer = h.value("producer", "");
        f.model_sha256 = h.value("model_sha256", "");
        f.n_vocab = h.at("n_vocab").get<std::int64_t>();
        f.tokens = h.at("tokens").get<std::vector<std::int32_t>>();
        f.positions = h.at("positions").get<std::vector<std::int64_t>>();
        if (h.contains("greedy")) f.greedy = h["greedy"].get<std::vector<std::int32_t>>();
    } catch (const nlohmann::json::exception& e) {
        bad(std::string("header field missing or of the wrong type: ") + e.what());
    }
    if (f.n_vocab <= 0 || f.n_vocab > (1 << 24))
        bad("n_vocab " + std::to_string(f.n_vocab) + " is out of range");
    for (auto p : f.positions)
        if (p < 0 || p >= static_cast<std::int64_t>(f.tokens.size()))
            bad("position " + std::to_string(p) + " is outside the token list");
    const std::uint64_t expected = f.positions.size() * static_cast<std::uint64_t>(f.n_vocab) * 4;
    const std::uint64_t available = file.size() - 12 - length;
    if (available != expected)
        bad("expected " + std::to_string(expected) + " bytes of logits (" +
            std::to_string(f.positions.size()) + " positions x " + std::to_string(f.n_vocab) +
            " x 4) but found " + std::to_string(available));
    f.logits.resize(f.positions.size() * static_cast<std::size_t>(f.n_vocab));
    std::memcpy(f.logits.data(), file.data() + 12 + length, expected);
    return f;
}

}  // namespace bitnet::crossval

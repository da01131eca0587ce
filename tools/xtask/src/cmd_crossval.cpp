// `xtask crossval`: checks our engine against a reference and writes a JSON report.
//   --model FILE                 our fast (default) backend vs our reference backend
//   --reference FILE.logits      ours vs a reference-logits file (docs/crossval.md)
//   --write-reference FILE       write our reference backend's logits in that format
//   --cpp-bin PATH               an external engine wrapper that writes that format
// Exit code 0 when every check passes, 1 when one fails (or on errors).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bitnet/common/atomic_file.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/common/sha256.hpp"
#include "bitnet/crossval/comparison.hpp"
#include "bitnet/crossval/logits_file.hpp"
#include "bitnet/inference/engine.hpp"
#include "commands.hpp"

namespace bitnet::xtask {
namespace {

struct Run {
    std::vector<std::int32_t> tokens;
    std::vector<std::int64_t> positions;
    std::vector<float> logits;  // every position
    std::vector<std::int32_t> greedy;
};

Run run_engine(const std::string& model, const std::string& kernel, const std::string& prompt,
               int steps) {
    inference::EngineOptions o;
    o.model_path = model;
    o.kernel = kernel;
    o.device = "cpu";
    auto engine = inference::Engine::load(o);
    Run r;
    r.tokens = engine->tokenizer().encode(prompt, engine->tokenizer().data().add_bos, false);
    r.logits = engine->evaluate_all(r.tokens);
    for (std::size_t i = 0; i < r.tokens.size(); ++i)
        r.positions.push_back(static_cast<std::int64_t>(i));
    if (steps > 0) {
        inference::GenerationRequest g;
        g.prompt = prompt;
        g.n_predict = steps;
        g.sampling.greedy = true;
        engine->reset();
        r.greedy = engine->generate(g).tokens;
    }
    return r;
}

}  // namespace

Command add_crossval_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("crossval",
                                   "Compare our logits with a reference (our reference backend, a "
                                   "logits file, or an external engine)");
    struct Options {
        std::string model, reference, write_reference, cpp_bin, report = "crossval-report.json";
        std::string prompt = "The capital of France is";
        int steps = 16;
        double min_cosine = 0.999, max_relative_l2 = 1e-3;
    };
    auto o = std::make_shared<Options>();
    cmd->add_option("--model", o->model, "GGUF model")->required()->check(CLI::ExistingFile);
    cmd->add_option("--reference", o->reference, "Reference-logits file to check against");
    cmd->add_option("--write-reference", o->write_reference,
                    "Write our reference backend's logits to this file and exit");
    cmd->add_option("--cpp-bin", o->cpp_bin,
                    "External engine wrapper: called as BIN MODEL PROMPT OUT.logits");
    cmd->add_option("--prompt", o->prompt, "Prompt to evaluate")->capture_default_str();
    cmd->add_option("--steps", o->steps, "Greedy steps to compare")->capture_default_str();
    cmd->add_option("--report", o->report, "JSON report path")->capture_default_str();
    cmd->add_option("--min-cosine", o->min_cosine, "Tolerance: minimum cosine per position")
        ->capture_default_str();
    cmd->add_option("--max-rel-l2", o->max_relative_l2,
                    "Tolerance: maximum relative L2 (fast vs reference)")
        ->capture_default_str();
    return {
        cmd, [o]() {
            if (!o->write_reference.empty()) {
                const Run ref = run_engine(o->model, "ref", o->prompt, o->steps);
                crossval::LogitsFile f{
                    "bitnet reference backend",
                    sha256_file(o->model),
                    static_cast<std::int64_t>(ref.logits.size() / ref.tokens.size()),
                    ref.tokens,
                    ref.positions,
                    ref.greedy,
                    ref.logits};
                crossval::write_logits_file(o->write_reference, f);
                std::printf("wrote %s: %zu positions, %zu greedy tokens\n",
                            o->write_reference.c_str(), ref.positions.size(), ref.greedy.size());
                return 0;
            }
            std::string reference_path = o->reference;
            if (!o->cpp_bin.empty()) {
                if (!std::filesystem::exists(o->cpp_bin))
                    fail(ErrorCode::NotFound,
                         "--cpp-bin " + o->cpp_bin +
                             " does not exist; build the external engine and its logits "
                             "wrapper first (the project never downloads or builds third-party "
                             "engines)");
                reference_path =
                    (std::filesystem::temp_directory_path() / "bitnet-cpp-bin.logits").string();
                const std::string command = "'" + o->cpp_bin + "' '" + o->model + "' '" +
                                            o->prompt + "' '" + reference_path + "'";
                if (std::system(command.c_str()) != 0)
                    fail(ErrorCode::Io, "--cpp-bin failed: " + command);
            }
            crossval::Tolerances t = reference_path.empty() ? crossval::same_engine_tolerances()
                                                            : crossval::external_tolerances();
            t.min_cosine = o->min_cosine;
            if (reference_path.empty()) t.max_relative_l2 = o->max_relative_l2;
            crossval::Report report;
            if (reference_path.empty()) {
                const Run fast = run_engine(o->model, "auto", o->prompt, o->steps);
                const Run ref = run_engine(o->model, "ref", o->prompt, o->steps);
                const auto vocab =
                    static_cast<std::int64_t>(fast.logits.size() / fast.tokens.size());
                report = crossval::compare_logits("fast (cpu) vs reference backend", fast.positions,
                                                  fast.logits, ref.logits, vocab, t);
                if (o->steps > 0) crossval::add_greedy_check(report, fast.greedy, ref.greedy, t);
            } else {
                const auto ref = crossval::read_logits_file(reference_path);
                const std::string sha = sha256_file(o->model);
                inference::EngineOptions eo;
                eo.model_path = o->model;
                eo.device = "cpu";
                auto engine = inference::Engine::load(eo);
                if (ref.n_vocab != static_cast<std::int64_t>(engine->model().config().vocab_size))
                    fail(ErrorCode::InvalidFormat,
                         reference_path + ": n_vocab " + std::to_string(ref.n_vocab) +
                             " does not match the model's " +
                             std::to_string(engine->model().config().vocab_size));
                const auto all = engine->evaluate_all(ref.tokens);
                std::vector<float> ours;
                for (auto p : ref.positions)
                    ours.insert(ours.end(), all.begin() + p * ref.n_vocab,
                                all.begin() + (p + 1) * ref.n_vocab);
                report = crossval::compare_logits(
                    "ours vs " + (ref.producer.empty() ? reference_path : ref.producer),
                    ref.positions, ours, ref.logits, ref.n_vocab, t);
                report.checks.insert(
                    report.checks.begin(),
                    {"same model file", ref.model_sha256.empty() || ref.model_sha256 == sha,
                     ref.model_sha256.empty() ? "reference gives no SHA-256"
                                              : "sha256 " + sha.substr(0, 16)});
                if (!ref.greedy.empty()) {
                    inference::GenerationRequest g;
                    g.n_predict = static_cast<int>(ref.greedy.size());
                    g.sampling.greedy = true;
                    // Continue greedily from the reference's own tokens.
                    std::vector<std::int32_t> tokens = ref.tokens, generated;
                    std::vector<float> logits;
                    models::KvCache cache(
                        engine->model().config(),
                        static_cast<std::int64_t>(tokens.size() + ref.greedy.size() + 1),
                        models::KvType::F16);
                    engine->model().forward(tokens, 0, cache, engine->backend(),
                                            models::LogitsFor::LastPosition, logits);
                    for (std::size_t i = 0; i < ref.greedy.size(); ++i) {
                        const auto next = static_cast<std::int32_t>(
                            std::max_element(logits.begin(), logits.end()) - logits.begin());
                        generated.push_back(next);
                        const std::int32_t one[1] = {next};
                        engine->model().forward(one, static_cast<std::int64_t>(tokens.size() + i),
                                                cache, engine->backend(),
                                                models::LogitsFor::LastPosition, logits);
                    }
                    crossval::add_greedy_check(report, generated, ref.greedy, t);
                }
            }
            std::fputs(report.summary().c_str(), stdout);
            AtomicFileWriter out(o->report);
            const std::string text = report.to_json().dump(2) + "\n";
            out.write(text.data(), text.size());
            out.commit();
            std::printf("report: %s\n", o->report.c_str());
            return report.passed() ? 0 : 1;
        }};
}

}  // namespace bitnet::xtask

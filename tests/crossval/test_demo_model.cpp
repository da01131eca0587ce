// The demo model end to end against PyTorch: the Hugging Face checkpoint trained by
// tools/train-demo/train.py (rebuilt from the committed GGUF and proven identical to PyTorch's
// export by its committed per-tensor SHA-256 manifest — see demo_checkpoint.hpp) is converted with
// `bitnet convert`'s code and must give the committed GGUF byte for byte; the engine's logits
// and greedy tokens on that GGUF must match PyTorch's float32 evaluation of the checkpoint
// (reference.json, written by train.py), and so must its perplexity on held-out text.
// This cross-validates the converter, the tokenizer and the engine on real, trained weights.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bitnet/common/error.hpp"
#include "bitnet/common/sha256.hpp"
#include "bitnet/crossval/logit_metrics.hpp"
#include "bitnet/inference/engine.hpp"
#include "bitnet/inference/perplexity.hpp"
#include "bitnet/models/file_checks.hpp"
#include "bitnet/models/safetensors_file.hpp"
#include "bitnet/models/synthetic_model.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/tokenizers/tokenizer_data.hpp"
#include "convert.hpp"
#include "demo_checkpoint.hpp"
#include "test_support.hpp"

using namespace bitnet;
namespace fs = std::filesystem;

namespace {

const fs::path kDemo = fs::path(BITNET_SOURCE_DIR) / "assets/demo-model";

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

const nlohmann::json& reference() {
    static const nlohmann::json r = nlohmann::json::parse(read_file(kDemo / "reference.json"));
    return r;
}

std::unique_ptr<inference::Engine> load(const std::string& path, models::KvType kv) {
    inference::EngineOptions o;
    o.model_path = path;
    o.context = 512;
    o.threads = 2;
    o.device = "cpu";
    o.kv_type = kv;
    return inference::Engine::load(o);
}

std::string run_convert(const fs::path& input, const fs::path& output,
                        const std::string& to = "i2_s", const std::string& head = "") {
    convert::ConvertOptions o;
    o.input = input.string();
    o.output = output.string();
    o.to = to;
    o.head = head;
    o.name = "bitnet demo (KJV)";
    o.progress = false;
    convert::convert_model(o);
    return read_file(output);
}

}  // namespace

TEST_CASE("demo model: the rebuilt checkpoint is PyTorch's export, tensor for tensor") {
    test::TempDir dir("demo-manifest");
    const auto ckpt = test::demo_checkpoint(dir);
    const auto manifest =
        nlohmann::json::parse(read_file(kDemo / "checkpoint/model.safetensors.manifest.json"));
    const auto file = models::SafetensorsFile::open((ckpt / "model.safetensors").string());
    REQUIRE(file->tensors().size() == manifest["tensors"].size());
    for (const auto& [name, expected] : manifest["tensors"].items()) {
        INFO(name);
        const auto& t = file->tensor(name);
        CHECK(t.dtype == expected["dtype"]);
        CHECK(t.shape == expected["shape"].get<std::vector<std::int64_t>>());
        // I2_S keeps no sign of zero: ternary zeros come back +0 (PyTorch wrote some as -0).
        std::vector<std::uint16_t> values(t.bytes / 2);
        std::memcpy(values.data(), t.data, t.bytes);
        const bool has_negative_zero =
            std::find(values.begin(), values.end(), 0x8000) != values.end();
        CHECK_FALSE(has_negative_zero);
        Sha256 h;
        h.update(values.data(), t.bytes);
        CHECK(Sha256::hex(h.finish()) == expected["sha256_zero_sign_normalized"]);
    }
}

TEST_CASE("demo model: converting the checkpoint reproduces the committed GGUF") {
    test::TempDir dir("demo-convert");
    const std::string ours = run_convert(test::demo_checkpoint(dir), dir.file("demo.gguf"));
    const std::string committed = read_file(kDemo / "bitnet-demo-kjv-i2_s.gguf");
    CHECK(ours.size() == committed.size());
    CHECK(ours == committed);
    CHECK(committed.size() <= 8u * 1000 * 1000);
    // bitnet.cpp's layout: the loader's and validator's checks all pass.
    const auto file = models::GgufFile::open((kDemo / "bitnet-demo-kjv-i2_s.gguf").string());
    const auto report = models::check_model_file(*file, true);
    INFO(report.first_problem());
    CHECK(report.ok());
    CHECK(file->get("general.architecture").to_string("") == "bitnet-b1.58");
    CHECK(file->get("general.file_type").to_u64("") == 40);
}

// PyTorch's references are float64 (reference.json "greedy_margins" holds the top-2 logit gap of
// every greedy step). Where that gap is below 1e-2 the two choices are a tie within float32
// arithmetic through int8 activation rounding, so no float32 engine can promise either token:
// free-running greedy must be identical for 32 steps on every prompt without such a tie, and
// with the reference's own tokens fed back (teacher forcing) every step must pick PyTorch's
// token wherever the gap is >= 1e-2, and be within 0.05 of it where it is not.
TEST_CASE("demo model: logits and 32 greedy tokens match PyTorch on 4 prompts") {
    constexpr float kTie = 1e-2f;
    int free_running_checked = 0;
    for (const auto kv : {models::KvType::F32, models::KvType::F16}) {
        auto engine = load((kDemo / "bitnet-demo-kjv-i2_s.gguf").string(), kv);
        const std::size_t vocab = engine->model().config().vocab_size;
        for (const auto& p : reference()["prompts"]) {
            INFO(p["prompt"].get<std::string>() << (kv == models::KvType::F16 ? " (F16 KV)" : ""));
            const auto tokens =
                engine->tokenizer().encode(p["prompt"].get<std::string>(), true, false);
            CHECK(tokens == p["tokens"].get<std::vector<std::int32_t>>());
            const auto greedy = p["greedy"].get<std::vector<std::int32_t>>();
            const auto margins = p["greedy_margins"].get<std::vector<float>>();
            REQUIRE(greedy.size() == 32);

            // Teacher forcing: prompt + the reference's first 31 tokens in one pass.
            std::vector<std::int32_t> forced = tokens;
            forced.insert(forced.end(), greedy.begin(), greedy.end() - 1);
            const auto logits = engine->evaluate_all(forced);
            const std::span<const float> last(logits.data() + (tokens.size() - 1) * vocab, vocab);
            CHECK(crossval::cosine_similarity(last, p["last_logits"].get<std::vector<float>>()) >=
                  0.999);
            for (std::size_t i = 0; i < greedy.size(); ++i) {
                const float* row = logits.data() + (tokens.size() - 1 + i) * vocab;
                const auto ours =
                    static_cast<std::int32_t>(std::max_element(row, row + vocab) - row);
                INFO("step " << i << ": reference margin " << margins[i]);
                if (margins[i] >= kTie)
                    CHECK(ours == greedy[i]);
                else
                    CHECK(row[ours] - row[greedy[i]] < 0.05f);
            }
            if (*std::min_element(margins.begin(), margins.end()) < kTie) continue;
            inference::GenerationRequest r;
            r.prompt = p["prompt"].get<std::string>();
            r.n_predict = 32;
            r.sampling.greedy = true;
            CHECK(engine->generate(r).tokens == greedy);
            ++free_running_checked;
        }
    }
    CHECK(free_running_checked >= 4);  // two prompts without a tie, two KV cache types
}

TEST_CASE("demo model: held-out perplexity within 1% of PyTorch's") {
    auto engine = load((kDemo / "bitnet-demo-kjv-i2_s.gguf").string(), models::KvType::F16);
    const auto& ref = reference()["eval_slice"];
    const auto tokens =
        engine->tokenizer().encode(read_file(kDemo / "eval_slice.txt"), true, false);
    CHECK(tokens.size() == ref["tokens"].get<std::size_t>());
    const auto bos = engine->tokenizer().special_tokens().bos;
    REQUIRE(bos);
    const auto r = inference::compute_perplexity_chunks(*engine, tokens, 512, *bos);
    CHECK(r.scored_tokens == ref["scored_tokens"].get<std::int64_t>());
    const double expected = ref["perplexity"].get<double>();
    CHECK(std::abs(r.perplexity - expected) / expected < 0.01);
}

TEST_CASE("convert: i2_s -> tq2_0 / tq1_0 / f16 -> i2_s is lossless") {
    test::TempDir dir("demo-requant");
    // TQ2_0/TQ1_0 blocks are 256 values: the small synthetic preset (rows of 256 and 512) can
    // take them; the demo model (rows of 384) can go through f16 and is refused tq2_0 clearly.
    models::SyntheticModelOptions options;
    options.config = models::preset_config("small");
    const fs::path synthetic = dir.file("small.gguf");
    models::synthetic_model_writer(options, [&](models::GgufWriter& w) {
        tokenizers::write_tokenizer_metadata(w, tokenizers::synthetic_tokenizer(512));
    }).write(synthetic.string());
    struct Case {
        fs::path original;
        std::string via;
    };
    const fs::path demo = kDemo / "bitnet-demo-kjv-i2_s.gguf";
    for (const Case& c : {Case{synthetic, "tq2_0"}, Case{synthetic, "tq1_0"},
                          Case{synthetic, "f16"}, Case{demo, "f16"}}) {
        INFO(c.original.filename().string() << " via " << c.via);
        const fs::path mid = dir.file("mid.gguf"), back = dir.file("back.gguf");
        run_convert(c.original, mid, c.via);
        const auto mid_file = models::GgufFile::open(mid.string());
        CHECK(mid_file->tensor("blk.0.attn_q.weight").traits.name ==
              std::string(c.via == "f16"     ? "F16"
                          : c.via == "tq2_0" ? "TQ2_0"
                                             : "TQ1_0"));
        // The codes survive byte for byte; a scale survives to F16 precision (a TQ block's d is
        // F16). The demo's scales are bf16 values, exact in F16, so its file comes back whole.
        const std::string again = run_convert(mid, back, "i2_s");
        if (c.original == demo) CHECK((again == read_file(demo)));
        const auto before = models::GgufFile::open(c.original.string());
        const auto after = models::GgufFile::open(back.string());
        for (const auto& t : before->tensors()) {
            const auto& u = after->tensor(t.name);
            REQUIRE(u.size_bytes == t.size_bytes);
            if (t.type_id != static_cast<std::uint32_t>(quant::TypeId::I2_S)) {
                CHECK(std::equal(t.data, t.data + t.size_bytes, u.data));
                continue;
            }
            const std::uint64_t codes = t.n_elements / 4;
            CHECK(std::equal(t.data, t.data + codes, u.data));
            const float s0 = quant::i2s_scale(t.data, static_cast<std::int64_t>(t.n_elements));
            const float s1 = quant::i2s_scale(u.data, static_cast<std::int64_t>(t.n_elements));
            CHECK(std::abs(s1 - s0) <= s0 * 0x1p-11f);
        }
    }
    try {
        run_convert(demo, dir.file("tq.gguf"), "tq2_0");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(e.what(),
                   Catch::Contains("rows of 384 values, not a multiple of TQ2_0's block"));
    }
    CHECK_FALSE(fs::exists(dir.file("tq.gguf")));
    const fs::path q8 = dir.file("q8.gguf");
    run_convert(demo, q8, "i2_s", "q8_0");
    CHECK(models::GgufFile::open(q8.string())->tensor("token_embd.weight").traits.name ==
          std::string("Q8_0"));
    CHECK(fs::file_size(q8) < fs::file_size(demo));
}

TEST_CASE("convert: bad checkpoints are clear errors and leave no output file") {
    test::TempDir dir("demo-bad");
    auto copy_checkpoint = [&](const std::string& name) {
        const fs::path d = test::demo_checkpoint(dir, name);
        fs::permissions(d / "model.safetensors", fs::perms::owner_write, fs::perm_options::add);
        return d;
    };
    auto expect_error = [&](const fs::path& ckpt, const std::string& message) {
        const fs::path out = dir.file("out.gguf");
        try {
            run_convert(ckpt, out);
            FAIL("no error");
        } catch (const Error& e) {
            CHECK_THAT(e.what(), Catch::Contains(message));
        }
        CHECK_FALSE(fs::exists(out));
        for (const auto& f : fs::directory_iterator(dir.path()))
            CHECK(f.path().filename().string().find(".tmp") == std::string::npos);
    };
    {  // truncated safetensors
        const fs::path d = copy_checkpoint("truncated");
        fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") / 2);
        expect_error(d, "outside the");
    }
    {  // an unknown dtype in the header (same length, so offsets stay valid)
        const fs::path d = copy_checkpoint("dtype");
        std::string bytes = read_file(d / "model.safetensors");
        const auto at = bytes.find("\"BF16\"");
        REQUIRE(at != std::string::npos);
        bytes.replace(at, 6, "\"XF16\"");
        std::ofstream(d / "model.safetensors", std::ios::binary) << bytes;
        expect_error(d, "dtype 'XF16'");
    }
    {  // config shapes that disagree with the tensors
        const fs::path d = copy_checkpoint("shape");
        auto config = nlohmann::json::parse(read_file(d / "config.json"));
        config["intermediate_size"] = 2048;
        std::ofstream(d / "config.json") << config.dump();
        expect_error(d, "config.json implies");
    }
    {  // a tokenizer whose vocabulary is not the model's
        const fs::path d = copy_checkpoint("vocab");
        auto tok = nlohmann::json::parse(read_file(d / "tokenizer.json"));
        tok["model"]["vocab"]["zzz-extra-token"] = 4096;
        std::ofstream(d / "tokenizer.json") << tok.dump();
        expect_error(d, "the tokenizer does not belong to this checkpoint");
    }
    {  // not a BitNet checkpoint
        const fs::path d = copy_checkpoint("arch");
        auto config = nlohmann::json::parse(read_file(d / "config.json"));
        config["architectures"] = {"LlamaForCausalLM"};
        std::ofstream(d / "config.json") << config.dump();
        expect_error(d, "BitNetForCausalLM");
    }
}

TEST_CASE("ternarize: absmean for master weights, exact codes for ternary ones") {
    // gamma = mean|w| = (0.5 + 1.5 + 0.1 + 2.0) / 4 = 1.025
    std::vector<float> w = {0.5f, -1.5f, 0.1f, 2.0f};
    bool exact = true;
    const float gamma = convert::ternarize(w, exact);
    CHECK_FALSE(exact);
    CHECK(gamma == Approx(1.025f));
    // 0.5/1.025 = 0.49 -> 0; -1.46 -> -1; 0.098 -> 0; 1.95 -> clamp 1
    CHECK(w == std::vector<float>{0.0f, -gamma, 0.0f, gamma});
    std::vector<float> t = {0.25f, 0.0f, -0.25f, 0.25f};
    CHECK(convert::ternarize(t, exact) == 0.25f);
    CHECK(exact);
    CHECK(t == std::vector<float>{0.25f, 0.0f, -0.25f, 0.25f});
}

#include "bitnet/inference/engine.hpp"

#include <algorithm>
#include <climits>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/common/env.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"
#include "bitnet/common/mapped_file.hpp"
#include "bitnet/common/memory_usage.hpp"
#include "bitnet/common/timer.hpp"
#include "bitnet/kernels/cuda_backend.hpp"
#include "bitnet/kernels/cuda_info.hpp"
#include "bitnet/kernels/threads.hpp"
#include "decode_state.hpp"

namespace bitnet::inference {
namespace {

constexpr std::int64_t kDefaultMaxContext = 4096;

// A fallback is a documented degradation (slower or different path). Outside strict mode it is
// logged; with BITNET_STRICT_MODE=1 it is an error.
void fallback(const std::string& what) {
    if (env_config().strict_mode)
        fail(ErrorCode::Unsupported, what + " (BITNET_STRICT_MODE=1 forbids fallbacks)");
    log::warn("{}", what);
}

// The CUDA device to use, or -1 for the CPU. auto: the first CUDA device when there is one.
int choose_device(const std::string& device) {
    if (device == "cpu") return -1;
    const kernels::CudaInfo cuda = kernels::cuda_info();
    if (device == "auto") {
        if (cuda.device_count > 0) {
            log::info("device auto: cuda:0 ({})", cuda.first_device_name);
            return 0;
        }
        log::debug("device auto: CPU ({})", cuda.compiled ? cuda.reason : "not a gpu build");
        return -1;
    }
    if (device.rfind("cuda", 0) == 0 && (device.size() == 4 || device[4] == ':')) {
        int index = 0;
        if (device.size() > 5) {
            const std::string number = device.substr(5);
            if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos ||
                number.size() > 3)
                fail(ErrorCode::InvalidArgument,
                     "--device " + device + ": the device index must be a number (cuda:0)");
            index = std::stoi(number);
        } else if (device.size() == 5) {
            fail(ErrorCode::InvalidArgument, "--device cuda: needs an index (cuda:0)");
        }
        if (index >= cuda.device_count)
            fail(ErrorCode::Unsupported,
                 "--device " + device + " requested, but " +
                     (cuda.device_count > 0
                          ? std::to_string(cuda.device_count) + " CUDA device(s) are present"
                          : (cuda.compiled ? cuda.reason
                                           : std::string("this build has no CUDA "
                                                         "(cmake --preset gpu)"))) +
                     "; use --device cpu");
        return index;
    }
    fail(ErrorCode::InvalidArgument, "unknown device '" + device + "'; use auto, cpu or cuda[:N]");
}

// `auto`: whichever of the I2_S, TL1 and TL2 kernels measured fastest on this CPU.
std::string effective_kernel(const std::string& kernel) {
    return kernel == "auto" ? kernels::fastest_ternary_kernel() : kernel;
}

std::unique_ptr<kernels::Backend> choose_backend(const std::string& kernel, int threads) {
    if (kernel == "ref") return kernels::make_reference_backend();
    if (kernel == "i2s") return kernels::make_cpu_backend(threads);
    if (kernel == "tl1") return kernels::make_tl1_backend(threads);
    if (kernel == "tl2") return kernels::make_tl2_backend(threads);
    fail(ErrorCode::InvalidArgument,
         "unknown kernel '" + kernel + "'; use auto, i2s, tl1, tl2 or ref");
}

// CPU decode streams every weight once per token; from 2 MB pages it ran ~6% faster on the
// 2-core VM (fewer TLB misses, prefetches past 4 kB boundaries). Done after the TL repack and
// the head's re-quantization released their tensors: those are not copied (peak RSS stays as
// with the mapping; the embedding rows of a re-quantized head are read from the file).
void keep_weights_in_huge_pages(const models::GgufFile& file, bool keep_mapped) {
    if (keep_mapped) return;
    if (!transparent_huge_pages_available()) {
        log::debug("weights stay memory-mapped: transparent huge pages are off");
        return;
    }
    Timer timer;
    if (file.copy_to_huge_pages())
        log::info("weights copied into huge pages in {:.0f} ms (--mmap keeps the file mapping)",
                  timer.milliseconds());
    else
        log::warn("could not copy the weights into huge pages; reading them from the mapping");
}

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
    switch (reason) {
        case StopReason::Length:
            return "length";
        case StopReason::EndOfGeneration:
            return "end of generation";
        case StopReason::StopString:
            return "stop string";
        case StopReason::ContextFull:
            return "context full";
        case StopReason::Cancelled:
            return "cancelled";
    }
    return "unknown";
}

std::unique_ptr<Engine> Engine::load(const EngineOptions& options) {
    Timer timer;
    std::unique_ptr<Engine> e(new Engine());
    e->options_ = options;
    const int cuda_device = choose_device(options.device);
    const int threads = options.threads > 0
                            ? options.threads
                            : env_config().threads.value_or(cpu_features().physical_cores);
    kernels::use_cpu_threads(threads);
    if (cuda_device >= 0) {
        if (options.kernel != "auto")
            fail(ErrorCode::InvalidArgument, "--kernel " + options.kernel +
                                                 " selects a CPU kernel; with --device cuda leave "
                                                 "it at auto (or use --device cpu)");
        e->backend_ = kernels::make_cuda_backend(cuda_device, threads);
    } else {
        e->backend_ = choose_backend(effective_kernel(options.kernel), threads);
    }
    e->file_ = models::GgufFile::open(options.model_path);
    e->model_ = std::make_unique<models::Transformer>(e->file_);
    e->model_->set_attention_mode(options.flash_attention ? models::AttentionMode::Flash
                                                          : models::AttentionMode::Standard);
    bool has_i2s = false;
    for (const kernels::WeightView* w : e->model_->projection_weights())
        has_i2s = has_i2s || w->type == quant::TypeId::I2_S;
    if ((options.kernel == "tl1" || options.kernel == "tl2") && !has_i2s)
        fallback("--kernel " + options.kernel + " takes I2_S weights and " + options.model_path +
                 " has none; its projections run on their own type's kernels");
    e->tokenizer_ = options.tokenizer_path.empty()
                        ? tokenizers::load_tokenizer(*e->file_)
                        : tokenizers::load_tokenizer_json(options.tokenizer_path);
    const auto& config = e->model_->config();
    if (e->tokenizer_->vocab_size() != static_cast<std::size_t>(e->model_->output_weight().rows))
        fail(ErrorCode::InvalidFormat, options.model_path + ": the tokenizer has " +
                                           std::to_string(e->tokenizer_->vocab_size()) +
                                           " tokens but the model's output has " +
                                           std::to_string(e->model_->output_weight().rows) +
                                           " rows; the tokenizer does not belong to this model");
    if (options.head == "q8_0") {
        kernels::WeightView head = e->model_->output_weight();
        if (head.type != quant::TypeId::Q8_0) {
            e->requantized_head_ = kernels::requantize_to_q8_0(head, threads);
            head.type = quant::TypeId::Q8_0;
            head.data = e->requantized_head_.data();
            e->model_->set_output_weight(head);
            // The F16 matrix was read once for the conversion; only embedding rows are needed
            // from it now, so give its pages back (they fault in again row by row).
            e->file_->release_pages(e->file_->tensor(
                e->model_->config().tied_output ? "token_embd.weight" : "output.weight"));
        }
    } else if (options.head == "auto" && cuda_device < 0) {
        e->screen_head();
    } else if (options.head != "auto" && options.head != "f16") {
        fail(ErrorCode::InvalidArgument,
             "unknown --head '" + options.head + "'; use auto, f16 (as stored) or q8_0");
    }
    if (const std::string lut = effective_kernel(options.kernel);
        cuda_device < 0 && has_i2s && (lut == "tl1" || lut == "tl2")) {
        // TL1/TL2 compute from a repacked copy of the I2_S weights: made now, a layer's worth at
        // a time, each batch's file pages given back as soon as it is copied, so the copies and
        // the file's pages never stack up (2b4t, TL2: peak RSS 1.54 GB with one batch). After
        // the screening head, whose making has the F16 head resident until it is given back
        // (the other way round: 1.68 GB).
        Timer repack;
        const std::vector<const kernels::WeightView*> weights = e->model_->projection_weights();
        constexpr std::size_t kBatch = 8;
        for (std::size_t i = 0; i < weights.size(); i += kBatch) {
            const std::vector<const kernels::WeightView*> batch(
                weights.begin() + static_cast<std::ptrdiff_t>(i),
                weights.begin() +
                    static_cast<std::ptrdiff_t>(std::min(i + kBatch, weights.size())));
            e->backend_->prepare_weights(batch);
            for (const models::GgufTensorInfo& t : e->file_->tensors())
                if (t.type_id == static_cast<std::uint32_t>(quant::TypeId::I2_S) &&
                    std::any_of(batch.begin(), batch.end(),
                                [&](const kernels::WeightView* w) { return w->data == t.data; }))
                    e->file_->release_pages(t);
        }
        log::info("{}: repacked the I2_S weights in {:.0f} ms", lut, repack.milliseconds());
    }
    if (cuda_device < 0) keep_weights_in_huge_pages(*e->file_, options.keep_mapped);
    std::int64_t context = options.context > 0
                               ? options.context
                               : std::min<std::int64_t>(config.context_length, kDefaultMaxContext);
    if (context > static_cast<std::int64_t>(config.context_length))
        log::warn("context {} is longer than the model was trained for ({})", context,
                  config.context_length);
    e->cache_ = std::make_unique<models::KvCache>(config, context, options.kv_type);
    if (cuda_device >= 0) {
        const kernels::GpuModelDesc desc = e->model_->gpu_description();
        std::string why;
        if (options.flash_attention || options.kv_type != models::KvType::F16) {
            fallback(
                "the GPU forward pass has standard attention over an F16 KV cache only; "
                "running the products on the GPU and the rest on the CPU");
        } else if (!kernels::gpu_model_supported(desc, why)) {
            fallback("the GPU forward pass cannot run this model (" + why +
                     "); running the products on the GPU and the rest on the CPU");
        } else {
            e->gpu_ = kernels::make_gpu_model(desc, cuda_device, static_cast<int>(context));
            if (options.context_shift)
                fallback(
                    "--context-shift is not available on the GPU yet; generation stops "
                    "when the context is full");
            log::info("GPU forward pass on cuda:{}: {:.1f} MB of device memory", cuda_device,
                      static_cast<double>(e->gpu_->device_bytes()) / 1e6);
        }
    }
    e->load_ms_ = timer.milliseconds();
    return e;
}

// Greedy and top-k tokens on the CPU read the head through an int8 screening copy (the
// backend's matmul_argmax and matmul_top_k; the same tokens as the F16 head): made once here,
// after which only the rows the screening leaves, and the embedding rows, are read from the F16
// matrix, so its pages go back to the file (not copied into huge pages, not resident: on 2b4t
// the copy's 328 MB are resident instead of the F16 head's 657 MB).
void Engine::screen_head() {
    const kernels::WeightView& head = model_->output_weight();
    if (head.type != quant::TypeId::F16) return;
    Timer timer;
    try {
        // (candidate rows read from the file: their pages never join the resident set)
        screened_head_bytes_ = backend_->prepare_screened_head(
            head, [file = file_](const std::uint8_t* at, std::size_t bytes, void* out) {
                file->read_into(at, bytes, out);
            });
    } catch (const Error& e) {
        if (e.code() != ErrorCode::OutOfMemory) throw;
        fallback(std::string(e.what()) + "; the F16 head is read whole for every token");
        return;
    }
    if (screened_head_bytes_ == 0) return;
    screened_tensor_ =
        &file_->tensor(model_->config().tied_output ? "token_embd.weight" : "output.weight");
    file_->release_pages(*screened_tensor_);
    log::info("head: int8 screening rows for greedy and top-k tokens ({:.0f} MB) made in {:.0f} ms",
              static_cast<double>(screened_head_bytes_) / 1e6, timer.milliseconds());
}

// The rows the screening leaves are read from the file, not the mapping, but a tied head is
// also the token embedding, whose rows are read through the mapping (with whatever the OS maps
// around each fault: 64 kB, or a 2 MB page where the file is in huge-page tmpfs): every
// kReleaseEvery tokens those pages leave the resident set again.
void Engine::release_screened_rows() {
    if (screened_tensor_ == nullptr) return;
    constexpr int kReleaseEvery = 32;
    if (screened_steps_++ % kReleaseEvery == 0) file_->release_pages(*screened_tensor_);
}

std::uint64_t Engine::weight_bytes_per_token(bool chosen) const {
    const std::uint64_t all = model_->weight_bytes_per_token();
    if (!chosen || screened_head_bytes_ == 0) return all;
    const kernels::WeightView& head = model_->output_weight();
    return all - static_cast<std::uint64_t>(head.rows) * head.row_bytes() + screened_head_bytes_;
}

void Engine::reset() {
    cached_tokens_.clear();
}

std::int64_t Engine::sync_cache(const std::vector<std::int32_t>& tokens, const RunFresh& run) {
    std::size_t common = 0;
    while (common < cached_tokens_.size() && common < tokens.size() &&
           cached_tokens_[common] == tokens[common])
        ++common;
    // At least the last token must run to produce its logits.
    if (common == tokens.size()) --common;
    const std::vector<std::int32_t> fresh(tokens.begin() + static_cast<std::ptrdiff_t>(common),
                                          tokens.end());
    run(fresh, static_cast<std::int64_t>(common));
    cached_tokens_ = tokens;
    return static_cast<std::int64_t>(fresh.size());
}

void Engine::run(std::span<const std::int32_t> tokens, std::int64_t start, models::LogitsFor which,
                 std::vector<float>& logits) {
    if (gpu_ == nullptr) {
        model_->forward(tokens, start, *cache_, *backend_, which, logits);
        return;
    }
    const auto n = static_cast<std::int64_t>(tokens.size());
    const std::int64_t rows = which == models::LogitsFor::AllPositions ? n : 1;
    logits.resize(static_cast<std::size_t>(rows * model_->output_weight().rows));
    gpu_->forward(tokens.data(), static_cast<int>(n), static_cast<int>(start),
                  which == models::LogitsFor::AllPositions, logits.data());
}

std::span<const float> Engine::run_last(std::span<const std::int32_t> tokens, std::int64_t start) {
    if (gpu_ == nullptr) {
        run(tokens, start, models::LogitsFor::LastPosition, last_logits_);
        return last_logits_;
    }
    const float* logits =
        gpu_->forward_last(tokens.data(), static_cast<int>(tokens.size()), static_cast<int>(start));
    return {logits, static_cast<std::size_t>(model_->output_weight().rows)};
}

std::int32_t Engine::run_greedy(std::span<const std::int32_t> tokens, std::int64_t start) {
    if (gpu_ == nullptr) {
        release_screened_rows();
        return take_greedy(model_->forward_greedy(tokens, start, *cache_, *backend_));
    }
    return take_greedy(gpu_->forward_greedy(tokens.data(), static_cast<int>(tokens.size()),
                                            static_cast<int>(start)));
}

std::int32_t Engine::take_greedy(std::int32_t token) {
    if (token < 0)
        fail(ErrorCode::InvalidArgument, "greedy_token: no finite logits to choose from");
    return token;
}

void Engine::run_top_k(std::span<const std::int32_t> tokens, std::int64_t start,
                       const SamplingParams& sampling, std::span<const std::int32_t> penalized_ids,
                       std::vector<Sampler::Candidate>& candidates) {
    if (gpu_ == nullptr) {
        release_screened_rows();
        const kernels::TopKRule rule{sampling.top_k, sampling.repeat_penalty, penalized_ids};
        model_->forward_top_k(tokens, start, *cache_, *backend_, rule, candidates);
        return;
    }
    kernels::RowChoice choice;
    choice.top_k = sampling.top_k;
    choice.repeat_penalty = sampling.repeat_penalty;
    choice.penalized_end = static_cast<int>(penalized_ids.size());
    const kernels::RowCandidates top =
        gpu_->forward_top_k(tokens.data(), static_cast<int>(tokens.size()), static_cast<int>(start),
                            choice, penalized_ids.data());
    candidates.clear();
    for (int i = 0; i < top.count; ++i)
        candidates.emplace_back(top.candidates[i].logit, top.candidates[i].id);
}

std::vector<float> Engine::evaluate_all(const std::vector<std::int32_t>& tokens) {
    if (static_cast<std::int64_t>(tokens.size()) > cache_->context())
        fail(ErrorCode::InvalidArgument, std::to_string(tokens.size()) +
                                             " tokens do not fit the context of " +
                                             std::to_string(cache_->context()));
    std::vector<float> logits;
    run(tokens, 0, models::LogitsFor::AllPositions, logits);
    cached_tokens_ = tokens;
    return logits;
}

GenerationResult Engine::generate(const GenerationRequest& request, const TextCallback& on_text,
                                  const std::atomic<bool>* cancel) {
    Timer total;
    validate_request(request);
    Timer tokenize_timer;
    std::vector<std::int32_t> tokens = tokenize_prompt(request);
    const double tokenize_ms = tokenize_timer.milliseconds();
    DecodeState state(*tokenizer_, request, tokens, on_text);
    Metrics& m = state.result().metrics;
    m.load_ms = load_ms_;
    m.backend = backend_->name();
    m.kernels = backend_->kernel_names();
    m.tokenize_ms = tokenize_ms;

    Timer prefill_timer;
    // Greedy tokens are chosen with the forward pass (run_greedy: on the GPU, or through the
    // CPU backend's matmul_argmax), and so are the sampler's top-k candidates on the GPU or
    // through the CPU's screened head (the sampler's rules): a token or a few hundred bytes per
    // step instead of the logits.
    const SamplingParams& sampling = request.sampling;
    const std::size_t vocab = static_cast<std::size_t>(model_->output_weight().rows);
    const bool greedy = sampling.is_greedy();
    const bool pass_top_k = (gpu_ != nullptr || screened_head_bytes_ > 0) && !greedy &&
                            sampling.top_k > 0 && sampling.top_k <= kernels::kMaxGpuTopK &&
                            static_cast<std::size_t>(sampling.top_k) < vocab;
    m.weight_bytes_per_token = weight_bytes_per_token(greedy || pass_top_k);
    std::span<const float> logits;
    std::int32_t device_choice = -1;
    std::vector<Sampler::Candidate> candidates;
    auto forward = [&](std::span<const std::int32_t> fresh, std::int64_t start) {
        if (greedy)
            device_choice = run_greedy(fresh, start);
        else if (pass_top_k)
            run_top_k(fresh, start, sampling, state.penalized_ids(vocab), candidates);
        else
            logits = run_last(fresh, start);
    };
    m.prefilled_tokens = sync_cache(tokens, forward);
    m.prefill_ms = prefill_timer.milliseconds();
    m.prefill_tokens_per_s =
        m.prefill_ms > 0 ? static_cast<double>(m.prefilled_tokens) * 1000.0 / m.prefill_ms : 0;

    Timer decode_timer;
    bool first = true;
    // Greedy on the GPU decodes in bursts (GpuModel::decode_greedy): the tokens it chose ahead,
    // whose inputs are already in the cache, wait here to be accepted one by one.
    std::vector<std::int32_t> ahead;
    std::size_t ahead_used = 0;
    while (true) {
        if (cancel != nullptr && cancel->load()) {
            state.finish(StopReason::Cancelled);
            break;
        }
        std::int32_t next = device_choice;
        const bool more = greedy       ? state.accept_token(next)
                          : pass_top_k ? state.accept_candidates(candidates, next)
                                       : state.accept(logits, next);
        if (first) {
            m.time_to_first_token_ms = total.milliseconds();
            first = false;
        }
        if (!more) break;
        if (ahead_used < ahead.size()) {
            device_choice = take_greedy(ahead[ahead_used++]);
            continue;
        }
        if (static_cast<std::int64_t>(cached_tokens_.size()) >= cache_->context()) {
            if (!options_.context_shift || gpu_ != nullptr) {
                state.finish(StopReason::ContextFull);
                break;
            }
            // Keep the first token (BOS), drop the older half of the rest.
            const std::int64_t used = static_cast<std::int64_t>(cached_tokens_.size());
            const std::int64_t keep = 1, discard = (used - keep) / 2;
            cache_->shift(used, keep, discard, model_->config());
            cached_tokens_.erase(cached_tokens_.begin() + keep,
                                 cached_tokens_.begin() + keep + discard);
            log::info("context full: dropped {} tokens (context shift)", discard);
        }
        if (greedy && gpu_ != nullptr) {
            // As many steps as the length limit and the context still allow, up to a burst.
            const std::int64_t pos = static_cast<std::int64_t>(cached_tokens_.size());
            const auto count = static_cast<int>(std::min<std::int64_t>(
                {kernels::kGreedyBurst, state.remaining(), cache_->context() - pos}));
            ahead.resize(static_cast<std::size_t>(count));
            gpu_->decode_greedy(next, static_cast<int>(pos), count, ahead.data());
            // Every step's input is in the cache now: `next`, then all but the last choice.
            cached_tokens_.push_back(next);
            cached_tokens_.insert(cached_tokens_.end(), ahead.begin(), ahead.end() - 1);
            ahead_used = 0;
            device_choice = take_greedy(ahead[ahead_used++]);
            continue;
        }
        const std::int32_t token[1] = {next};
        forward(token, static_cast<std::int64_t>(cached_tokens_.size()));
        cached_tokens_.push_back(next);
    }
    GenerationResult result = std::move(state.result());
    Metrics& out = result.metrics;
    out.decode_ms = decode_timer.milliseconds();
    out.generated_tokens = static_cast<std::int64_t>(result.tokens.size());
    // Tokens that went through a forward pass during decode: every generated one except the last.
    const double decoded = static_cast<double>(std::max<std::int64_t>(0, out.generated_tokens - 1));
    out.decode_tokens_per_s =
        out.decode_ms > 0 && decoded > 0 ? decoded * 1000.0 / out.decode_ms : 0;
    out.peak_rss_bytes = peak_rss_bytes();
    return result;
}

std::vector<std::int32_t> Engine::tokenize_prompt(const GenerationRequest& request) const {
    std::vector<std::int32_t> tokens =
        tokenizer_->encode(request.prompt, request.add_bos, request.parse_special);
    if (tokens.empty())
        fail(ErrorCode::InvalidArgument,
             "the prompt is empty and the model has no BOS token to start from; give a prompt");
    if (static_cast<std::int64_t>(tokens.size()) >= cache_->context())
        fail(ErrorCode::InvalidArgument,
             "the prompt is " + std::to_string(tokens.size()) + " tokens but the context holds " +
                 std::to_string(cache_->context()) + "; shorten it or raise -c");
    return tokens;
}

}  // namespace bitnet::inference

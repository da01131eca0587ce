#include "bitnet/inference/batch_generator.hpp"

#include <algorithm>

#include "bitnet/common/error.hpp"
#include "decode_state.hpp"

namespace bitnet::inference {

struct BatchGenerator::Slot {
    int index = 0;                           // the sequence's KV slot on the GPU
    std::unique_ptr<models::KvCache> cache;  // on the CPU (null when the GPU holds the caches)
    std::unique_ptr<DecodeState> state;      // null: the slot is free
    DoneCallback on_done;
    std::shared_ptr<const std::atomic<bool>> cancel;
    std::int64_t length = 0;  // positions in the cache
    std::int32_t next = 0;    // the sampled token to feed at position `length`
    bool prefilled = false;
    Timer timer;  // from add()
    double prefill_ms = 0;

    bool cancelled() const { return cancel != nullptr && cancel->load(); }
};

BatchGenerator::BatchGenerator(Engine& engine, int slots, std::int64_t context)
    : engine_(engine), context_(context > 0 ? context : engine.context()) {
    if (slots < 1 || slots > 1024)
        fail(ErrorCode::InvalidArgument, "the number of parallel sequences must be 1..1024 (got " +
                                             std::to_string(slots) + ")");
    kernels::GpuModel* gpu = engine.gpu_model();
    if (gpu != nullptr) gpu->reserve_sequences(slots, static_cast<int>(context_));
    for (int i = 0; i < slots; ++i) {
        auto slot = std::make_unique<Slot>();
        slot->index = i;
        // Reserved, not touched: a slot's memory becomes resident only as its sequence grows.
        if (gpu == nullptr)
            slot->cache = std::make_unique<models::KvCache>(engine.model().config(), context_,
                                                            engine.options().kv_type);
        slots_.push_back(std::move(slot));
    }
}

BatchGenerator::~BatchGenerator() = default;

int BatchGenerator::active() const {
    return static_cast<int>(std::count_if(slots_.begin(), slots_.end(),
                                          [](const auto& s) { return s->state != nullptr; }));
}

void BatchGenerator::add(const GenerationRequest& request, TextCallback on_text,
                         DoneCallback on_done, std::shared_ptr<const std::atomic<bool>> cancel,
                         std::vector<std::int32_t> prompt_tokens) {
    validate_request(request);
    if (prompt_tokens.empty()) prompt_tokens = engine_.tokenize_prompt(request);
    if (static_cast<std::int64_t>(prompt_tokens.size()) >= context_)
        fail(ErrorCode::InvalidArgument, "the prompt is " + std::to_string(prompt_tokens.size()) +
                                             " tokens but a sequence holds " +
                                             std::to_string(context_));
    auto free = std::find_if(slots_.begin(), slots_.end(),
                             [](const auto& s) { return s->state == nullptr; });
    if (free == slots_.end()) fail(ErrorCode::Internal, "BatchGenerator::add: no free slot");
    Slot& slot = **free;
    slot.state = std::make_unique<DecodeState>(engine_.tokenizer(), request,
                                               std::move(prompt_tokens), std::move(on_text));
    slot.on_done = std::move(on_done);
    slot.cancel = std::move(cancel);
    slot.length = 0;
    slot.prefilled = false;
    slot.timer.reset();
}

void BatchGenerator::complete(Slot& slot) {
    GenerationResult result = std::move(slot.state->result());
    Metrics& m = result.metrics;
    m.backend = engine_.backend().name();
    m.generated_tokens = static_cast<std::int64_t>(result.tokens.size());
    m.prefilled_tokens = m.prompt_tokens;
    m.prefill_ms = slot.prefill_ms;
    m.prefill_tokens_per_s =
        m.prefill_ms > 0 ? static_cast<double>(m.prompt_tokens) * 1000.0 / m.prefill_ms : 0;
    m.decode_ms = slot.timer.milliseconds() - slot.prefill_ms;
    const double decoded = static_cast<double>(std::max<std::int64_t>(0, m.generated_tokens - 1));
    m.decode_tokens_per_s = m.decode_ms > 0 && decoded > 0 ? decoded * 1000.0 / m.decode_ms : 0;
    DoneCallback done = std::move(slot.on_done);
    slot.state.reset();
    slot.cancel.reset();
    if (done) done(std::move(result));
}

int BatchGenerator::step() {
    const models::Transformer& model = engine_.model();
    // Prefill what joined since the last step: each prompt in one forward pass of its own.
    for (auto& s : slots_) {
        Slot& slot = *s;
        if (slot.state == nullptr || slot.prefilled) continue;
        if (slot.cancelled()) {
            slot.state->finish(StopReason::Cancelled);
            complete(slot);
            continue;
        }
        const std::vector<std::int32_t>& prompt = slot.state->result().prompt_tokens;
        if (slot.cache != nullptr) {
            model.forward(prompt, 0, *slot.cache, engine_.backend(),
                          models::LogitsFor::LastPosition, logits_);
        } else {
            gpu_positions_.resize(prompt.size());
            gpu_seqs_.assign(prompt.size(), slot.index);
            for (std::size_t i = 0; i < prompt.size(); ++i) gpu_positions_[i] = static_cast<int>(i);
            const float* row = engine_.gpu_model()->forward_sequences(
                prompt.data(), gpu_positions_.data(), gpu_seqs_.data(),
                static_cast<int>(prompt.size()), true);
            logits_.assign(row, row + model.output_weight().rows);
        }
        slot.prefilled = true;
        slot.length = static_cast<std::int64_t>(prompt.size());
        slot.prefill_ms = slot.timer.milliseconds();
        slot.state->result().metrics.time_to_first_token_ms = slot.prefill_ms;
        if (!slot.state->accept(logits_, slot.next)) complete(slot);
    }
    // One batched decode step over every running sequence.
    batch_.clear();
    batch_slots_.clear();
    for (auto& s : slots_) {
        Slot& slot = *s;
        if (slot.state == nullptr || !slot.prefilled) continue;
        if (slot.cancelled()) {
            slot.state->finish(StopReason::Cancelled);
            complete(slot);
            continue;
        }
        if (slot.length >= context_) {
            slot.state->finish(StopReason::ContextFull);
            complete(slot);
            continue;
        }
        batch_.push_back({slot.next, slot.length, slot.cache.get()});
        batch_slots_.push_back(&slot);
    }
    if (batch_.empty()) return 0;
    const float* all_logits = nullptr;
    if (kernels::GpuModel* gpu = engine_.gpu_model(); gpu != nullptr) {
        gpu_tokens_.clear();
        gpu_positions_.clear();
        gpu_seqs_.clear();
        for (std::size_t i = 0; i < batch_.size(); ++i) {
            gpu_tokens_.push_back(batch_[i].token);
            gpu_positions_.push_back(static_cast<int>(batch_[i].position));
            gpu_seqs_.push_back(batch_slots_[i]->index);
        }
        if (step_choosing_on_gpu(*gpu)) return static_cast<int>(batch_.size());
        // The rows are read where the GPU put them (page-locked memory), not copied again.
        all_logits =
            gpu->forward_sequences(gpu_tokens_.data(), gpu_positions_.data(), gpu_seqs_.data(),
                                   static_cast<int>(batch_.size()), false);
    } else {
        model.forward_batch(batch_, engine_.backend(), logits_);
        all_logits = logits_.data();
    }
    const auto vocab = static_cast<std::size_t>(model.output_weight().rows);
    for (std::size_t i = 0; i < batch_slots_.size(); ++i) {
        Slot& slot = *batch_slots_[i];
        ++slot.length;
        const std::span<const float> row(all_logits + i * vocab, vocab);
        if (!slot.state->accept(row, slot.next)) complete(slot);
    }
    return static_cast<int>(batch_.size());
}

bool BatchGenerator::step_choosing_on_gpu(kernels::GpuModel& gpu) {
    // Greedy rows keep their best logit, sampled rows (top-k within the device's reach) their
    // top-k after the penalty: a few hundred bytes per row come back instead of 0.5 MB.
    const auto vocab = static_cast<std::size_t>(engine_.model().output_weight().rows);
    gpu_choices_.clear();
    gpu_penalized_.clear();
    for (const Slot* slot : batch_slots_) {
        const SamplingParams& p = slot->state->sampling();
        kernels::RowChoice choice;  // greedy: the best one, no penalty
        if (!p.is_greedy()) {
            if (p.top_k < 1 || p.top_k > kernels::kMaxGpuTopK ||
                static_cast<std::size_t>(p.top_k) >= vocab)
                return false;
            choice.top_k = p.top_k;
            choice.repeat_penalty = p.repeat_penalty;
            choice.penalized_begin = static_cast<int>(gpu_penalized_.size());
            const auto ids = slot->state->penalized_ids(vocab);
            gpu_penalized_.insert(gpu_penalized_.end(), ids.begin(), ids.end());
            choice.penalized_end = static_cast<int>(gpu_penalized_.size());
        }
        gpu_choices_.push_back(choice);
    }
    gpu.forward_sequences_top_k(gpu_tokens_.data(), gpu_positions_.data(), gpu_seqs_.data(),
                                static_cast<int>(batch_.size()), gpu_choices_.data(),
                                gpu_penalized_.data(), gpu_chosen_);
    for (std::size_t i = 0; i < batch_slots_.size(); ++i) {
        Slot& slot = *batch_slots_[i];
        ++slot.length;
        const kernels::RowCandidates& row = gpu_chosen_[i];
        candidates_.clear();
        for (int c = 0; c < row.count; ++c)
            candidates_.emplace_back(row.candidates[c].logit, row.candidates[c].id);
        bool more = false;
        if (slot.state->sampling().is_greedy()) {
            if (candidates_.empty())
                fail(ErrorCode::InvalidArgument, "greedy_token: no finite logits to choose from");
            slot.next = candidates_[0].second;
            more = slot.state->accept_token(slot.next);
        } else {
            more = slot.state->accept_candidates(candidates_, slot.next);
        }
        if (!more) complete(slot);
    }
    return true;
}

void BatchGenerator::cancel_all() {
    for (auto& s : slots_) {
        if (s->state == nullptr) continue;
        s->state->finish(StopReason::Cancelled);
        complete(*s);
    }
}

}  // namespace bitnet::inference

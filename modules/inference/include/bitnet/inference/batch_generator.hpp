// BatchGenerator — continuous batching: up to `slots` independent sequences, each with its own
// KV cache (on the GPU when the engine runs the GPU forward pass), decoded together. Every step()
// prefills the sequences added since the last step and then runs ONE forward pass with the next
// token of every running sequence, so the weights are streamed from memory once per step however
// many sequences there are. Sequences join and leave between steps. Not thread-safe: one thread
// drives it (see Scheduler for the thread-safe front). It shares the engine's model and backend, so
// it must not run while Engine::generate runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bitnet/common/timer.hpp"
#include "bitnet/inference/engine.hpp"

namespace bitnet::inference {

class DecodeState;

using DoneCallback = std::function<void(GenerationResult&& result)>;

class BatchGenerator {
  public:
    // `context`: tokens per sequence (0: the engine's context).
    BatchGenerator(Engine& engine, int slots, std::int64_t context = 0);
    ~BatchGenerator();
    BatchGenerator(const BatchGenerator&) = delete;
    BatchGenerator& operator=(const BatchGenerator&) = delete;

    int slots() const { return static_cast<int>(slots_.size()); }
    int active() const;
    bool has_free_slot() const { return active() < slots(); }
    std::int64_t context() const { return context_; }

    // Starts a sequence in a free slot. Validates the request and tokenizes the prompt unless
    // `prompt_tokens` is given (throws InvalidArgument; throws Internal when no slot is free).
    // `on_text` streams text as it is produced; `on_done` gets the result when the sequence ends;
    // setting `*cancel` ends it at the next step (stop reason Cancelled). Callbacks run on the
    // thread that calls step() and must not throw.
    void add(const GenerationRequest& request, TextCallback on_text, DoneCallback on_done,
             std::shared_ptr<const std::atomic<bool>> cancel = {},
             std::vector<std::int32_t> prompt_tokens = {});

    // One scheduling step (see above). Returns the number of tokens decoded in the batch.
    int step();
    // Ends every running sequence with stop reason Cancelled.
    void cancel_all();

  private:
    struct Slot;
    void complete(Slot& slot);
    // The decode step on the GPU with every row's token chosen there; false (nothing run) when a
    // row's sampling needs all of its logits on the host.
    bool step_choosing_on_gpu(kernels::GpuModel& gpu);

    Engine& engine_;
    std::int64_t context_;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::vector<models::BatchToken> batch_;
    std::vector<Slot*> batch_slots_;
    std::vector<float> logits_;
    std::vector<std::int32_t> gpu_tokens_;  // rows of a GPU pass
    std::vector<int> gpu_positions_, gpu_seqs_;
    std::vector<kernels::RowChoice> gpu_choices_;  // step_choosing_on_gpu()'s
    std::vector<std::int32_t> gpu_penalized_;
    std::vector<kernels::RowCandidates> gpu_chosen_;
    std::vector<Sampler::Candidate> candidates_;
};

}  // namespace bitnet::inference

// DecodeState — everything one sequence needs between forward passes while it generates:
// sampler, streaming detokenizer, stop strings and the result so far. Engine::generate (one
// sequence) and BatchGenerator (many) share it, so a token is accepted by the same rules in both.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bitnet/inference/engine.hpp"
#include "bitnet/tokenizers/streaming_detokenizer.hpp"
#include "stop_strings.hpp"

namespace bitnet::inference {

class DecodeState {
  public:
    DecodeState(const tokenizers::Tokenizer& tokenizer, const GenerationRequest& request,
                std::vector<std::int32_t> prompt_tokens, TextCallback on_text);

    // Samples the next token from `logits` and applies end-of-generation, stop strings and the
    // length limit. Returns true with `next` set when the sequence goes on (feed `next` to the
    // model), false when it has finished (stop_reason set, text flushed).
    bool accept(std::span<const float> logits, std::int32_t& next);
    // accept() for a token chosen elsewhere by the same rule (greedy on the GPU).
    bool accept_token(std::int32_t token);
    // accept() from the sampler's top-k candidates selected elsewhere (on the GPU).
    bool accept_candidates(std::span<const Sampler::Candidate> top_k, std::int32_t& next);
    const SamplingParams& sampling() const { return sampler_.params(); }
    // The ids the repetition penalty applies to at this step.
    std::vector<std::int32_t> penalized_ids(std::size_t vocab) const {
        return sampler_.penalized_ids(history_, vocab);
    }
    // Ends the sequence for a reason found outside (context full, cancelled).
    void finish(StopReason reason);

    bool finished() const { return finished_; }
    // Tokens the length limit still allows.
    std::int64_t remaining() const {
        return limit_ - static_cast<std::int64_t>(result_.tokens.size());
    }
    bool started() const { return !result_.tokens.empty(); }
    GenerationResult& result() { return result_; }

  private:
    void emit(const std::string& text);

    const tokenizers::Tokenizer& tokenizer_;
    Sampler sampler_;
    tokenizers::StreamingDetokenizer detokenizer_;
    StopStringFilter stops_;
    TextCallback on_text_;
    std::vector<std::int32_t> history_;
    std::int64_t limit_;
    bool finished_ = false;
    GenerationResult result_;
};

// Checks the request's own parameters (sampling ranges, n_predict); throws InvalidArgument.
void validate_request(const GenerationRequest& request);

}  // namespace bitnet::inference

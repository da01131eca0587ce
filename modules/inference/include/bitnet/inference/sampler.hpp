// Sampler — picks the next token from logits. Deterministic for a seed on every platform (own
// PRNG, ties broken by token id). The chain follows llama.cpp's order: repetition penalty over
// the last `repeat_last_n` tokens, top-k, top-p, min-p, temperature, then a draw.
// Greedy (--greedy, or temperature 0) is the plain argmax of the raw logits: no penalty, so it
// is comparable with other engines' greedy output.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace bitnet::inference {

struct SamplingParams {
    float temperature = 0.8f;
    int top_k = 40;               // <= 0: all tokens
    float top_p = 0.95f;          // (0, 1]; 1 disables
    float min_p = 0.05f;          // [0, 1]; 0 disables
    float repeat_penalty = 1.1f;  // > 0; 1 disables
    int repeat_last_n = 64;       // >= 0
    std::uint64_t seed = 0;
    bool greedy = false;

    // Throws bitnet::Error(InvalidArgument) naming the parameter and its valid range.
    void validate() const;
    bool is_greedy() const { return greedy || temperature == 0.0f; }
};

// xoshiro256** seeded through splitmix64: the same stream on every platform and compiler.
class Rng {
  public:
    explicit Rng(std::uint64_t seed);
    std::uint64_t next();
    double uniform();  // [0, 1)

  private:
    std::uint64_t s_[4];
};

class Sampler {
  public:
    explicit Sampler(const SamplingParams& params);
    // `history`: the tokens so far (prompt and generated), for the repetition penalty.
    std::int32_t sample(std::span<const float> logits, std::span<const std::int32_t> history);
    const SamplingParams& params() const { return params_; }

    using Candidate = std::pair<float, std::int32_t>;  // (logit after the penalty, token id)
    // The distinct in-range ids the repetition penalty applies to, in order (none when it is off).
    std::vector<std::int32_t> penalized_ids(std::span<const std::int32_t> history,
                                            std::size_t vocab) const;
    // sample() when the top_k candidates were selected elsewhere by the same rule (the GPU:
    // the best top_k logits after the penalty, NaN excluded), in any order.
    std::int32_t sample_candidates(std::span<const Candidate> top_k);

  private:
    std::int32_t draw();  // from candidates_ (best first): top-p, min-p, temperature
    // candidates_ := the non-NaN logits after the repetition penalty, best first (highest logit,
    // then lower id), cut to top_k.
    void select_candidates(std::span<const float> logits, std::span<const std::int32_t> history);
    // The top_k best in one pass over the logits, a bounded heap of the best so far.
    void select_top_k(std::span<const float> logits, std::size_t k);

    SamplingParams params_;
    Rng rng_;
    std::vector<Candidate> candidates_;
    std::vector<Candidate> penalized_;  // the recent tokens' logits after the penalty, by id
};

}  // namespace bitnet::inference

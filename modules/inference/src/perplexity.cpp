#include "bitnet/inference/perplexity.hpp"

#include <algorithm>
#include <cmath>

#include "bitnet/common/error.hpp"
#include "bitnet/common/timer.hpp"

namespace bitnet::inference {

namespace {

// -log softmax(row)[target], in double.
double negative_log_likelihood(const float* row, std::int64_t vocab, std::int32_t target) {
    const double max = *std::max_element(row, row + vocab);
    double z = 0;
    for (std::int64_t i = 0; i < vocab; ++i) z += std::exp(static_cast<double>(row[i]) - max);
    return -(static_cast<double>(row[target]) - max - std::log(z));
}

}  // namespace

PerplexityResult compute_perplexity_chunks(
    Engine& engine, const std::vector<std::int32_t>& tokens, std::int64_t window, std::int32_t bos,
    const std::function<void(std::int64_t, std::int64_t)>& progress) {
    const auto n = static_cast<std::int64_t>(tokens.size());
    if (window < 4) fail(ErrorCode::InvalidArgument, "the window (-c) must be at least 4 tokens");
    if (window > engine.context())
        fail(ErrorCode::InvalidArgument, "the window is larger than the engine's context");
    const std::int64_t chunks = n / window;
    if (chunks < 1)
        fail(ErrorCode::InvalidArgument, "the text has " + std::to_string(n) +
                                             " tokens, fewer than one window of " +
                                             std::to_string(window) + "; use a smaller -c");
    const std::int64_t vocab = engine.model().config().vocab_size;
    Timer timer;
    PerplexityResult r;
    double nll = 0;
    for (std::int64_t c = 0; c < chunks; ++c) {
        std::vector<std::int32_t> chunk(tokens.begin() + c * window,
                                        tokens.begin() + (c + 1) * window);
        if (bos >= 0) chunk[0] = bos;
        const std::vector<float> logits = engine.evaluate_all(chunk);
        for (std::int64_t j = window / 2; j < window - 1; ++j) {
            nll += negative_log_likelihood(logits.data() + j * vocab, vocab,
                                           chunk[static_cast<std::size_t>(j + 1)]);
            ++r.scored_tokens;
        }
        ++r.windows;
        if (progress) progress(r.windows, chunks);
    }
    r.mean_nll = nll / static_cast<double>(r.scored_tokens);
    r.perplexity = std::exp(r.mean_nll);
    r.seconds = timer.seconds();
    return r;
}

PerplexityResult compute_perplexity(
    Engine& engine, const std::vector<std::int32_t>& tokens, std::int64_t window,
    std::int64_t stride, const std::function<void(std::int64_t, std::int64_t)>& progress) {
    const auto n = static_cast<std::int64_t>(tokens.size());
    if (window < 2) fail(ErrorCode::InvalidArgument, "the window (-c) must be at least 2 tokens");
    if (stride < 1 || stride > window)
        fail(ErrorCode::InvalidArgument, "--stride must be between 1 and the window (-c)");
    if (window > engine.context())
        fail(ErrorCode::InvalidArgument, "the window is larger than the engine's context");
    if (n < 2)
        fail(ErrorCode::InvalidArgument, "the text has fewer than 2 tokens; nothing to score");
    const std::int64_t vocab = engine.model().config().vocab_size;
    std::int64_t total_windows = 1;
    while ((total_windows - 1) * stride + window < n) ++total_windows;

    Timer timer;
    PerplexityResult r;
    double nll = 0;
    std::int64_t scored_until =
        1;  // positions < scored_until have been scored (position 0 never is)
    for (std::int64_t w = 0; w < total_windows; ++w) {
        const std::int64_t begin = w * stride, end = std::min(n, begin + window);
        const std::vector<std::int32_t> chunk(tokens.begin() + begin, tokens.begin() + end);
        const std::vector<float> logits = engine.evaluate_all(chunk);
        for (std::int64_t pos = std::max(scored_until, begin + 1); pos < end; ++pos) {
            // Logits at window index pos - 1 - begin predict the token at pos.
            nll += negative_log_likelihood(logits.data() + (pos - 1 - begin) * vocab, vocab,
                                           tokens[static_cast<std::size_t>(pos)]);
            ++r.scored_tokens;
        }
        scored_until = end;
        ++r.windows;
        if (progress) progress(r.windows, total_windows);
    }
    r.mean_nll = nll / static_cast<double>(r.scored_tokens);
    r.perplexity = std::exp(r.mean_nll);
    r.seconds = timer.seconds();
    return r;
}

}  // namespace bitnet::inference

// Sliding-window perplexity of a token sequence (bitnet perplexity).
//
// Windows of `window` tokens start at 0, stride, 2*stride, ... (the last one is cut at the end
// of the text). Each window is evaluated from an empty KV cache. The first window scores every
// token after its first; each later window scores only the tokens the previous window did not
// reach, so with stride < window every token (after the first) is scored exactly once, with at
// least window - stride tokens of context. stride == window gives non-overlapping chunks (whose
// first tokens have no context and are skipped); a text that fits in one window gives the same
// result for every stride (it is one window).
// This is the Hugging Face "strided perplexity".
//
// compute_perplexity_chunks is llama.cpp's default `perplexity` convention instead: the text is
// cut into floor(n / window) non-overlapping chunks, the first token of each chunk is replaced
// by BOS, and only the second half of each chunk is scored (predictions from positions
// window/2 .. window-2), so its numbers compare directly with llama.cpp's.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "bitnet/inference/engine.hpp"

namespace bitnet::inference {

struct PerplexityResult {
    double perplexity = 0;
    double mean_nll = 0;  // natural log
    std::int64_t scored_tokens = 0;
    std::int64_t windows = 0;
    double seconds = 0;
};

// `progress(done_windows, total_windows)` is called after each window.
PerplexityResult compute_perplexity(
    Engine& engine, const std::vector<std::int32_t>& tokens, std::int64_t window,
    std::int64_t stride, const std::function<void(std::int64_t, std::int64_t)>& progress = {});

// llama.cpp's chunked convention (see above). `bos` replaces each chunk's first token (-1: keep).
PerplexityResult compute_perplexity_chunks(
    Engine& engine, const std::vector<std::int32_t>& tokens, std::int64_t window, std::int32_t bos,
    const std::function<void(std::int64_t, std::int64_t)>& progress = {});

}  // namespace bitnet::inference

#include "decode_state.hpp"

#include <climits>

#include "bitnet/common/error.hpp"

namespace bitnet::inference {

void validate_request(const GenerationRequest& request) {
    request.sampling.validate();
    if (request.n_predict == 0 || request.n_predict < -1)
        fail(ErrorCode::InvalidArgument,
             "-n must be at least 1 (or -1: until the context is full); got " +
                 std::to_string(request.n_predict));
}

DecodeState::DecodeState(const tokenizers::Tokenizer& tokenizer, const GenerationRequest& request,
                         std::vector<std::int32_t> prompt_tokens, TextCallback on_text)
    : tokenizer_(tokenizer),
      sampler_(request.sampling),
      detokenizer_(tokenizer, true),
      stops_(request.stop),
      on_text_(std::move(on_text)),
      history_(prompt_tokens),
      limit_(request.n_predict < 0 ? INT64_MAX : request.n_predict) {
    result_.prompt_tokens = std::move(prompt_tokens);
    result_.metrics.prompt_tokens = static_cast<std::int64_t>(result_.prompt_tokens.size());
}

void DecodeState::emit(const std::string& text) {
    if (text.empty()) return;
    result_.text += text;
    if (on_text_) on_text_(text);
}

bool DecodeState::accept(std::span<const float> logits, std::int32_t& next) {
    if (finished_) return false;
    next = sampler_.sample(logits, history_);
    return accept_token(next);
}

bool DecodeState::accept_candidates(std::span<const Sampler::Candidate> top_k, std::int32_t& next) {
    if (finished_) return false;
    next = sampler_.sample_candidates(top_k);
    return accept_token(next);
}

bool DecodeState::accept_token(std::int32_t next) {
    if (finished_) return false;
    if (tokenizer_.is_end_of_generation(next)) {
        finish(StopReason::EndOfGeneration);
        return false;
    }
    result_.tokens.push_back(next);
    history_.push_back(next);
    bool stopped = false;
    emit(stops_.push(detokenizer_.push(next), stopped));
    if (stopped) {
        finished_ = true;
        result_.stop_reason = StopReason::StopString;
        return false;
    }
    if (static_cast<std::int64_t>(result_.tokens.size()) >= limit_) {
        finish(StopReason::Length);
        return false;
    }
    return true;
}

void DecodeState::finish(StopReason reason) {
    if (finished_) return;
    finished_ = true;
    result_.stop_reason = reason;
    bool stopped = false;
    emit(stops_.push(detokenizer_.flush(), stopped));
    if (stopped)
        result_.stop_reason = StopReason::StopString;
    else
        emit(stops_.flush());
}

}  // namespace bitnet::inference

// The real tokenizers from ../shared, loaded once per test process.
#pragma once

#include "bitnet/tokenizers/tokenizer.hpp"
#include "test_support.hpp"

namespace bitnet::test {

inline const tokenizers::Tokenizer* llama3_tokenizer() {
    static const auto tok = [] {
        const auto path = shared_dir() / "fixtures/tokenizers/llama3/tokenizer.json";
        return std::filesystem::exists(path) ? tokenizers::load_tokenizer_json(path.string())
                                             : nullptr;
    }();
    return tok.get();
}

inline const tokenizers::Tokenizer* llama2_tokenizer() {
    static const auto tok = [] {
        const auto path = shared_dir() / "fixtures/tokenizers/llama2/tokenizer.json";
        return std::filesystem::exists(path) ? tokenizers::load_tokenizer_json(path.string())
                                             : nullptr;
    }();
    return tok.get();
}

}  // namespace bitnet::test

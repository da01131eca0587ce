// Constructors of the two tokenizer backends (internal).
#pragma once

#include <memory>

#include "bitnet/tokenizers/tokenizer.hpp"

namespace bitnet::tokenizers {

std::unique_ptr<Tokenizer> make_byte_level_bpe(TokenizerData data);
std::unique_ptr<Tokenizer> make_sentencepiece_bpe(TokenizerData data);

}  // namespace bitnet::tokenizers

#pragma once
// HF's WordpieceTokenizer: greedy longest-match-first sub-words, "##" marking
// continuations; a word with more than max_chars characters, or with a part no
// vocab entry covers, becomes the unknown token.
#include <string>
#include <string_view>
#include <vector>

#include "roformer/tokenizer.h"

namespace roformer::tok {

void wordpiece_tokenize(std::string_view text, const Vocab& vocab, const std::string& unk_token, int max_chars,
                        std::vector<std::string>& out);

}  // namespace roformer::tok

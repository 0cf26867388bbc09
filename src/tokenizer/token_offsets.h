#pragma once
// Where each token of a tokenized text came from: the [start, end) code
// points of the original text that a token covers, as HF's fast tokenizers
// report them (offset_mapping). The slow tokenizers we reproduce keep no such
// record, so the tokens are aligned back onto the text afterwards.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "roformer/tokenizer.h"

namespace roformer::tok {

struct AlignmentRules {
  bool basic = true;           // BasicTokenizer ran: control characters dropped, punctuation split off
  bool strip_accents = false;  // the tokenizer drops combining marks (category Mn)
  bool cjk_words = true;       // every CJK ideograph is a word of its own
  bool jieba_words = false;    // jieba cut the text first: outside runs of ASCII
                               // letters and digits, every character is a word
  std::string unk_token = "[UNK]";
};

// Code-point spans of `tokens` (the tokenizer's output for `text`, in order)
// within `text`. A "##" continuation covers its characters only, an unknown
// token the word it replaced. A token that cannot be found gets an empty span
// where the previous token ended; the tokenizer's own output always aligns.
std::vector<CharSpan> align_tokens(std::u32string_view text, const std::vector<std::string>& tokens,
                                   const AlignmentRules& rules);

}  // namespace roformer::tok

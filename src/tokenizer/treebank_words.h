#pragma once
// English word splitting as NLTK's word_tokenize does it for one sentence
// (its NLTKWordTokenizer, the improved Penn Treebank rules): quotes become
// `` and '', punctuation and brackets stand alone, a sentence's final period
// is split off, "3.88" and "U.S." stay whole, and contractions split as the
// Treebank does ("don't" -> "do" "n't", "cannot" -> "can" "not").
//
// The rules are Python regular expressions applied one after another; each is
// reproduced here on code points with Python's meaning of \w (letters,
// numbers, underscore), \d (decimal digits) and \s. Case-insensitive parts
// ("cannot", "'T") fold ASCII letters only.
#include <string>
#include <string_view>
#include <vector>

namespace roformer::tok {

// word_tokenize(text, preserve_line=True): the text is one sentence. (Without
// preserve_line NLTK first cuts sentences with its Punkt model; the two
// differ only where a period ends a sentence inside the text.)
std::vector<std::u32string> treebank_words(std::u32string_view text);

}  // namespace roformer::tok

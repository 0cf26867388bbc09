#pragma once
// Python's re.sub, for rules written by hand on code points: text rules that
// several reproductions share (sacreBLEU's 13a tokenizer, NLTK's Treebank
// words) are sequences of regular-expression substitutions.
#include <cstddef>
#include <string>

namespace roformer::tok {

// re.sub with a pattern that never matches empty: matches are found left to
// right, each search starting where the last match ended. `match(s, i, out)`
// returns the length of the match at i, having appended its replacement to
// out, or 0 (appending nothing).
template <class Match>
std::u32string substitute(const std::u32string& s, Match match) {
  std::u32string out;
  out.reserve(s.size() + s.size() / 2 + 16);
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t n = match(s, i, out);
    if (n > 0) {
      i += n;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

}  // namespace roformer::tok

// libFuzzer: JiebaDictionary::from_string (jieba's dict.txt) on arbitrary
// bytes must load or throw Error. A loaded dictionary has a positive total and
// every listed word; cutting fixed text with it gives words that concatenate
// back to the text.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "roformer/error.h"
#include "roformer/tokenizer.h"

using roformer::fuzz::require;

namespace {

void check_cut(const roformer::JiebaSegmenter& seg, std::string_view text) {
  std::string joined;
  for (const std::string& w : seg.cut(text)) {
    require(!w.empty(), "no empty words");
    joined += w;
  }
  require(joined == text, "the words concatenate to the text");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::shared_ptr<const roformer::JiebaDictionary> dict;
  try {
    dict = roformer::JiebaDictionary::from_string(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const roformer::Error&) {
    return 0;
  }
  require(dict->total() > 0 && dict->entries() > 0, "a loaded dictionary is not empty");
  // The first word of the first line is listed (lines are "word freq [tag]").
  std::string_view first(reinterpret_cast<const char*>(data), size);
  first = first.substr(0, first.find('\n'));
  while (!first.empty() && (first.front() == ' ' || first.front() == '\t' || first.front() == '\r' ||
                            first.front() == '\v' || first.front() == '\f')) {
    first.remove_prefix(1);
  }
  first = first.substr(0, first.find(' '));
  if (!first.empty()) require(dict->frequency(first).has_value(), "the first word is in the dictionary");

  const roformer::JiebaSegmenter seg(dict);
  check_cut(seg, "北京大学的学生喜欢自然语言处理, RoFormer 3.14 c++\r\n我们去长城");
  // Short Chinese text from the dictionary's own words.
  if (first.size() <= 64) check_cut(seg, std::string(first) + "北京" + std::string(first));
  return 0;
}

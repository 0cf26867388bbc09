#include "train/wordpiece_words.h"

#include <utf8proc.h>

#include <cstdlib>

#include "roformer/error.h"

namespace roformer::data {

std::vector<char32_t> utf8_code_points(std::string_view text) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    int len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    if (i + static_cast<std::size_t>(len) > text.size()) len = static_cast<int>(text.size() - i);
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    out.push_back(cp);
    i += static_cast<std::size_t>(len);
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// Characters that can never be part of a word (the tokenizer drops or splits on
// them) and could not be written as a vocab line anyway.
bool never_in_word(char32_t cp) { return cp < 0x20 || cp == 0x7F || cp == 0x85 || cp == 0x2028 || cp == 0x2029; }

}  // namespace

WordCounter::WordCounter(TokenizerOptions options) : options_(std::move(options)) {
  ROFORMER_CHECK(options_.do_basic_tokenize, "WordPiece trainer: do_basic_tokenize = false is not supported");
  ROFORMER_CHECK(!options_.use_jieba, "WordPiece trainer: jieba segmentation is not supported (train on characters)");
  ROFORMER_CHECK(options_.added_tokens.empty(),
        "WordPiece trainer: added_tokens are not supported (add them to the trained vocabulary afterwards)");
  specials_ = {options_.pad_token, options_.unk_token, options_.cls_token, options_.sep_token, options_.mask_token};
  for (const auto& t : options_.additional_special_tokens) specials_.push_back(t);
  std::set<std::string> seen;
  for (const auto& t : specials_) {
    ROFORMER_CHECK(!t.empty() && t.find_first_of("\r\n") == std::string::npos,
          "WordPiece trainer: special tokens must be non-empty single-line strings");
    ROFORMER_CHECK(seen.insert(t).second, "WordPiece trainer: special token '" + t + "' is listed twice");
  }
}

void WordCounter::grow_alphabet(std::string_view lowered) {
  bool ascii = true;
  for (char c : lowered) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  std::vector<char32_t> cps = utf8_code_points(lowered);
  if (!ascii) {
    // Normalisation can make characters the raw text lacks: NFC composes
    // (e + U+0301 -> é), and accent stripping decomposes (é -> e). Add both.
    utf8proc_uint8_t* composed = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(lowered.data()),
                                static_cast<utf8proc_ssize_t>(lowered.size()), &composed,
                                static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n >= 0 && composed != nullptr) {
      const auto more = utf8_code_points(std::string_view(reinterpret_cast<const char*>(composed),
                                                          static_cast<std::size_t>(n)));
      cps.insert(cps.end(), more.begin(), more.end());
    }
    std::free(composed);
  }
  for (char32_t cp : cps) {
    if (never_in_word(cp) || alphabet_.count(cp)) continue;
    alphabet_.insert(cp);
    alphabet_changed_ = true;
    if (cp < 0x80) continue;
    alphabet_.insert(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    utf8proc_int32_t parts[16];
    int boundclass = 0;
    const auto k = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), parts, 16, UTF8PROC_DECOMPOSE,
                                           &boundclass);
    for (utf8proc_ssize_t j = 0; j >= 0 && j < k && j < 16; ++j) {
      const auto part = static_cast<char32_t>(parts[j]);
      if (!never_in_word(part)) alphabet_.insert(part);
    }
  }
}

void WordCounter::rebuild_probe() {
  std::string text;
  for (const auto& t : specials_) text += t + "\n";
  for (char32_t cp : alphabet_) {
    append_utf8(text, cp);
    text += "\n##";
    append_utf8(text, cp);
    text += '\n';
  }
  probe_ = std::make_unique<Tokenizer>(Vocab::from_string(text, "<wordpiece probe>"), options_);
  alphabet_changed_ = false;
}

void WordCounter::add_text(std::string_view text) {
  if (!probe_) rebuild_probe();  // also validates the options
  for (const auto& piece : probe_->split_added_tokens(text)) {
    if (!piece.added) grow_alphabet(piece.text);
  }
  if (alphabet_changed_) rebuild_probe();
  const std::string& unk = options_.unk_token;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) {
      ++counts_[word];
      ++words_;
      word.clear();
    }
  };
  for (const auto& token : probe_->tokenize(text)) {
    if (token.size() > 2 && token[0] == '#' && token[1] == '#' && !word.empty()) {
      word.append(token, 2);
      continue;
    }
    flush();
    if (token == unk) {
      ++skipped_;
    } else if (!probe_->vocab().contains(token) || probe_->is_special_id(probe_->token_to_id(token))) {
      continue;  // a special token written in the text is not a word
    } else {
      word = token;
    }
  }
  flush();
}

}  // namespace roformer::data

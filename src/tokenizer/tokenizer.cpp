// Tokenizer: HF PreTrainedTokenizer.tokenize / __call__ / decode for the BERT
// and RoFormer slow tokenizers (transformers v4.35.2).
#include <algorithm>

#include "roformer/error.h"
#include "tokenizer/token_offsets.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode_text.h"
#include "tokenizer/wordpiece.h"

namespace roformer {

namespace {

tok::BasicTokenizer::Options basic_options(const TokenizerOptions& o) {
  tok::BasicTokenizer::Options b;
  b.do_lower_case = o.do_lower_case;
  b.tokenize_chinese_chars = o.tokenize_chinese_chars;
  b.strip_accents = o.strip_accents;
  return b;
}

bool starts_with_at(std::u32string_view text, std::size_t pos, std::u32string_view pattern) {
  return !pattern.empty() && text.size() - pos >= pattern.size() && text.compare(pos, pattern.size(), pattern) == 0;
}

std::u32string_view strip_py_space_left(std::u32string_view s) {
  while (!s.empty() && tok::is_py_space(s.front())) s.remove_prefix(1);
  return s;
}

std::u32string_view strip_py_space_right(std::u32string_view s) {
  while (!s.empty() && tok::is_py_space(s.back())) s.remove_suffix(1);
  return s;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// Python's str.strip() (Unicode whitespace) on UTF-8 text.
std::string strip_py_space(const std::string& s) {
  const std::u32string wide = tok::decode_utf8(s, "decoded text");
  return tok::to_utf8(strip_py_space_right(strip_py_space_left(wide)));
}

}  // namespace

// ---------------------------------------------------------------- construction

Tokenizer::Impl::Impl(Vocab v, TokenizerOptions o)
    : vocab(std::move(v)), options(std::move(o)), basic(basic_options(options), options.never_split) {
  check(vocab.size() > 0, "tokenizer: empty vocabulary");
  check(options.max_input_chars_per_word >= 0, "tokenizer: max_input_chars_per_word must be >= 0");
  if (options.model_max_length) {
    check(*options.model_max_length > 0, "tokenizer: model_max_length must be positive");
  }
  id_space = vocab.size();

  // Added tokens given with ids (added_tokens_decoder) come first, as in HF.
  for (const auto& [id, token] : options.added_tokens) {
    const std::string what = "added token '" + token.content + "' (id " + std::to_string(id) + ")";
    check(!token.content.empty(), "tokenizer: added token with id " + std::to_string(id) + " has empty content");
    check(id >= 0, "tokenizer: " + what + ": negative id");
    // The bound a config puts on vocab_size; it also keeps id + 1 from overflowing.
    check(id < (int64_t{1} << 31), "tokenizer: " + what + ": id is not below 2^31");
    if (const auto vid = vocab.find(token.content)) {
      check(*vid == id, "tokenizer: " + what + ": vocab.txt has it at id " + std::to_string(*vid));
    } else {
      check(id >= vocab.size(), "tokenizer: " + what + ": id is a vocab.txt line holding another token");
    }
    check(added_by_content.count(token.content) == 0, "tokenizer: " + what + ": listed twice");
    check(added_by_id.count(id) == 0, "tokenizer: " + what + ": id used twice");
    added_by_content[token.content] = added.size();
    added_by_id[id] = added.size();
    added.push_back({token, tok::decode_utf8(token.content, what), id});
    id_space = std::max(id_space, id + 1);
  }

  // all_special_tokens: unk, sep, pad, cls, mask, then the additional ones, without repeats.
  for (const std::string* s : {&options.unk_token, &options.sep_token, &options.pad_token, &options.cls_token,
                               &options.mask_token}) {
    if (std::find(special_tokens.begin(), special_tokens.end(), *s) == special_tokens.end()) {
      special_tokens.push_back(*s);
    }
  }
  for (const std::string& s : options.additional_special_tokens) {
    if (std::find(special_tokens.begin(), special_tokens.end(), s) == special_tokens.end()) special_tokens.push_back(s);
  }
  for (const std::string& s : special_tokens) {
    check(!s.empty(), "tokenizer: a special token is empty");
    const std::u32string wide = tok::decode_utf8(s, "special token");
    special_tokens_wide.insert(wide);
    special_tokens_utf8.insert(s);
    if (added_by_content.count(s) == 0) {
      // Special ids come from the vocab; a special token it lacks would need new embedding rows.
      const auto id = vocab.find(s);
      check(id.has_value(), "tokenizer: special token '" + s + "' is not in the vocabulary");
      check(added_by_id.count(*id) == 0, "tokenizer: special token '" + s + "' shares its id with an added token");
      AddedToken t;
      t.content = s;
      added_by_content[s] = added.size();
      added_by_id[*id] = added.size();
      added.push_back({t, wide, *id});
    } else {
      added[added_by_content[s]].token.special = true;
    }
    special_ids.insert(added[added_by_content[s]].id);
  }
  const auto id_of = [&](const std::string& s) { return added[added_by_content.at(s)].id; };
  unk = id_of(options.unk_token);
  sep = id_of(options.sep_token);
  pad = id_of(options.pad_token);
  cls = id_of(options.cls_token);
  mask = id_of(options.mask_token);

  // HF lowercases only when the tokenizer has a BasicTokenizer that lowercases
  // (hasattr(self, "do_lower_case") fails without one), keeping special tokens
  // and normalized non-special added tokens as they are.
  lowercase_first = options.do_lower_case && options.do_basic_tokenize;
  for (const std::string& s : special_tokens) keep_case.push_back(tok::decode_utf8(s, "special token"));
  for (const Added& a : added) {
    if (!a.token.special && a.token.normalized) keep_case.push_back(a.content);
  }
  for (const Added& a : added) first_chars.insert(a.content.front());
  for (const std::u32string& k : keep_case) first_chars.insert(k.front());
  for (char32_t c : first_chars) {
    if (c < 128) {
      ascii_first_chars[c] = true;
    } else {
      non_ascii_first_chars = true;
    }
  }

  if (options.use_jieba) {
    const std::string path = options.jieba_dict_path.empty() ? default_jieba_dict_path() : options.jieba_dict_path;
    jieba = std::make_unique<JiebaSegmenter>(JiebaDictionary::load(path));
  }
}

Tokenizer::Tokenizer(Vocab vocab, TokenizerOptions options)
    : impl_(std::make_unique<Impl>(std::move(vocab), std::move(options))) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

bool Tokenizer::Impl::is_legacy_added(const std::string& token) const {
  const auto it = added_by_content.find(token);
  if (it == added_by_content.end()) return false;
  if (std::find(special_tokens.begin(), special_tokens.end(), token) == special_tokens.end()) return true;
  const auto& extra = options.additional_special_tokens;
  return std::find(extra.begin(), extra.end(), token) != extra.end() && added[it->second].id >= vocab.unique_size();
}

// ---------------------------------------------------------------- tokenize

// The sinks of the tokenizing steps: WordPiece's, plus a token taken as it is
// (a never_split word, a vocab word jieba cut, an added token).
struct Tokenizer::Impl::StringSink : tok::WordPieceTokens {
  void as_is(std::string token) { out.push_back(std::move(token)); }
};

struct Tokenizer::Impl::IdSink : tok::WordPieceIds {
  const Impl& m;
  void as_is(std::string_view token) { out.push_back(m.token_id(token)); }
};

struct Tokenizer::Impl::StringAndIdSink : tok::WordPieceTokensAndIds {
  const Impl& m;
  void as_is(std::string token) {
    ids.push_back(m.token_id(token));
    tokens.push_back(std::move(token));
  }
};

template <class Sink>
void Tokenizer::Impl::bert_tokenize(std::string_view text, Sink& sink) const {
  if (!options.do_basic_tokenize) {
    tok::wordpiece_tokenize(text, vocab, options.max_input_chars_per_word, sink);
    return;
  }
  thread_local std::vector<std::string> words;
  words.clear();
  // ASCII words on the byte loop (most text needs none of Unicode's tables).
  basic.tokenize_utf8(text, special_tokens_wide, special_tokens_utf8, words);
  for (const std::string& word : words) {
    if (basic.in_never_split(word)) {
      sink.as_is(word);
    } else if (word.size() == 3 && tok::is_plain_ideograph_at(word, 0) && options.max_input_chars_per_word >= 1) {
      // Most words of Chinese text: WordPiece would look up just the word.
      if (const auto id = vocab.find(word)) {
        sink.known(word, *id);
      } else {
        sink.unknown();
      }
    } else {
      // BasicTokenizer's words hold no whitespace: WordPiece's own split would find none.
      tok::wordpiece_tokenize_word(word, vocab, options.max_input_chars_per_word, sink);
    }
  }
}

// BertTokenizer._tokenize, or RoFormerTokenizer._tokenize with jieba.
template <class Sink>
void Tokenizer::Impl::tokenize_piece(std::string_view text, Sink& sink) const {
  if (!jieba) {
    bert_tokenize(text, sink);
    return;
  }
  for (const std::string& word : jieba->cut(text)) {
    if (const auto id = vocab.find(word)) {
      sink.known(word, *id);  // a vocab word is kept exactly as jieba cut it
    } else {
      bert_tokenize(word, sink);
    }
  }
}

template <class Sink>
void Tokenizer::Impl::tokenize(const Tokenizer& t, std::string_view text, Sink& sink) const {
  for (TextPiece& piece : t.split_added_tokens(text)) {
    if (piece.added) {
      sink.as_is(std::move(piece.text));
    } else {
      tokenize_piece(piece.text, sink);
    }
  }
}

std::vector<TextPiece> Tokenizer::split_added_tokens(std::string_view text) const {
  const Impl& m = *impl_;
  // Text in which no added or kept token can start (most text): no token to
  // keep or split out, so the text is one piece, lowercased a character at a
  // time where asked (for ASCII, byte by byte: A-Z are its only cased letters).
  bool plain = true, ascii = true;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {
      ascii = false;
      plain = plain && !m.non_ascii_first_chars;
    } else if (m.ascii_first_chars[c]) {
      plain = false;
    }
    if (!plain) break;
  }
  if (plain) {
    std::vector<TextPiece> out;
    if (!ascii) tok::check_utf8(text, "tokenizer input");
    if (text.empty()) return out;
    std::string piece;
    if (!m.lowercase_first) {
      piece = text;
    } else if (ascii) {
      piece = text;
      for (char& ch : piece) ch = tok::ascii_lower(ch);
    } else {
      piece = tok::lower_each_char(text);
    }
    out.push_back({std::move(piece), false});
    return out;
  }
  std::u32string wide = tok::decode_utf8(text, "tokenizer input");

  if (m.lowercase_first) {
    // re.sub(r"(special|...)|(.+?)", ...): at each position a kept token (first
    // listed wins) is copied, otherwise one character is lowercased ('.' skips \n).
    std::u32string lowered;
    lowered.reserve(wide.size());
    std::size_t i = 0;
    while (i < wide.size()) {
      const std::u32string* kept = nullptr;
      if (m.first_chars.count(wide[i])) {
        for (const std::u32string& k : m.keep_case) {
          if (starts_with_at(wide, i, k)) {
            kept = &k;
            break;
          }
        }
      }
      if (kept) {
        lowered += *kept;
        i += kept->size();
      } else {
        tok::append_py_lower(lowered, wide[i]);
        ++i;
      }
    }
    wide = std::move(lowered);
  }

  // Split around added tokens: leftmost match, longest token at that position.
  struct Piece {
    std::u32string_view text;
    const Impl::Added* added;
  };
  std::vector<Piece> pieces;
  const std::u32string_view all = wide;
  std::size_t start = 0, i = 0;
  while (i < all.size()) {
    const Impl::Added* best = nullptr;
    if (m.first_chars.count(all[i])) {
      for (const Impl::Added& a : m.added) {
        if (starts_with_at(all, i, a.content) && (!best || a.content.size() > best->content.size())) best = &a;
      }
    }
    if (!best) {
      ++i;
      continue;
    }
    if (i > start) pieces.push_back({all.substr(start, i - start), nullptr});
    pieces.push_back({all.substr(i, best->content.size()), best});
    i += best->content.size();
    start = i;
  }
  if (start < all.size()) pieces.push_back({all.substr(start), nullptr});

  // AddedToken.rstrip / lstrip eat the whitespace next to the token.
  for (std::size_t k = 0; k < pieces.size(); ++k) {
    if (!pieces[k].added) continue;
    if (pieces[k].added->token.rstrip && k + 1 < pieces.size() && !pieces[k + 1].added) {
      pieces[k + 1].text = strip_py_space_left(pieces[k + 1].text);
    }
    if (pieces[k].added->token.lstrip && k > 0 && !pieces[k - 1].added) {
      pieces[k - 1].text = strip_py_space_right(pieces[k - 1].text);
    }
  }

  std::vector<TextPiece> out;
  for (const Piece& p : pieces) {
    if (p.text.empty()) continue;
    out.push_back({p.added ? p.added->token.content : tok::to_utf8(p.text), p.added != nullptr});
  }
  return out;
}

std::vector<std::string> Tokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  Impl::StringSink sink{{out, impl_->options.unk_token}};
  impl_->tokenize(*this, text, sink);
  return out;
}

std::vector<int64_t> Tokenizer::tokenize_to_ids(std::string_view text) const {
  std::vector<int64_t> out;
  Impl::IdSink sink{{out, impl_->unk}, *impl_};
  impl_->tokenize(*this, text, sink);
  return out;
}

TokenizedText Tokenizer::tokenize_with_offsets(std::string_view text) const {
  const Impl& m = *impl_;
  TokenizedText out;
  Impl::StringAndIdSink sink{{out.tokens, out.ids, m.options.unk_token, m.unk}, m};
  m.tokenize(*this, text, sink);
  tok::AlignmentRules rules;
  if (m.options.do_basic_tokenize) {
    rules.strip_accents = m.options.strip_accents.value_or(m.options.do_lower_case);
    rules.cjk_words = m.options.tokenize_chinese_chars;
  } else {
    rules.basic = false;
    rules.cjk_words = false;
  }
  rules.jieba_words = m.jieba != nullptr;
  rules.unk_token = m.options.unk_token;
  out.offsets = tok::align_tokens(tok::decode_utf8(text, "tokenizer input"), out.tokens, rules);
  return out;
}

std::string slice_code_points(std::string_view text, int64_t start, int64_t end) {
  const std::u32string wide = tok::decode_utf8(text, "text");
  const auto n = static_cast<int64_t>(wide.size());
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  return tok::to_utf8(std::u32string_view(wide).substr(static_cast<std::size_t>(start),
                                                       static_cast<std::size_t>(end - start)));
}

int64_t count_code_points(std::string_view text) {
  return std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

// ---------------------------------------------------------------- ids

int64_t Tokenizer::Impl::token_id(std::string_view token) const {
  // An added token in vocab.txt has its line's id (the constructor checks
  // it), so the vocabulary answers first.
  if (const auto id = vocab.find(token)) return *id;
  if (const auto it = added_by_content.find(std::string(token)); it != added_by_content.end()) {
    return added[it->second].id;
  }
  return unk;
}

int64_t Tokenizer::token_to_id(std::string_view token) const { return impl_->token_id(token); }

std::vector<int64_t> Tokenizer::convert_tokens_to_ids(const std::vector<std::string>& tokens) const {
  std::vector<int64_t> ids;
  ids.reserve(tokens.size());
  for (const std::string& t : tokens) ids.push_back(token_to_id(t));
  return ids;
}

std::string Tokenizer::id_to_token(int64_t id) const {
  const Impl& m = *impl_;
  if (id < 0 || id >= m.id_space) {
    throw Error("tokenizer: token id " + std::to_string(id) + " is outside [0, " + std::to_string(m.id_space) + ")");
  }
  // An added token on a vocab line is that line's token (the constructor
  // checks it), so the vocabulary answers first.
  if (const std::string* t = m.vocab.token(id)) return *t;
  if (const auto it = m.added_by_id.find(id); it != m.added_by_id.end()) return m.added[it->second].token.content;
  return m.options.unk_token;
}

std::vector<std::string> Tokenizer::convert_ids_to_tokens(const std::vector<int64_t>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  // Most ids are vocab lines: their strings are copied in place (every
  // encoding makes its tokens here); the rest take id_to_token.
  for (int64_t id : ids) {
    if (const std::string* t = impl_->vocab.token(id)) {
      tokens.push_back(*t);
    } else {
      tokens.push_back(id_to_token(id));
    }
  }
  return tokens;
}

int64_t Tokenizer::unk_id() const { return impl_->unk; }
int64_t Tokenizer::sep_id() const { return impl_->sep; }
int64_t Tokenizer::pad_id() const { return impl_->pad; }
int64_t Tokenizer::cls_id() const { return impl_->cls; }
int64_t Tokenizer::mask_id() const { return impl_->mask; }
bool Tokenizer::is_special_id(int64_t id) const { return impl_->special_ids.count(id) != 0; }
int64_t Tokenizer::id_space() const { return impl_->id_space; }
const Vocab& Tokenizer::vocab() const { return impl_->vocab; }
const TokenizerOptions& Tokenizer::options() const { return impl_->options; }
const JiebaSegmenter* Tokenizer::segmenter() const { return impl_->jieba.get(); }

// ---------------------------------------------------------------- encode

Encoding Tokenizer::encode(std::string_view text, std::optional<std::string_view> pair, Truncation truncation,
                           std::optional<int64_t> max_length, bool with_offsets) const {
  const Impl& m = *impl_;
  // The ids come straight from the vocabulary lookups (with offsets, beside
  // the token strings the offsets are aligned on).
  TokenizedText ta, tb;
  std::vector<int64_t> a, b;
  if (with_offsets) {
    ta = tokenize_with_offsets(text);
    a = std::move(ta.ids);
    if (pair) {
      tb = tokenize_with_offsets(*pair);
      b = std::move(tb.ids);
    }
  } else {
    a = tokenize_to_ids(text);
    if (pair) b = tokenize_to_ids(*pair);
  }

  if (truncation != Truncation::None && !max_length) max_length = m.options.model_max_length;
  if (truncation != Truncation::None && max_length) {
    check(*max_length > 0, "tokenizer: max_length must be positive, got " + std::to_string(*max_length));
    const auto la = static_cast<int64_t>(a.size());
    const auto lb = static_cast<int64_t>(b.size());
    const int64_t total = la + lb + (pair ? 3 : 2);
    const int64_t remove = total - *max_length;
    const std::string need = "cannot truncate to max_length " + std::to_string(*max_length) + ": " +
                             std::to_string(remove) + " tokens must go but ";
    if (remove > 0) {
      if (truncation == Truncation::OnlyFirst || (truncation == Truncation::LongestFirst && !pair)) {
        // HF removes only when the sequence keeps at least one token (else it logs an error).
        check(la > remove, "tokenizer: " + need + "the first sequence has " + std::to_string(la));
        a.resize(static_cast<std::size_t>(la - remove));
      } else if (truncation == Truncation::OnlySecond) {
        check(pair.has_value(), "tokenizer: truncation only_second needs a text pair");
        check(lb > remove, "tokenizer: " + need + "the second sequence has " + std::to_string(lb));
        b.resize(static_cast<std::size_t>(lb - remove));
      } else {
        check(la + lb >= remove, "tokenizer: " + need + "the pair has " + std::to_string(la + lb));
        // One token at a time from the longer sequence; the second on ties.
        for (int64_t k = 0; k < remove; ++k) {
          if (a.size() > b.size()) {
            a.pop_back();
          } else {
            b.pop_back();
          }
        }
      }
    }
  }

  Encoding e;
  e.input_ids.reserve(a.size() + b.size() + 3);
  e.input_ids.push_back(m.cls);
  e.input_ids.insert(e.input_ids.end(), a.begin(), a.end());
  e.input_ids.push_back(m.sep);
  e.token_type_ids.assign(e.input_ids.size(), 0);
  if (pair) {
    e.input_ids.insert(e.input_ids.end(), b.begin(), b.end());
    e.input_ids.push_back(m.sep);
    e.token_type_ids.resize(e.input_ids.size(), 1);
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
  e.tokens = convert_ids_to_tokens(e.input_ids);
  if (with_offsets) {
    // Truncation shortened a and b from their ends; their spans follow.
    e.offsets.reserve(e.input_ids.size());
    e.offsets.emplace_back();
    e.offsets.insert(e.offsets.end(), ta.offsets.begin(), ta.offsets.begin() + static_cast<std::ptrdiff_t>(a.size()));
    e.offsets.emplace_back();
    if (pair) {
      e.offsets.insert(e.offsets.end(), tb.offsets.begin(), tb.offsets.begin() + static_cast<std::ptrdiff_t>(b.size()));
      e.offsets.emplace_back();
    }
  }
  return e;
}

// ---------------------------------------------------------------- decode

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens,
                              std::optional<bool> clean_up_tokenization_spaces) const {
  const Impl& m = *impl_;
  // convert_tokens_to_string: " ".join(tokens).replace(" ##", "").strip()
  const auto join = [](const std::vector<std::string>& tokens) {
    std::string s;
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      if (k) s.push_back(' ');
      s += tokens[k];
    }
    replace_all(s, " ##", "");
    return strip_py_space(s);
  };
  // Added tokens outside all_special_tokens are joined on their own ("legacy added tokens").
  std::vector<std::string> sub_texts, current;
  for (int64_t id : ids) {
    if (skip_special_tokens && m.special_ids.count(id)) continue;
    std::string token = id_to_token(id);
    if (m.is_legacy_added(token)) {
      if (!current.empty()) {
        std::string s = join(current);
        if (!s.empty()) sub_texts.push_back(std::move(s));
        current.clear();
      }
      sub_texts.push_back(std::move(token));
    } else {
      current.push_back(std::move(token));
    }
  }
  if (!current.empty()) sub_texts.push_back(join(current));
  std::string text;
  for (std::size_t k = 0; k < sub_texts.size(); ++k) {
    if (k) text.push_back(' ');
    text += sub_texts[k];
  }
  if (clean_up_tokenization_spaces.value_or(m.options.clean_up_tokenization_spaces)) {
    static constexpr std::pair<std::string_view, std::string_view> kCleanups[] = {
        {" .", "."},     {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"},   {" 's", "'s"},   {" 've", "'ve"}, {" 're", "'re"},
    };
    for (const auto& [from, to] : kCleanups) replace_all(text, from, to);
  }
  return text;
}

}  // namespace roformer

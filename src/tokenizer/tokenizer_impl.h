#pragma once
// The state behind roformer::Tokenizer, shared by tokenizer.cpp (tokenize /
// encode / decode) and pretrained.cpp (loading a checkpoint directory).
#include <array>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "roformer/tokenizer.h"
#include "tokenizer/basic_tokenizer.h"

namespace roformer {

struct Tokenizer::Impl {
  struct Added {
    AddedToken token;
    std::u32string content;  // token.content decoded
    int64_t id = 0;
  };

  Impl(Vocab v, TokenizerOptions o);

  Vocab vocab;
  TokenizerOptions options;
  tok::BasicTokenizer basic;
  std::unique_ptr<JiebaSegmenter> jieba;

  std::vector<std::string> special_tokens;        // HF's all_special_tokens, in its order
  std::set<std::u32string> special_tokens_wide;   // never_split for BasicTokenizer
  std::set<std::string, std::less<>> special_tokens_utf8;  // the same, for its ASCII path
  std::set<int64_t> special_ids;                  // all_special_ids
  std::vector<Added> added;                       // the no-split tokens
  std::unordered_map<std::string, std::size_t> added_by_content;
  std::map<int64_t, std::size_t> added_by_id;
  std::vector<std::u32string> keep_case;          // left alone by the lowercasing pass
  std::set<char32_t> first_chars;                 // first characters of added and kept tokens
  std::array<bool, 128> ascii_first_chars{};     // the ASCII ones among them
  bool non_ascii_first_chars = false;             // and whether there are others
  bool lowercase_first = false;
  int64_t id_space = 0;
  int64_t unk = 0, sep = 0, pad = 0, cls = 0, mask = 0;

  // Where tokenizing puts the tokens: their strings, their ids, or both.
  struct StringSink;
  struct IdSink;
  struct StringAndIdSink;
  // BertTokenizer._tokenize of valid UTF-8 text, into one of the sinks.
  template <class Sink>
  void bert_tokenize(std::string_view text, Sink& sink) const;
  // The same, or RoFormerTokenizer's with jieba.
  template <class Sink>
  void tokenize_piece(std::string_view text, Sink& sink) const;
  // Tokenizer::tokenize into any sink: the added tokens split out, the rest
  // through tokenize_piece.
  template <class Sink>
  void tokenize(const Tokenizer& t, std::string_view text, Sink& sink) const;
  // Tokenizer::token_to_id.
  int64_t token_id(std::string_view token) const;
  // HF's _decode joins these apart from the other tokens.
  bool is_legacy_added(const std::string& token) const;
};

}  // namespace roformer

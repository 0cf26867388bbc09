#pragma once
// Tokenizers equivalent to HuggingFace transformers v4.35.2's slow
// BertTokenizer and RoFormerTokenizer (the latter with jieba 0.42.1's
// cut(HMM=False) as its word segmenter), without Python.
//
//   text -> lowercase (per character, special tokens kept) -> split out added/special tokens
//        -> [jieba words: in vocab -> kept as is] -> BasicTokenizer -> WordPiece -> ids
//
// Every loader treats its input as hostile and throws roformer::Error naming
// the file, line or field at fault. A constructed Tokenizer is immutable, so
// its const methods may be called from many threads at once.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace roformer {

// ---------------------------------------------------------------- vocabulary

// vocab.txt: one token per line, id = line number (0-based). Like HF's load_vocab:
// lines end at \n, \r\n or \r (Python's universal newlines); a token listed twice
// maps to its LAST line, and the earlier line's id then has no token (it decodes
// to the unknown token).
class Vocab {
 public:
  static Vocab from_file(const std::string& path);
  // `source` names the text in error messages.
  static Vocab from_string(std::string_view text, const std::string& source = "<vocab>");

  // Number of lines = the id space [0, size()).
  int64_t size() const { return static_cast<int64_t>(id_to_token_.size()); }
  // Number of distinct tokens (HF's len(tokenizer.vocab)).
  int64_t unique_size() const { return unique_; }
  // Inline, with the hash: WordPiece asks for several candidates a word.
  std::optional<int64_t> find(std::string_view token) const {
    if (slots_.empty()) return std::nullopt;
    const Slot& s = slots_[slot_of(token, hash(token))];
    if (s.id < 0) return std::nullopt;
    return s.id;
  }
  bool contains(std::string_view token) const { return find(token).has_value(); }
  // The token whose id this is, or nullptr when none is (out of range, or an
  // earlier line of a duplicated token). Inline: every encoding asks it for
  // each of its tokens' strings.
  const std::string* token(int64_t id) const {
    if (id < 0 || id >= size()) return nullptr;
    const auto i = static_cast<std::size_t>(id);
    return has_token_[i] ? &id_to_token_[i] : nullptr;
  }
  // The longest token's length in bytes: no longer string is in the vocabulary.
  std::size_t longest_token_bytes() const { return longest_; }

 private:
  // Token -> id as an open-addressing table (linear probing, at most half
  // full): WordPiece looks up several candidates per word, and a probe into
  // one flat array with the hash's top bits kept beside each id rarely
  // touches a string that is not the one sought.
  struct Slot {
    uint32_t hash = 0;
    int32_t id = -1;  // -1: empty
  };
  // FNV-1a over the bytes, then a multiply-xorshift so that the low bits
  // (the slot) depend on every byte.
  static uint64_t hash(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
  }
  // The slot holding token, or the empty one where it would go.
  std::size_t slot_of(std::string_view token, uint64_t h) const;
  void index(int64_t id);  // puts id_to_token_[id] in the table, replacing an earlier line of it
  std::vector<Slot> slots_;
  int64_t unique_ = 0;
  std::vector<std::string> id_to_token_;  // "" where no token maps back
  std::vector<bool> has_token_;
  std::size_t longest_ = 0;
};

// ---------------------------------------------------------------- jieba

// jieba's prefix dictionary (dict.txt: lines "word freq [tag]"): every word with
// its frequency, every prefix of a word with frequency 0 unless listed itself,
// and the total of all listed frequencies (a word listed twice counts twice).
class JiebaDictionary {
 public:
  // Loads and caches by path: later calls for the same unchanged file share one copy.
  static std::shared_ptr<const JiebaDictionary> load(const std::string& path);
  // Parses without caching (tests). `source` names the text in error messages.
  static std::shared_ptr<const JiebaDictionary> from_string(std::string text, const std::string& source);

  JiebaDictionary(const JiebaDictionary&) = delete;
  JiebaDictionary& operator=(const JiebaDictionary&) = delete;

  // nullopt when `word` is neither a word nor a prefix of one.
  std::optional<int64_t> frequency(std::string_view word) const;
  // A hint that frequency(word) comes soon: its slot is requested from memory.
  void prefetch(std::string_view word) const;
  int64_t total() const { return total_; }
  std::size_t entries() const { return count_; }
  const std::string& source() const { return source_; }

 private:
  JiebaDictionary() = default;
  void parse();
  // A word of text_ (no per-entry allocation) and its frequency.
  struct Entry {
    uint32_t offset = 0;
    uint32_t length = 0;
    int64_t freq = 0;
  };
  // Open-addressing table: the slot of `word`, or the empty one where it
  // would go (jieba.cpp).
  std::size_t find_slot(std::string_view word, uint64_t hash) const;
  // Inserts with `freq` when absent; overwrites an existing entry only if `overwrite`.
  void put(std::string_view word, uint64_t hash, int64_t freq, bool overwrite);
  // put() of every entry next(Entry&) yields until it returns false.
  template <class Next>
  void put_stream(Next next, bool overwrite);
  void grow();

  std::string source_;
  std::string text_;  // the file; keys are (offset, length) into it
  std::vector<uint32_t> tags_;  // 0: empty slot
  std::vector<Entry> slots_;
  std::size_t count_ = 0;
  int64_t total_ = 0;
};

// jieba.cut(text, cut_all=False, HMM=False) of jieba 0.42.1.
class JiebaSegmenter {
 public:
  explicit JiebaSegmenter(std::shared_ptr<const JiebaDictionary> dict);
  // Words in order; their concatenation is `text`. `text` must be valid UTF-8.
  std::vector<std::string> cut(std::string_view text) const;
  const JiebaDictionary& dictionary() const { return *dict_; }

 private:
  void cut_block(std::string_view block, std::vector<std::string>& out) const;
  std::shared_ptr<const JiebaDictionary> dict_;
};

// Where dict.txt is looked for when TokenizerOptions::jieba_dict_path is empty:
// $ROFORMER_JIEBA_DICT, else Debian python3-jieba's copy.
std::string default_jieba_dict_path();

// ---------------------------------------------------------------- tokenizer

// A token's place in the text it came from: code points [start, end), as
// Python indexes a str and HF's offset_mapping counts.
struct CharSpan {
  int64_t start = 0, end = 0;
  bool operator==(const CharSpan&) const = default;
};

struct Encoding {
  std::vector<std::string> tokens;  // convert_ids_to_tokens(input_ids)
  std::vector<int64_t> input_ids;
  std::vector<int64_t> token_type_ids;
  std::vector<int64_t> attention_mask;
  // Only when asked for: each token's span in its own text (the pair's tokens
  // in the pair); {0, 0} for [CLS] and [SEP], as HF's fast tokenizers give.
  std::vector<CharSpan> offsets;
};

// Tokens with where each came from in the text.
struct TokenizedText {
  std::vector<std::string> tokens;
  std::vector<CharSpan> offsets;
  std::vector<int64_t> ids;  // convert_tokens_to_ids(tokens)
};

// Code points [start, end) of UTF-8 `text` (clamped to its length), for
// cutting a text by CharSpans. Throws Error on invalid UTF-8.
std::string slice_code_points(std::string_view text, int64_t start, int64_t end);
// The code points of UTF-8 `text` (its bytes that start a character).
int64_t count_code_points(std::string_view text);

// HF's truncation strategies. Truncation never goes below what is asked for:
// where HF would log an error and return an over-long sequence, we throw.
enum class Truncation { None, LongestFirst, OnlyFirst, OnlySecond };

// A token matched before any other processing and never split (HF AddedToken).
struct AddedToken {
  std::string content;
  bool special = true;
  bool lstrip = false;      // eat whitespace on its left
  bool rstrip = false;      // eat whitespace on its right
  bool normalized = false;  // non-special normalized tokens are matched after lowercasing
};

struct TokenizerOptions {
  bool do_lower_case = true;
  bool do_basic_tokenize = true;
  bool tokenize_chinese_chars = true;
  std::optional<bool> strip_accents;  // nullopt: follow do_lower_case
  std::vector<std::string> never_split;
  bool use_jieba = false;       // RoFormerTokenizer: segment with jieba first
  std::string jieba_dict_path;  // empty: default_jieba_dict_path()
  int max_input_chars_per_word = 100;
  std::optional<int64_t> model_max_length;  // used when truncating without max_length
  bool clean_up_tokenization_spaces = true;
  std::string unk_token = "[UNK]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
  std::string cls_token = "[CLS]";
  std::string mask_token = "[MASK]";
  std::vector<std::string> additional_special_tokens;
  // Extra tokens with their ids (tokenizer_config.json's added_tokens_decoder).
  // A token in the vocab must carry its vocab id; others need ids >= vocab size.
  std::vector<std::pair<int64_t, AddedToken>> added_tokens;
};

// One piece of the text after special tokens are split out (lowercased if asked).
struct TextPiece {
  std::string text;
  bool added = false;  // true: an added/special token, emitted as one token
};

class Tokenizer {
 public:
  Tokenizer(Vocab vocab, TokenizerOptions options);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // A directory written by save_pretrained: vocab.txt, and optionally
  // tokenizer_config.json, special_tokens_map.json (which wins), config.json
  // (model_type, used only when tokenizer_class is missing). RoFormerTokenizer
  // selects jieba (dict.txt from `jieba_dict_path`, else default_jieba_dict_path());
  // BertTokenizer does not.
  static Tokenizer from_pretrained(const std::string& dir, const std::string& jieba_dict_path = "");
  // The options a tokenizer_config.json text sets (tokenizer_class picks use_jieba),
  // overridden by a special_tokens_map.json text when non-empty; `source` names
  // the config in errors. Unknown keys are ignored, mistyped ones throw.
  static TokenizerOptions options_from_json(std::string_view tokenizer_config, std::string_view special_tokens_map,
                                            const std::string& source = "tokenizer_config.json");

  // tokenizer.tokenize(text). Throws Error on invalid UTF-8.
  std::vector<std::string> tokenize(std::string_view text) const;
  // convert_tokens_to_ids(tokenize(text)), without making the token strings
  // (the encoders' path).
  std::vector<int64_t> tokenize_to_ids(std::string_view text) const;
  // tokenize(text), and each token's span in `text` (HF's fast tokenizers'
  // offset_mapping): a "##" piece covers its own characters, an unknown token
  // the whole word it stands for, a character the tokenizer drops (control
  // characters, and accents when it strips them) no token, also at the end of
  // an unknown word. A combining mark the tokenizer keeps belongs to the token
  // of the character before it.
  TokenizedText tokenize_with_offsets(std::string_view text) const;
  // tokenizer(text, pair, truncation=..., max_length=..., return_offsets_mapping=with_offsets):
  // [CLS] a [SEP] (b [SEP]).
  Encoding encode(std::string_view text, std::optional<std::string_view> pair = std::nullopt,
                  Truncation truncation = Truncation::None, std::optional<int64_t> max_length = std::nullopt,
                  bool with_offsets = false) const;
  // encode() of every text (and pairs[i] as its pair, when pairs is not
  // empty), the texts shared among `threads` threads: HF's
  // tokenizer(list_of_texts). The encodings are the ones encode() gives one
  // text at a time, at any thread count. An error names the first text that
  // failed ("text 12: ...").
  std::vector<Encoding> encode_batch(std::span<const std::string> texts, std::span<const std::string> pairs = {},
                                     int threads = 1, Truncation truncation = Truncation::None,
                                     std::optional<int64_t> max_length = std::nullopt, bool with_offsets = false) const;
  // tokenizer.decode(ids, skip_special_tokens, clean_up_tokenization_spaces (nullopt: the config's)).
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false,
                     std::optional<bool> clean_up_tokenization_spaces = std::nullopt) const;

  // The lowercasing + added-token split that tokenize() starts with.
  std::vector<TextPiece> split_added_tokens(std::string_view text) const;

  int64_t token_to_id(std::string_view token) const;  // unknown -> unk_id()
  std::vector<int64_t> convert_tokens_to_ids(const std::vector<std::string>& tokens) const;
  // Ids without a token (holes left by duplicates) give the unknown token;
  // ids outside the id space throw.
  std::string id_to_token(int64_t id) const;
  std::vector<std::string> convert_ids_to_tokens(const std::vector<int64_t>& ids) const;

  int64_t unk_id() const;
  int64_t sep_id() const;
  int64_t pad_id() const;
  int64_t cls_id() const;
  int64_t mask_id() const;
  bool is_special_id(int64_t id) const;
  // Ids are in [0, id_space()): vocab lines plus added tokens beyond them.
  int64_t id_space() const;

  const Vocab& vocab() const;
  const TokenizerOptions& options() const;
  // The word segmenter when options().use_jieba, else nullptr.
  const JiebaSegmenter* segmenter() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace roformer

// Tokenizer behaviour beyond the goldens: errors, truncation, special and added
// tokens, decode, loading checkpoint directories, hostile configs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using V = std::vector<std::string>;
using Ids = std::vector<int64_t>;

using testing::expect_error;
using testing::write_file;

Vocab fixture_vocab() { return Vocab::from_file(testing::data_path("fixtures/vocab.txt")); }

Tokenizer bert(bool lower = true) {
  TokenizerOptions o;
  o.do_lower_case = lower;
  return Tokenizer(fixture_vocab(), o);
}

bool have_jieba() { return std::filesystem::exists(default_jieba_dict_path()); }


// A checkpoint-like directory with the fixture vocab and the given config.
std::string make_dir(const testing::TempDir& dir, const std::string& config) {
  std::filesystem::copy_file(testing::data_path("fixtures/vocab.txt"), dir.file("vocab.txt"));
  if (!config.empty()) write_file(dir.file("tokenizer_config.json"), config);
  return dir.path();
}

TEST(Tokenizer, InvalidUtf8Throws) {
  const Tokenizer t = bert();
  expect_error([&] { t.tokenize("caf\xC3"); }, "invalid UTF-8 at byte 3");
  expect_error([&] { t.encode("ok", std::string_view("\xFF")); }, "invalid UTF-8 at byte 0");
}

TEST(Tokenizer, EmptyInput) {
  const Tokenizer t = bert();
  EXPECT_EQ(t.tokenize(""), V{});
  EXPECT_EQ(t.tokenize(" \t\n"), V{});
  const Encoding e = t.encode("");
  EXPECT_EQ(e.tokens, V({"[CLS]", "[SEP]"}));
  EXPECT_EQ(e.input_ids, Ids({2, 3}));
  const Encoding p = t.encode("", std::string_view(""));
  EXPECT_EQ(p.input_ids, Ids({2, 3, 3}));
  EXPECT_EQ(p.token_type_ids, Ids({0, 0, 1}));
}

TEST(Tokenizer, SpecialTokensAreSplitOut) {
  const Tokenizer t = bert();
  EXPECT_EQ(t.tokenize("a[MASK]b"), V({"a", "[MASK]", "b"}));
  EXPECT_EQ(t.tokenize("[mask]"), V({"[", "m", "##a", "##s", "##k", "]"}));  // case matters
  EXPECT_EQ(t.token_to_id("[MASK]"), 4);
  EXPECT_EQ(t.mask_id(), 4);
  EXPECT_EQ(t.cls_id(), 2);
  EXPECT_EQ(t.sep_id(), 3);
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_EQ(t.unk_id(), 1);
  const Tokenizer cased = bert(false);
  EXPECT_EQ(cased.tokenize("X[SEP]Y"), V({"X", "[SEP]", "Y"}));
  const auto pieces = t.split_added_tokens("The [CLS]x");
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].text, "the ");
  EXPECT_TRUE(pieces[1].added);
  EXPECT_EQ(pieces[2].text, "x");
}

TEST(Tokenizer, LongWordsBecomeUnk) {
  const Tokenizer t = bert();
  EXPECT_EQ(t.tokenize(std::string(101, 'a')), V({"[UNK]"}));
  const V hundred = t.tokenize(std::string(100, 'a'));
  ASSERT_EQ(hundred.size(), 100u);
  EXPECT_EQ(hundred[0], "a");
  EXPECT_EQ(hundred[1], "##a");
  TokenizerOptions o;
  o.max_input_chars_per_word = 3;
  const Tokenizer small(fixture_vocab(), o);
  EXPECT_EQ(small.tokenize("the hello"), V({"the", "[UNK]"}));
  // Characters, not bytes: 3 CJK-free accented letters are 6 bytes but 3 characters.
  TokenizerOptions cased = o;
  cased.do_lower_case = false;
  EXPECT_EQ(Tokenizer(fixture_vocab(), cased).tokenize("\xC3\xA9\xC3\xA9\xC3\xA9").size(), 3u);
}

TEST(Tokenizer, UnknownCharactersAndWords) {
  const Tokenizer t = bert();
  EXPECT_EQ(t.tokenize("\xF0\x9F\x98\x80"), V({"[UNK]"}));  // 😀
  EXPECT_EQ(t.token_to_id("no-such-token"), t.unk_id());
}

TEST(Tokenizer, TruncationStrategies) {
  const Tokenizer t = bert();
  const std::string a = "the of and to in";  // 5 tokens
  const std::string b = "a is that";         // 3 tokens
  // longest_first removes from the longer side, from the second on ties.
  Encoding e = t.encode(a, std::string_view(b), Truncation::LongestFirst, 8);
  EXPECT_EQ(e.input_ids.size(), 8u);
  EXPECT_EQ(e.tokens, V({"[CLS]", "the", "of", "and", "[SEP]", "a", "is", "[SEP]"}));
  e = t.encode(a, std::string_view(b), Truncation::OnlyFirst, 8);
  EXPECT_EQ(e.tokens, V({"[CLS]", "the", "of", "[SEP]", "a", "is", "that", "[SEP]"}));
  e = t.encode(a, std::string_view(b), Truncation::OnlySecond, 9);
  EXPECT_EQ(e.tokens, V({"[CLS]", "the", "of", "and", "to", "in", "[SEP]", "a", "[SEP]"}));
  EXPECT_EQ(e.token_type_ids, Ids({0, 0, 0, 0, 0, 0, 0, 1, 1}));
  e = t.encode(a, std::nullopt, Truncation::LongestFirst, 4);
  EXPECT_EQ(e.tokens, V({"[CLS]", "the", "of", "[SEP]"}));
  // Fits: nothing removed. No strategy: max_length is not applied.
  EXPECT_EQ(t.encode(a, std::nullopt, Truncation::LongestFirst, 7).input_ids.size(), 7u);
  EXPECT_EQ(t.encode(a, std::nullopt, Truncation::None, 3).input_ids.size(), 7u);
  // Impossible requests throw where HF would log an error and return too many tokens.
  expect_error([&] { t.encode(a, std::nullopt, Truncation::LongestFirst, 2); }, "cannot truncate to max_length 2");
  expect_error([&] { t.encode(a, std::string_view(b), Truncation::OnlyFirst, 6); }, "first sequence has 5");
  expect_error([&] { t.encode(a, std::string_view(b), Truncation::OnlySecond, 8); }, "second sequence has 3");
  expect_error([&] { t.encode(a, std::string_view(b), Truncation::LongestFirst, 2); }, "the pair has 8");
  expect_error([&] { t.encode(a, std::nullopt, Truncation::OnlySecond, 3); }, "needs a text pair");
  expect_error([&] { t.encode(a, std::nullopt, Truncation::OnlyFirst, 0); }, "max_length must be positive");
  // Removing every token of the pair to reach max_length is allowed for longest_first.
  EXPECT_EQ(t.encode(a, std::string_view(b), Truncation::LongestFirst, 3).tokens, V({"[CLS]", "[SEP]", "[SEP]"}));
}

TEST(Tokenizer, TruncationFallsBackToModelMaxLength) {
  TokenizerOptions o;
  o.model_max_length = 4;
  const Tokenizer t(fixture_vocab(), o);
  EXPECT_EQ(t.encode("the of and to", std::nullopt, Truncation::LongestFirst).input_ids.size(), 4u);
  EXPECT_EQ(t.encode("the of and to", std::nullopt, Truncation::None).input_ids.size(), 6u);
}

TEST(Tokenizer, Decode) {
  const Tokenizer t = bert();
  const Encoding e = t.encode("Hello, world! unaffable isn't");
  EXPECT_EQ(t.decode(e.input_ids), "[CLS] hello, world! unaffable isn't [SEP]");
  EXPECT_EQ(t.decode(e.input_ids, /*skip_special_tokens=*/true), "hello, world! unaffable isn't");
  EXPECT_EQ(t.decode(e.input_ids, true, /*clean_up=*/false), "hello , world ! unaffable isn ' t");
  EXPECT_EQ(t.decode({}), "");
  expect_error([&] { t.decode({5, 1054}); }, "token id 1054 is outside [0, 1054)");
  expect_error([&] { t.id_to_token(-1); }, "token id -1");
}

TEST(Tokenizer, DuplicateVocabLineDecodesToUnk) {
  const Tokenizer t(Vocab::from_string("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nx\nx\n"), TokenizerOptions{});
  EXPECT_EQ(t.token_to_id("x"), 6);
  EXPECT_EQ(t.id_to_token(5), "[UNK]");
  EXPECT_EQ(t.id_to_token(6), "x");
}

TEST(Tokenizer, AddedTokensWithStrip) {
  TokenizerOptions o;
  AddedToken extra;
  extra.content = "<ent>";
  extra.special = false;
  extra.lstrip = true;
  extra.rstrip = true;
  o.added_tokens.emplace_back(1054, extra);
  const Tokenizer t(fixture_vocab(), o);
  EXPECT_EQ(t.id_space(), 1055);
  EXPECT_EQ(t.tokenize("the <ent> of"), V({"the", "<ent>", "of"}));
  const auto pieces = t.split_added_tokens("the <ent> of");
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].text, "the");  // lstrip ate the space
  EXPECT_EQ(pieces[2].text, "of");   // rstrip too
  EXPECT_EQ(t.encode("<ent>").input_ids, Ids({2, 1054, 3}));
  EXPECT_EQ(t.decode({2, 1054, 5, 3}, true), "<ent> the");
  // An added token that contradicts the vocab, or sits on another token's line, is refused.
  TokenizerOptions bad;
  AddedToken clash;
  clash.content = "the";
  bad.added_tokens.emplace_back(7, clash);
  expect_error([&] { Tokenizer(fixture_vocab(), bad); }, "vocab.txt has it at id 5");
  bad.added_tokens = {{6, extra}};
  expect_error([&] { Tokenizer(fixture_vocab(), bad); }, "holding another token");
}

// Found by fuzz_tokenizer_config: id INT64_MAX overflowed the id space (id + 1).
TEST(Tokenizer, AddedTokenIdsStayBelowTwoToThe31) {
  AddedToken far;
  far.content = "<far>";
  far.special = false;
  TokenizerOptions o;
  o.added_tokens = {{INT64_MAX, far}};
  expect_error([&] { Tokenizer(fixture_vocab(), o); }, "id is not below 2^31");
  o.added_tokens = {{int64_t{1} << 31, far}};
  expect_error([&] { Tokenizer(fixture_vocab(), o); }, "id is not below 2^31");
  o.added_tokens = {{(int64_t{1} << 31) - 1, far}};
  EXPECT_EQ(Tokenizer(fixture_vocab(), o).id_space(), int64_t{1} << 31);
}

TEST(Tokenizer, SpecialTokensMustBeInTheVocab) {
  TokenizerOptions o;
  o.mask_token = "<mask>";
  expect_error([&] { Tokenizer(fixture_vocab(), o); }, "special token '<mask>' is not in the vocabulary");
}

TEST(Tokenizer, NewerUnicodeCharactersAreDroppedLikePython311) {
  // U+1E4EC (Unicode 15) is unassigned for Python 3.11, hence a "control" HF removes.
  const Tokenizer t = bert();
  EXPECT_EQ(t.tokenize("a\xF0\x9E\x93\xAC" "b"), t.tokenize("ab"));
}

TEST(Tokenizer, FromPretrainedRoFormerCheckpoint) {
  ASSERT_TRUE(have_jieba()) << "no jieba dict.txt at " << default_jieba_dict_path() << " (scripts/setup.sh installs python3-jieba)";
  const Tokenizer t = Tokenizer::from_pretrained(testing::data_path("fixtures/roformer-tiny-mlm"));
  EXPECT_TRUE(t.options().use_jieba);
  ASSERT_NE(t.segmenter(), nullptr);
  EXPECT_EQ(t.options().model_max_length, 128);
  EXPECT_EQ(t.tokenize("今天天气非常好。"), V({"[UNK]", "天", "天", "气", "非常", "好", "。"}));
  EXPECT_EQ(t.tokenize("café"), V({"caf", "é"}));
}

TEST(Tokenizer, FromPretrainedBertAndModelType) {
  testing::TempDir bert_dir;
  const Tokenizer b = Tokenizer::from_pretrained(
      make_dir(bert_dir, R"({"tokenizer_class": "BertTokenizer", "do_lower_case": false, "strip_accents": true})"));
  EXPECT_FALSE(b.options().use_jieba);
  EXPECT_EQ(b.tokenize("Café"), V({"C", "##a", "##fe"}));  // cased, accents stripped
  // No tokenizer_class: config.json's model_type decides.
  testing::TempDir typed;
  make_dir(typed, R"({"do_lower_case": true})");
  write_file(typed.file("config.json"), R"({"model_type": "bert"})");
  EXPECT_FALSE(Tokenizer::from_pretrained(typed.path()).options().use_jieba);
  // Only vocab.txt: HF defaults need a model type to pick the class.
  testing::TempDir bare;
  make_dir(bare, "");
  expect_error([&] { Tokenizer::from_pretrained(bare.path()); }, "no 'tokenizer_class'");
  // special_tokens_map.json wins over tokenizer_config.json.
  testing::TempDir mapped;
  make_dir(mapped, R"({"tokenizer_class": "BertTokenizer", "mask_token": "<nope>"})");
  write_file(mapped.file("special_tokens_map.json"), R"({"mask_token": {"content": "[MASK]", "lstrip": false}})");
  EXPECT_EQ(Tokenizer::from_pretrained(mapped.path()).mask_id(), 4);
}

TEST(Tokenizer, HostileDirectoriesAndConfigs) {
  expect_error([] { Tokenizer::from_pretrained("/nonexistent/model"); }, "does not exist");
  testing::TempDir empty;
  write_file(empty.file("tokenizer_config.json"), R"({"tokenizer_class": "BertTokenizer"})");
  expect_error([&] { Tokenizer::from_pretrained(empty.path()); }, "vocab file");

  const auto config_error = [](const std::string& config, const std::string& needle) {
    testing::TempDir dir;
    expect_error([&] { Tokenizer::from_pretrained(make_dir(dir, config)); }, needle);
  };
  config_error("{not json", "tokenizer_config.json: invalid JSON");
  testing::TempDir blank;
  make_dir(blank, "");
  write_file(blank.file("tokenizer_config.json"), "");
  expect_error([&] { Tokenizer::from_pretrained(blank.path()); }, "invalid JSON");
  config_error("[1, 2]", "expected a JSON object");
  config_error(R"({"tokenizer_class": "GPT2Tokenizer"})", "unsupported tokenizer 'GPT2Tokenizer'");
  config_error(R"({"tokenizer_class": 5})", "field 'tokenizer_class' must be a string");
  config_error(R"({"tokenizer_class": "BertTokenizer", "do_lower_case": "yes"})", "field 'do_lower_case'");
  config_error(R"({"tokenizer_class": "BertTokenizer", "strip_accents": 1})", "field 'strip_accents'");
  config_error(R"({"tokenizer_class": "BertTokenizer", "never_split": [1]})", "field 'never_split'");
  config_error(R"({"tokenizer_class": "BertTokenizer", "model_max_length": -5})", "field 'model_max_length'");
  config_error(R"({"tokenizer_class": "BertTokenizer", "mask_token": 3})", "field 'mask_token'");
  config_error(R"({"tokenizer_class": "BertTokenizer", "mask_token": {"lstrip": true}})", "field 'mask_token'");
  config_error(R"({"tokenizer_class": "BertTokenizer", "unk_token": "<unk>"})", "'<unk>' is not in the vocabulary");
  config_error(R"({"tokenizer_class": "BertTokenizer", "added_tokens_decoder": {"x": {"content": "a"}}})",
               "non-negative integer id");
  config_error(R"({"tokenizer_class": "BertTokenizer", "added_tokens_decoder": {"4": {"content": 7}}})",
               "added_tokens_decoder.4.content");
  config_error(R"({"tokenizer_class": "BertTokenizer", "added_tokens_decoder": {"4": {"content": "[CLS]"}}})",
               "vocab.txt has it at id 2");
  config_error(R"({"tokenizer_class": "BertTokenizer", "added_tokens_decoder": {"9": {"content": "z", "single_word": true}}})",
               "single_word");
  config_error(R"({"tokenizer_class": "BertTokenizer", "added_tokens_decoder": {"4": {"content": "[MASK]", "lstrip": "no"}}})",
               "field 'lstrip'");
  // A huge model_max_length is HF's "no limit".
  testing::TempDir big;
  const Tokenizer t = Tokenizer::from_pretrained(
      make_dir(big, R"({"tokenizer_class": "BertTokenizer", "model_max_length": 1000000000000000019884624838656})"));
  EXPECT_FALSE(t.options().model_max_length.has_value());
}

TEST(Tokenizer, HostileJiebaDictionaryPath) {
  TokenizerOptions o;
  o.use_jieba = true;
  testing::TempDir dir;
  o.jieba_dict_path = dir.file("nothing.txt");
  expect_error([&] { Tokenizer(fixture_vocab(), o); }, "jieba dictionary");
  write_file(dir.file("bad.txt"), "word 1\nbroken\n");
  o.jieba_dict_path = dir.file("bad.txt");
  expect_error([&] { Tokenizer(fixture_vocab(), o); }, "line 2");
}

TEST(Tokenizer, ConcurrentUseGivesTheSameTokens) {
  ASSERT_TRUE(have_jieba()) << "no jieba dict.txt (scripts/setup.sh installs python3-jieba)";
  TokenizerOptions o;
  o.use_jieba = true;
  const Tokenizer t(fixture_vocab(), o);
  const std::string text = "自然语言处理是人工智能的一个重要方向。RoFormer [MASK] café";
  const V expected = t.tokenize(text);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 50; ++k) ok[i] += t.tokenize(text) == expected;
    });
  }
  for (auto& th : threads) th.join();
  for (int n : ok) EXPECT_EQ(n, 50);
}

}  // namespace
}  // namespace roformer

// Question-answering JSONL (SQuAD's format): answer spans found in the
// context's tokens, windows of long contexts with their labels, character
// offsets counted in code points, answers inside words, malformed records, and
// SQuAD's answer normalisation and F1.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "roformer/error.h"
#include "roformer/evaluation.h"
#include "roformer/qa_dataset.h"

namespace roformer {
namespace {

using data_test::write_file;

std::string record(const std::string& question, const std::string& context, const std::string& answer, int64_t start,
                   const std::string& split = "train") {
  return nlohmann::json{{"question", question},
                        {"context", context},
                        {"answers", {{"text", {answer}}, {"answer_start", {start}}}},
                        {"split", split}}
             .dump() +
         "\n";
}

std::vector<int64_t> ids_of(const std::string& text) {
  const auto& tok = data_test::sample_tokenizer();
  std::vector<int64_t> ids;
  for (const auto& t : tok.tokenize(text)) ids.push_back(tok.token_to_id(t));
  return ids;
}

TEST(DataQa, TheAnswerSpanIsTheAnswersTokens) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  const std::string context = "the jury said the election was conducted in atlanta on friday .";
  auto at = [&](const char* answer) { return static_cast<int64_t>(context.find(answer)); };  // ASCII: bytes = code points
  write_file(dir.file("qa.jsonl"), record("where was the election ?", context, "in atlanta", at("in atlanta")) +
                                       record("when ?", context, "friday", at("friday"), "valid"));
  const auto ds = QaDataset::from_jsonl(dir.file("qa.jsonl"), tok);
  ASSERT_EQ(ds.records(), 2);
  ASSERT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.unaligned(), 0);
  const QaWindow& w = ds.window(0);
  const Encoding e = tok.encode("where was the election ?", context);
  EXPECT_EQ(w.ids, e.input_ids) << "one window: the pair encoding";
  EXPECT_EQ(w.types, e.token_type_ids);
  const std::vector<int64_t> span(w.ids.begin() + w.start, w.ids.begin() + w.end + 1);
  EXPECT_EQ(span, ids_of("in atlanta"));
  EXPECT_EQ(tok.decode(span, true), "in atlanta");
  EXPECT_EQ(w.context_begin, static_cast<int64_t>(ids_of("where was the election ?").size()) + 2);
  EXPECT_EQ(w.context_end, static_cast<int64_t>(w.ids.size()) - 1);
  EXPECT_EQ(ds.indices_of_split("valid"), (std::vector<int64_t>{1}));
  EXPECT_EQ(ds.record(1).answers, (std::vector<std::string>{"friday"}));
  QaBatch b;
  const std::vector<int64_t> both{1, 0};
  ds.batch(both, b);
  EXPECT_EQ(b.start_positions, (std::vector<int64_t>{ds.window(1).start, w.start}));
  EXPECT_EQ(b.end_positions, (std::vector<int64_t>{ds.window(1).end, w.end}));
  EXPECT_EQ(b.model_batch().input_ids.shape(), (Shape{2, b.seq_len}));
}

// A long context in windows of max_length sharing `stride` tokens: every
// context token is in some window, consecutive windows overlap by stride,
// and only windows holding the whole answer point at it.
TEST(DataQa, LongContextsAreWindowedAndLabelledPerWindow) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  std::string context;
  for (int i = 0; i < 12; ++i) context += "the jury said it was a good election . ";
  const std::string answer = "the city of atlanta";
  const auto at = static_cast<int64_t>(context.size());
  context += answer + " had a vote .";
  write_file(dir.file("qa.jsonl"), record("which city ?", context, answer, at));
  QaOptions o;
  o.max_length = 24;
  o.stride = 5;
  const auto ds = QaDataset::from_jsonl(dir.file("qa.jsonl"), tok, o);
  ASSERT_EQ(ds.records(), 1);
  const auto ctx = ids_of(context);
  const int64_t q = static_cast<int64_t>(ids_of("which city ?").size()), room = 24 - 3 - q;
  const auto& windows = ds.record(0).windows;
  ASSERT_GT(windows.size(), 3u);
  int64_t labelled = 0, covered_to = 0;
  for (std::size_t k = 0; k < windows.size(); ++k) {
    const QaWindow& w = ds.window(windows[k]);
    EXPECT_LE(w.ids.size(), 24u);
    const int64_t w0 = static_cast<int64_t>(k) * (room - o.stride);
    const std::vector<int64_t> part(w.ids.begin() + w.context_begin, w.ids.begin() + w.context_end);
    EXPECT_EQ(part, std::vector<int64_t>(ctx.begin() + w0, ctx.begin() + w0 + static_cast<int64_t>(part.size()))) << k;
    covered_to = w0 + static_cast<int64_t>(part.size());
    if (w.start != 0) {
      ++labelled;
      EXPECT_EQ(tok.decode(std::vector<int64_t>(w.ids.begin() + w.start, w.ids.begin() + w.end + 1), true), answer);
    } else {
      EXPECT_EQ(w.end, 0);
    }
  }
  EXPECT_EQ(covered_to, static_cast<int64_t>(ctx.size()));
  EXPECT_GE(labelled, 1);
}

// answer_start counts code points; an answer inside a word takes the whole
// token, as HF's recipe labels it; one that no token covers is left out.
TEST(DataQa, AnswersAreFoundByCharacterOffsets) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  // "ü" and "ö" are two bytes each: "und alt" starts at byte 19, code point 17.
  write_file(dir.file("qa.jsonl"), record("what ?", "zürich ist schön und alt", "und alt", 17) +
                                       record("what ?", "the jury said it was good", "ury sai", 5) +
                                       record("what ?", "the jury said  it was good", " ", 13));
  const auto ds = QaDataset::from_jsonl(dir.file("qa.jsonl"), tok);
  ASSERT_EQ(ds.records(), 2);
  EXPECT_EQ(ds.unaligned(), 1) << "an answer of one space has no token";
  const QaWindow& w = ds.window(0);
  EXPECT_EQ(std::vector<int64_t>(w.ids.begin() + w.start, w.ids.begin() + w.end + 1), ids_of("und alt"));
  const QaWindow& inside = ds.window(1);
  EXPECT_EQ(std::vector<int64_t>(inside.ids.begin() + inside.start, inside.ids.begin() + inside.end + 1),
            ids_of("jury said")) << "the tokens the answer's characters fall in";
  const int64_t shift = inside.context_offset - inside.context_begin;
  EXPECT_EQ(ds.record(1).text_of(inside.start + shift, inside.end + shift), "jury said");
  EXPECT_EQ(ds.record(0).text_of(w.start + w.context_offset - w.context_begin, w.end + w.context_offset - w.context_begin),
            "und alt");
  EXPECT_THROW(ds.record(0).text_of(2, 1), Error);
}

// SQuAD 2.0: empty answer lists mark a question the context does not
// answer; every window of it points at [CLS].
TEST(DataQa, UnanswerableQuestionsPointAtCls) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  std::string context;
  for (int i = 0; i < 6; ++i) context += "the jury said it was a good election . ";
  write_file(dir.file("qa.jsonl"),
             record("who ?", "the jury said", "jury", 4) +
                 nlohmann::json{{"question", "which city ?"}, {"context", context}, {"answers", {{"text", nlohmann::json::array()}, {"answer_start", nlohmann::json::array()}}}}.dump() + "\n");
  QaOptions o;
  o.max_length = 24;
  o.stride = 4;
  const auto ds = QaDataset::from_jsonl(dir.file("qa.jsonl"), tok, o);
  ASSERT_EQ(ds.records(), 2);
  EXPECT_EQ(ds.unanswerable(), 1);
  EXPECT_EQ(ds.unaligned(), 0);
  EXPECT_TRUE(ds.record(1).answers.empty());
  ASSERT_GT(ds.record(1).windows.size(), 2u);
  for (int64_t w : ds.record(1).windows) {
    EXPECT_EQ(ds.window(w).start, 0);
    EXPECT_EQ(ds.window(w).end, 0);
  }
  EXPECT_NE(ds.window(ds.record(0).windows.at(0)).start, 0);
}

TEST(DataQa, MalformedRecordsNameTheirLine) {
  testing::TempDir dir;
  auto error_of = [&](const std::string& second, QaOptions o = {}) {
    write_file(dir.file("bad.jsonl"), record("q ?", "a b c", "b", 2) + second + "\n");
    try {
      QaDataset::from_jsonl(dir.file("bad.jsonl"), data_test::sample_tokenizer(), o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto expect = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
    EXPECT_NE(msg.find("bad.jsonl:2"), std::string::npos) << msg;
  };
  expect(error_of(R"({"context": "a", "answers": {"text": ["a"], "answer_start": [0]}})"), "\"question\"");
  expect(error_of(R"({"question": "q", "context": "a", "answers": ["a"]})"), "must be an object");
  expect(error_of(R"({"question": "q", "context": "a", "answers": {"text": ["a"], "answer_start": []}})"), "of one length");
  expect(error_of(R"({"question": "q", "context": "a b", "answers": {"text": ["b"], "answer_start": [0]}})"),
         "not in the context");
  expect(error_of(R"({"question": "q", "context": "a b", "answers": {"text": ["b"], "answer_start": [9]}})"),
         "not in the context");
  expect(error_of(R"({"question": "q", "context": "a b", "answers": {"text": ["b"], "answer_start": [-1]}})"),
         "not in the context");
  expect(error_of(R"({"question": "q", "context": "a b", "answers": {"text": [2], "answer_start": [0]}})"), "strings");
  QaOptions tight;
  tight.max_length = 6;
  tight.stride = 0;
  expect(error_of(R"({"question": "a very long question indeed", "context": "a b", "answers": {"text": ["b"], "answer_start": [2]}})",
                  tight),
         "too many");
}

// The official SQuAD v1.1 script's normalisation and F1, on hand-worked cases.
TEST(DataQa, SquadNormalisationAndF1) {
  EXPECT_EQ(squad_normalize("The  Cat's, hat!"), "cats hat");
  EXPECT_EQ(squad_normalize("an apple a day"), "apple day");
  EXPECT_EQ(squad_normalize("Theory"), "theory") << "articles only as whole words";
  EXPECT_DOUBLE_EQ(squad_f1("the cat sat", "a cat sat down"), 0.8);  // P = 2/2, R = 2/3
  EXPECT_DOUBLE_EQ(squad_f1("dog", "cat"), 0.0);
  EXPECT_DOUBLE_EQ(squad_f1("the", "a"), 1.0) << "both empty after normalisation";
  EXPECT_DOUBLE_EQ(squad_f1("cat cat", "cat"), 2.0 * 0.5 * 1.0 / 1.5) << "repeated words count once each";
  EXPECT_EQ(squad_normalize("“CafÉ” — ok"), "“café” — ok") << "other punctuation stays, as in SQuAD's script";
}

// Chinese: each ideograph a word, CJK punctuation removed, so a decoded
// answer ("北 京") matches the context's text ("北京").
TEST(DataQa, ChineseAnswersCountCharacters) {
  EXPECT_EQ(squad_normalize("今天，天气 很好。"), "今 天 天 气 很 好");
  EXPECT_EQ(squad_normalize("北 京"), squad_normalize("北京"));
  EXPECT_EQ(squad_normalize("在北京（中国）"), "在 北 京 中 国");
  EXPECT_DOUBLE_EQ(squad_f1("今天天气", "今 天"), 2.0 * 0.5 * 1.0 / 1.5);
  EXPECT_DOUBLE_EQ(squad_f1("RoFormer模型", "roformer 模型"), 1.0);
  EXPECT_THROW(squad_normalize("\xff"), Error);
}

// CMRC 2018's scoring, worked by hand from its evaluation script's rules.
TEST(DataQa, Cmrc2018ScoringSegmentsAndLongestCommonRun) {
  using S = std::vector<std::string>;
  EXPECT_EQ(cmrc_segments("北京是首都"), (S{"北", "京", "是", "首", "都"}));
  // Lower-cased and stripped; a listed mark ('-') is dropped without ending the word.
  EXPECT_EQ(cmrc_segments("  RoFormer-v2 模型 "), (S{"roformerv2", "模", "型"}));
  // Runs between hanzi split as NLTK's word_tokenize splits them.
  EXPECT_EQ(cmrc_segments("3.5 km, 全长!"), (S{"3.5", "km", ",", "全", "长", "!"}));
  EXPECT_EQ(cmrc_segments("他说\"don't\"。"), (S{"他", "说", "``", "do", "n't", "''"}));
  EXPECT_EQ(cmrc_segments("《红楼梦》，"), (S{"红", "楼", "梦"}));
  // The longest common run, not the shared bag: 北京 (2 of 6 predicted, 2 of 4 expected).
  EXPECT_DOUBLE_EQ(cmrc_f1("在北京和上海", "北京上海"), 2 * (2.0 / 6) * (2.0 / 4) / (2.0 / 6 + 2.0 / 4));
  EXPECT_DOUBLE_EQ(squad_f1("在北京和上海", "北京上海"), 2 * (4.0 / 6) * 1.0 / (4.0 / 6 + 1.0)) << "SQuAD counts the bag";
  EXPECT_DOUBLE_EQ(cmrc_f1("北京市", "北京"), 0.8);
  EXPECT_DOUBLE_EQ(cmrc_f1("", "北京"), 0.0);
  EXPECT_DOUBLE_EQ(cmrc_f1("上海", "北京"), 0.0);
  EXPECT_TRUE(cmrc_exact_match("《红楼梦》。", "红楼梦"));
  EXPECT_TRUE(cmrc_exact_match(" RoFormer ", "roformer"));
  EXPECT_FALSE(cmrc_exact_match("红 楼梦", "红楼梦")) << "spaces are kept";
  EXPECT_DOUBLE_EQ(qa_exact_match(QaScoring::Cmrc2018, "红 楼梦", "红楼梦"), 0.0);
  EXPECT_DOUBLE_EQ(qa_exact_match(QaScoring::Squad, "红 楼梦", "红楼梦"), 1.0);
  EXPECT_DOUBLE_EQ(qa_f1(QaScoring::Cmrc2018, "北京市", "北京"), 0.8);
  EXPECT_EQ(parse_qa_scoring("cmrc2018"), QaScoring::Cmrc2018);
  EXPECT_STREQ(qa_scoring_name(parse_qa_scoring("squad")), "squad");
  EXPECT_THROW(parse_qa_scoring("bleu"), Error);
  EXPECT_THROW(cmrc_segments("\xff"), Error);
}

// The segmentation against the evaluation script's own, run with NLTK 3.8 on
// about 1,500 mixtures of hanzi, the script's punctuation and English
// (tests/data/nltk/make_goldens.py).
TEST(DataQa, Cmrc2018SegmentsMatchTheScriptWithNltk) {
  const std::size_t compared = testing::expect_word_goldens(
      "nltk/cmrc_segments.jsonl", "segments", [](const std::string& text) { return cmrc_segments(text); });
  EXPECT_GT(compared, 1500u);
}

}  // namespace
}  // namespace roformer

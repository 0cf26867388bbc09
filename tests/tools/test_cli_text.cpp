// Text subcommands end to end: the JSON they print agrees with the library
// run directly on the same tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "roformer/entities.h"
#include "roformer/generate.h"
#include "roformer/model.h"
#include "roformer/qa_dataset.h"
#include "roformer/tokenizer.h"
#include "support/test_support.h"

namespace roformer::testing {
namespace {


std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Runs the model on one encoded text, unpadded.
ModelOutput run_one(const RoFormerModel& model, const Encoding& e) {
  const int64_t T = static_cast<int64_t>(e.input_ids.size());
  Tensor ids = Tensor::zeros({1, T}, DType::I64), types = Tensor::zeros({1, T}, DType::I64);
  std::copy(e.input_ids.begin(), e.input_ids.end(), ids.data<int64_t>());
  std::copy(e.token_type_ids.begin(), e.token_type_ids.end(), types.data<int64_t>());
  return model.forward(Batch{ids, {}, types}, {}, ExecContext{1, best_isa()});
}

TEST(CliText, FillMaskTopPredictionIsTheArgmax) {
  const std::string dir = fixture_dir("roformer-tiny-mlm");
  const std::string text = "the cat [MASK] on the mat";
  const auto r = run_command(cli_path() + " fill-mask -m " + dir + " -k 4 '" + text + "' 'a [MASK] dog [MASK]'");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto lines = json_lines(r.output);
  ASSERT_EQ(lines.size(), 2u);
  ASSERT_EQ(lines[0]["masks"].size(), 1u);
  EXPECT_EQ(lines[1]["masks"].size(), 2u);
  const auto& preds = lines[0]["masks"][0]["predictions"];
  ASSERT_EQ(preds.size(), 4u);
  for (std::size_t i = 1; i < preds.size(); ++i) EXPECT_GE(preds[i - 1]["score"], preds[i]["score"]);

  Tokenizer tok = Tokenizer::from_pretrained(dir);
  RoFormerModel model = RoFormerModel::from_pretrained(dir);
  const Encoding e = tok.encode(text);
  const int64_t pos = lines[0]["masks"][0]["position"];
  ASSERT_EQ(e.input_ids[static_cast<std::size_t>(pos)], tok.mask_id());
  ModelOutput out = run_one(model, e);
  const int64_t V = model.config().vocab_size;
  const float* row = out.heads.at("logits").data<float>() + pos * V;
  EXPECT_EQ(preds[0]["id"].get<int64_t>(), std::max_element(row, row + V) - row);
}

TEST(CliText, ClassifyReadsStdinAndAgreesWithTheLibrary) {
  const std::string dir = fixture_dir("roformer-tiny-cls");
  const auto r = run_command("printf 'a good day\\nterrible service\\nfine\\tthanks\\n' | " + cli_path() +
                             " classify -m " + dir + " --batch-size 2");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto lines = json_lines(r.output);
  ASSERT_EQ(lines.size(), 3u);
  Tokenizer tok = Tokenizer::from_pretrained(dir);
  RoFormerModel model = RoFormerModel::from_pretrained(dir);
  const ModelOutput out = run_one(model, tok.encode("terrible service"));
  const auto logits = out.heads.at("logits").to_vector();
  double z = 0;
  for (float l : logits) z += std::exp(l);
  const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
  EXPECT_EQ(lines[1]["label"], model.config().id2label.at(best));
  EXPECT_NEAR(lines[1]["score"].get<double>(), std::exp(logits[static_cast<std::size_t>(best)]) / z, 1e-5);
  double total = 0;
  for (const auto& [label, p] : lines[1]["scores"].items()) total += p.get<double>();
  EXPECT_NEAR(total, 1.0, 1e-9);
}

TEST(CliText, TokenClassificationLabelsEveryToken) {
  const auto r = run_command(cli_path() + " classify -m " + fixture_dir("roformer-tiny-tok") + " 'john lives in paris'");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto lines = json_lines(r.output);
  ASSERT_EQ(lines.size(), 1u);
  Tokenizer tok = Tokenizer::from_pretrained(fixture_dir("roformer-tiny-tok"));
  EXPECT_EQ(lines[0]["tokens"].size(), tok.encode("john lives in paris").input_ids.size());
}

// Each token's characters, and with --aggregate its B-/I- groups as entities
// carrying the text they cover (the grouping itself: Entities.* in test_models).
TEST(CliText, TokenClassificationGivesSpansAndEntities) {
  const std::string dir = fixture_dir("roformer-tiny-tok");
  const std::string text = "John Smith lives in New York, Zoë in Paris";
  const auto r = run_command(cli_path() + " classify --aggregate simple -m " + dir + " '" + text + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto line = json_lines(r.output).at(0);
  const Tokenizer tok = Tokenizer::from_pretrained(dir);
  const Encoding e = tok.encode(text, std::nullopt, Truncation::None, std::nullopt, true);
  const auto& tokens = line["tokens"];
  ASSERT_EQ(tokens.size(), e.input_ids.size());
  std::vector<TokenLabel> labels;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const bool special = t == 0 || t + 1 == tokens.size();
    EXPECT_EQ(tokens[t].contains("start"), !special) << t;
    if (!special) {
      EXPECT_EQ(tokens[t]["start"].get<int64_t>(), e.offsets[t].start) << t;
      EXPECT_EQ(tokens[t]["end"].get<int64_t>(), e.offsets[t].end) << t;
    }
    const bool subword = e.tokens[t].rfind("##", 0) == 0;
    labels.push_back(
        {tokens[t]["label"].get<std::string>(), tokens[t]["score"].get<double>(), e.offsets[t], special, 0, subword, {}});
  }
  const auto expected = group_entities(labels);
  const auto& entities = line["entities"];
  ASSERT_EQ(entities.size(), expected.size()) << line.dump();
  ASSERT_FALSE(expected.empty()) << "random weights that tag nothing would not test the grouping";
  for (std::size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ(entities[k]["entity_group"], expected[k].group);
    EXPECT_NEAR(entities[k]["score"].get<double>(), expected[k].score, 1e-12);
    EXPECT_EQ(entities[k]["start"].get<int64_t>(), expected[k].span.start);
    EXPECT_EQ(entities[k]["end"].get<int64_t>(), expected[k].span.end);
    EXPECT_EQ(entities[k]["word"], slice_code_points(text, expected[k].span.start, expected[k].span.end));
  }
  // Words labelled by their first token: the same grouping over words.
  const auto words = run_command(cli_path() + " classify --aggregate first -m " + dir + " '" + text + "'");
  ASSERT_EQ(words.status, 0) << words.output;
  const auto by_word = group_entities(labels, Aggregation::First);
  const auto word_line = json_lines(words.output).at(0);
  const auto& word_entities = word_line["entities"];
  ASSERT_EQ(word_entities.size(), by_word.size());
  for (std::size_t k = 0; k < by_word.size(); ++k) {
    EXPECT_EQ(word_entities[k]["entity_group"], by_word[k].group);
    EXPECT_EQ(word_entities[k]["start"].get<int64_t>(), by_word[k].span.start);
    EXPECT_EQ(word_entities[k]["end"].get<int64_t>(), by_word[k].span.end);
  }
  const auto plain = run_command(cli_path() + " classify -m " + dir + " '" + text + "'");
  EXPECT_FALSE(json_lines(plain.output).at(0).contains("entities")) << "entities only with --aggregate";
  EXPECT_NE(run_command(cli_path() + " classify --aggregate mean -m " + dir + " 'x' 2>&1").status, 0);
}

// A text pair: the second text's tokens say so, and count characters in it.
TEST(CliText, TokenClassificationOfPairsMarksTheSecondText) {
  const std::string dir = fixture_dir("roformer-tiny-tok");
  const std::string first = "John lives", second = "in New York";
  const auto r = run_command("printf '%s\\t%s\\n' '" + first + "' '" + second + "' | " + cli_path() + " classify -m " + dir);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto line = json_lines(r.output).at(0);
  const auto& tokens = line["tokens"];
  const Tokenizer tok = Tokenizer::from_pretrained(dir);
  const Encoding e = tok.encode(first, second, Truncation::None, std::nullopt, true);
  ASSERT_EQ(tokens.size(), e.input_ids.size());
  int in_second = 0;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const bool special = !tokens[t].contains("start");
    const bool pair = tokens[t].value("pair", false);
    EXPECT_EQ(pair, !special && e.token_type_ids[t] == 1) << t << " " << tokens[t].dump();
    if (special) continue;
    const std::string& own = pair ? second : first;
    const auto start = tokens[t]["start"].get<int64_t>(), end = tokens[t]["end"].get<int64_t>();
    EXPECT_LE(end, count_code_points(own)) << t;
    EXPECT_EQ(start, e.offsets[t].start);
    in_second += pair;
  }
  EXPECT_EQ(in_second, static_cast<int>(tok.tokenize(second).size())) << "every token of the second text";
}

TEST(CliText, EmbedPoolsAndNormalises) {
  const std::string dir = fixture_dir("roformer-tiny-mlm");
  const auto cls = run_command(cli_path() + " embed -m " + dir + " 'hello world'");
  const auto mean = run_command(cli_path() + " embed -m " + dir + " --pooling mean --normalize 'hello world'");
  ASSERT_EQ(cls.status, 0) << cls.output;
  ASSERT_EQ(mean.status, 0) << mean.output;
  const auto c = json_lines(cls.output).at(0)["embedding"].get<std::vector<double>>();
  const auto m = json_lines(mean.output).at(0)["embedding"].get<std::vector<double>>();
  ASSERT_EQ(c.size(), 64u);
  double norm = 0;
  for (double v : m) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-9);
  RoFormerModel base = RoFormerModel::from_pretrained(dir, LoadOptions{Task::Base, "", ""});
  const ModelOutput out = run_one(base, Tokenizer::from_pretrained(dir).encode("hello world"));
  for (std::size_t k = 0; k < 64; ++k) EXPECT_NEAR(c[k], out.last_hidden_state.data<float>()[k], 1e-6);
}

// Texts of mixed lengths run in batches by length (or as read, or cut by a
// token limit) and print in input order, each equal to the text run alone.
TEST(CliText, BatchesByLengthPrintInInputOrder) {
  const std::string dir = fixture_dir("roformer-tiny-mlm");
  const std::vector<std::string> texts = {"hi", "the cat sat on the mat and the dog sat on the log all day long",
                                          "a dog", "one two three four five six", "x", "the mat is red and the log is brown"};
  std::string input;
  for (const auto& t : texts) input += t + "\\n";
  RoFormerModel base = RoFormerModel::from_pretrained(dir, LoadOptions{Task::Base, "", ""});
  const Tokenizer tok = Tokenizer::from_pretrained(dir);
  const int64_t H = base.config().hidden_size;
  for (const std::string flags : {"--batch-size 2", "--batch-size 3 --input-order", "--batch-size 4 --max-tokens 20"}) {
    const auto r = run_command("printf '" + input + "' | " + cli_path() + " embed -m " + dir + " " + flags);
    ASSERT_EQ(r.status, 0) << flags << ": " << r.output;
    const auto lines = json_lines(r.output);
    ASSERT_EQ(lines.size(), texts.size()) << flags;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      EXPECT_EQ(lines[i]["text"], texts[i]) << flags;
      const auto got = lines[i]["embedding"].get<std::vector<double>>();
      const ModelOutput alone = run_one(base, tok.encode(texts[i]));
      ASSERT_EQ(static_cast<int64_t>(got.size()), H);
      for (int64_t k = 0; k < H; ++k)
        ASSERT_NEAR(got[static_cast<std::size_t>(k)], alone.last_hidden_state.data<float>()[k], 1e-5) << flags << " " << i;
    }
  }
  const auto bad = run_command(cli_path() + " embed -m " + dir + " --max-tokens -1 'hi' 2>&1");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("--max-tokens"), std::string::npos) << bad.output;
}

// The answer is the context's own text (case and accents kept) under the
// best tokens, with its span in code points.
TEST(CliText, QaAnswersWithASpanOfTheContext) {
  const std::string context = "Zoë lives in Paris with Mary";
  const auto r = run_command("printf 'who lives there\\t" + context + "\\n' | " + cli_path() + " qa -m " +
                             fixture_dir("roformer-tiny-qa"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = json_lines(r.output).at(0);
  const int64_t first = j["start_token"].get<int64_t>(), last = j["end_token"].get<int64_t>();
  ASSERT_LE(first, last);
  const TokenizedText t = Tokenizer::from_pretrained(fixture_dir("roformer-tiny-qa")).tokenize_with_offsets(context);
  ASSERT_LT(last, static_cast<int64_t>(t.offsets.size()));
  EXPECT_EQ(j["start"].get<int64_t>(), t.offsets[static_cast<std::size_t>(first)].start);
  EXPECT_EQ(j["end"].get<int64_t>(), t.offsets[static_cast<std::size_t>(last)].end);
  EXPECT_EQ(j["answer"].get<std::string>(), slice_code_points(context, j["start"].get<int64_t>(), j["end"].get<int64_t>()));
  EXPECT_NE(context.find(j["answer"].get<std::string>()), std::string::npos);
  EXPECT_GT(j["score"].get<double>(), 0.0);
  EXPECT_LE(j["score"].get<double>(), 1.0);
}

// A context longer than --max-length is read in windows: the reported span
// is the best of every window's best, each window run alone through the library.
TEST(CliText, QaReadsALongContextInWindows) {
  const std::string dir = fixture_dir("roformer-tiny-qa");
  const RoFormerModel model = RoFormerModel::from_pretrained(dir);
  const Tokenizer tok = Tokenizer::from_pretrained(dir);
  const std::string question = "who lives there";
  const std::string context = "john lives in paris with mary and the cat sat on the mat while it rained in the city all day";
  const auto r = run_command("printf '" + question + "\\t" + context + "\\n' | " + cli_path() + " qa -m " + dir +
                             " --max-length 16 --doc-stride 4 --max-answer-length 3 --no-align-to-words");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = json_lines(r.output).at(0);
  const TokenizedText context_tokens = tok.tokenize_with_offsets(context);
  const auto windows = qa_windows(tok.convert_tokens_to_ids(tok.tokenize(question)),
                                  tok.convert_tokens_to_ids(context_tokens.tokens), 16, 4, tok.cls_id(), tok.sep_id());
  ASSERT_GT(windows.size(), 2u);
  double top = -1;
  std::size_t top_window = 0;
  std::string top_answer;
  for (std::size_t k = 0; k < windows.size(); ++k) {
    const QaWindow& w = windows[k];
    Encoding e;
    e.input_ids = w.ids;
    e.token_type_ids = w.types;
    const ModelOutput out = run_one(model, e);
    const int64_t n = w.context_end - w.context_begin;
    std::vector<double> ps(static_cast<std::size_t>(n)), pe(ps.size());
    double zs = 0, ze = 0;
    for (int64_t i = 0; i < n; ++i) {
      zs += ps[static_cast<std::size_t>(i)] = std::exp(out.heads.at("start_logits").data<float>()[w.context_begin + i]);
      ze += pe[static_cast<std::size_t>(i)] = std::exp(out.heads.at("end_logits").data<float>()[w.context_begin + i]);
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k2 = i; k2 < n && k2 - i < 3; ++k2) {
        const double score = ps[static_cast<std::size_t>(i)] / zs * pe[static_cast<std::size_t>(k2)] / ze;
        if (score > top) {
          top = score;
          top_window = k;
          top_answer = slice_code_points(
              context, context_tokens.offsets[static_cast<std::size_t>(w.context_offset + i)].start,
              context_tokens.offsets[static_cast<std::size_t>(w.context_offset + k2)].end);
        }
      }
  }
  ASSERT_NE(top_window, 0u) << "with the best span in the first window this would not test the windows";
  EXPECT_NEAR(j["score"].get<double>(), top, 1e-6);
  EXPECT_EQ(j["window"].get<std::size_t>(), top_window);
  EXPECT_EQ(j["answer"], top_answer);
  EXPECT_LE(j["end_token"].get<int64_t>() - j["start_token"].get<int64_t>(), 2);
}

// --top-k lists the best distinct spans over every window, best first; the
// first is the answer the line gives anyway.
TEST(CliText, QaListsTheTopAnswers) {
  const std::string dir = fixture_dir("roformer-tiny-qa");
  const std::string input = "printf 'who lives there\\tjohn lives in paris with mary and the cat sat on the mat\\n' | " +
                            cli_path() + " qa -m " + dir + " --max-length 16 --doc-stride 4 --max-answer-length 3 --no-align-to-words";
  const auto one = run_command(input);
  const auto five = run_command(input + " --top-k 5");
  ASSERT_EQ(one.status, 0) << one.output;
  ASSERT_EQ(five.status, 0) << five.output;
  const auto j1 = json_lines(one.output).at(0), j5 = json_lines(five.output).at(0);
  EXPECT_FALSE(j1.contains("answers"));
  const auto& answers = j5["answers"];
  ASSERT_EQ(answers.size(), 5u);
  for (const char* field : {"answer", "start", "end", "start_token", "end_token", "window"}) {
    EXPECT_EQ(answers[0][field], j1[field]) << field;
  }
  EXPECT_NEAR(answers[0]["score"].get<double>(), j1["score"].get<double>(), 1e-12);
  for (std::size_t a = 0; a < answers.size(); ++a) {
    EXPECT_LE(answers[a]["end_token"].get<int64_t>() - answers[a]["start_token"].get<int64_t>(), 2);
    if (a == 0) continue;
    EXPECT_LE(answers[a]["score"].get<double>(), answers[a - 1]["score"].get<double>());
    for (std::size_t b = 0; b < a; ++b)
      EXPECT_FALSE(answers[a]["start_token"] == answers[b]["start_token"] && answers[a]["end_token"] == answers[b]["end_token"])
          << "span listed twice";
  }
  EXPECT_NE(run_command(input + " --top-k 0 2>&1").status, 0);
}

// --allow-impossible ranks "no answer" ([CLS] as start and end, softmax over
// [CLS] and the context) among the spans, worked out from the library's logits.
TEST(CliText, QaMayAnswerNothing) {
  const std::string dir = fixture_dir("roformer-tiny-qa");
  const std::string question = "who lives there", context = "john lives in paris with mary";
  const auto r = run_command("printf '" + question + "\\t" + context + "\\n' | " + cli_path() + " qa -m " + dir +
                             " --allow-impossible --top-k 1000 --max-answer-length 3 --no-align-to-words");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = json_lines(r.output).at(0);
  const RoFormerModel model = RoFormerModel::from_pretrained(dir);
  const Tokenizer tok = Tokenizer::from_pretrained(dir);
  const Encoding e = tok.encode(question, std::string_view(context));
  const ModelOutput out = run_one(model, e);
  const auto begin = static_cast<int64_t>(std::find(e.input_ids.begin(), e.input_ids.end(), tok.sep_id()) - e.input_ids.begin()) + 1;
  const auto end = static_cast<int64_t>(e.input_ids.size()) - 1;
  const auto probs = [&](const char* head) {  // softmax over [CLS] and the context
    const float* l = out.heads.at(head).data<float>();
    std::vector<double> p{std::exp(double(l[0]))};
    for (int64_t i = begin; i < end; ++i) p.push_back(std::exp(double(l[i])));
    double z = 0;
    for (double v : p) z += v;
    for (double& v : p) v /= z;
    return p;
  };
  const auto ps = probs("start_logits"), pe = probs("end_logits");
  double best = 0;
  int64_t spans = 0;
  for (std::size_t i = 1; i < ps.size(); ++i)
    for (std::size_t k = i; k < ps.size() && k - i < 3; ++k, ++spans) best = std::max(best, ps[i] * pe[k]);
  const double none = ps[0] * pe[0];
  const auto& answers = j["answers"];
  ASSERT_EQ(static_cast<int64_t>(answers.size()), spans + 1) << "every span and no answer";
  int empty = 0;
  for (std::size_t a = 0; a < answers.size(); ++a) {
    if (answers[a]["answer"] == "") {
      ++empty;
      EXPECT_NEAR(answers[a]["score"].get<double>(), none, 1e-9);
    }
    if (a > 0) {
      EXPECT_LE(answers[a]["score"].get<double>(), answers[a - 1]["score"].get<double>());
    }
  }
  EXPECT_EQ(empty, 1);
  EXPECT_NEAR(answers[0]["score"].get<double>(), std::max(best, none), 1e-9);
  EXPECT_EQ(j["answer"] == "", none > best);
}

// By default an answer is widened to whole words: it never starts or ends
// inside a word cut into "##" pieces; the scores stay the model's.
TEST(CliText, QaAlignsAnswersToWords) {
  const std::string dir = fixture_dir("roformer-tiny-qa");
  const std::string context = "Zoë Smith was playing with Johnny in Paris";
  const std::string base = "printf 'who plays\\t" + context + "\\n' | " + cli_path() + " qa -m " + dir + " --top-k 1000";
  const auto aligned = run_command(base);
  const auto raw = run_command(base + " --no-align-to-words");
  ASSERT_EQ(aligned.status, 0) << aligned.output;
  ASSERT_EQ(raw.status, 0) << raw.output;
  const auto a = json_lines(aligned.output).at(0), r = json_lines(raw.output).at(0);
  const TokenizedText t = Tokenizer::from_pretrained(dir).tokenize_with_offsets(context);
  const auto piece = [&](int64_t i) {
    return i < static_cast<int64_t>(t.tokens.size()) && t.tokens[static_cast<std::size_t>(i)].rfind("##", 0) == 0;
  };
  bool inside = false;
  for (const auto& x : r["answers"]) inside = inside || piece(x["start_token"].get<int64_t>());
  ASSERT_TRUE(inside) << "some raw answer should start inside a word for this to test anything";
  for (const auto& x : a["answers"]) {
    EXPECT_FALSE(piece(x["start_token"].get<int64_t>())) << x.dump();
    EXPECT_FALSE(piece(x["end_token"].get<int64_t>() + 1)) << x.dump();
    EXPECT_EQ(x["answer"], slice_code_points(context, x["start"].get<int64_t>(), x["end"].get<int64_t>()));
  }
  EXPECT_LT(a["answers"].size(), r["answers"].size()) << "spans inside one word become one answer";
  // Widening happens before the cut to --top-k: the 10 best are 10 distinct
  // answers, the long list's first 10 (here the raw 10 best cover only 8 words).
  const auto ten = run_command("printf 'who plays\\t" + context + "\\n' | " + cli_path() + " qa -m " + dir + " --top-k 10");
  ASSERT_EQ(ten.status, 0) << ten.output;
  const auto t10 = json_lines(ten.output).at(0)["answers"];
  ASSERT_EQ(t10.size(), 10u);
  for (std::size_t k = 0; k < 10; ++k) EXPECT_EQ(t10[k], a["answers"][k]) << k;
  EXPECT_DOUBLE_EQ(a["score"].get<double>(), r["score"].get<double>());
}

TEST(CliText, GenerateMatchesTheLibraryAndIsSeeded) {
  const std::string dir = fixture_dir("roformer-tiny-causal");
  const auto greedy = run_command(cli_path() + " generate -m " + dir + " -n 6 --no-stop 'the cat'");
  ASSERT_EQ(greedy.status, 0) << greedy.output;
  Tokenizer tok = Tokenizer::from_pretrained(dir);
  RoFormerModel model = RoFormerModel::from_pretrained(dir);
  auto prompt = tok.encode("the cat").input_ids;
  prompt.pop_back();  // the closing [SEP]
  GenerateOptions opt;
  opt.max_new_tokens = 6;
  EXPECT_EQ(json_lines(greedy.output).at(0)["ids"].get<std::vector<int64_t>>(),
            generate(model, prompt, opt, ExecContext{1, best_isa()}));
  const std::string sample = cli_path() + " generate -m " + dir + " -n 8 --no-stop --sample --top-k 40 --seed 11 'the cat'";
  const auto a = run_command(sample), b = run_command(sample);
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
}

// Each choice scored on its own (a (1, 1, T) batch) gives the logits whose
// softmax `choose` prints; the choices have one length, so no padding differs.
TEST(CliText, ChooseScoresEveryChoiceAsTheLibraryDoes) {
  const std::string dir = fixture_dir("roformer-tiny-mc");
  const RoFormerModel model = RoFormerModel::from_pretrained(dir);
  const Tokenizer tok = Tokenizer::from_pretrained(dir);
  const std::string context = "the cat sat";
  const std::vector<std::string> choices{"on the mat", "at the door", "by the door"};
  std::vector<double> logits;
  for (const auto& c : choices) {
    const Encoding e = tok.encode(context, c);
    ASSERT_EQ(e.input_ids.size(), tok.encode(context, choices[0]).input_ids.size()) << c;
    const auto T = static_cast<int64_t>(e.input_ids.size());
    Tensor ids = Tensor::zeros({1, 1, T}, DType::I64), types = Tensor::zeros({1, 1, T}, DType::I64);
    std::copy(e.input_ids.begin(), e.input_ids.end(), ids.data<int64_t>());
    std::copy(e.token_type_ids.begin(), e.token_type_ids.end(), types.data<int64_t>());
    logits.push_back(model.forward(Batch{ids, {}, types}, {}, ExecContext{1, best_isa()}).heads.at("logits").data<float>()[0]);
  }
  const auto r = run_command("printf '" + context + "\\t" + choices[0] + "\\t" + choices[1] + "\\t" + choices[2] +
                             "\\n' | " + cli_path() + " choose -m " + dir);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = json_lines(r.output).at(0);
  EXPECT_EQ(j["choices"].get<std::vector<std::string>>(), choices);
  const double top = *std::max_element(logits.begin(), logits.end());
  double z = 0;
  for (double l : logits) z += std::exp(l - top);
  for (std::size_t c = 0; c < choices.size(); ++c)
    EXPECT_NEAR(j["scores"][c].get<double>(), std::exp(logits[c] - top) / z, 1e-5) << c;
  const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
  EXPECT_EQ(j["best"].get<int64_t>(), best);
  EXPECT_EQ(j["choice"], choices[static_cast<std::size_t>(best)]);
  const auto one = run_command(cli_path() + " choose -m " + dir + " 'no choices here' 2>&1");
  EXPECT_NE(one.status, 0);
  EXPECT_NE(one.output.find("context<TAB>choice"), std::string::npos) << one.output;
}

TEST(CliText, TokenizePrintsHfFields) {
  const auto r = run_command(cli_path() + " tokenize -m " + fixture_dir("roformer-tiny-mlm") + " 'hello world'");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = json_lines(r.output).at(0);
  Tokenizer tok = Tokenizer::from_pretrained(fixture_dir("roformer-tiny-mlm"));
  const Encoding e = tok.encode("hello world");
  EXPECT_EQ(j["input_ids"].get<std::vector<int64_t>>(), e.input_ids);
  EXPECT_EQ(j["tokens"].get<std::vector<std::string>>(), e.tokens);
  EXPECT_EQ(j["attention_mask"].get<std::vector<int64_t>>(), e.attention_mask);
}

TEST(CliText, BadInputsAreOneLineErrors) {
  const auto wrong_head = run_command(cli_path() + " classify -m " + fixture_dir("roformer-tiny-mlm") + " 'hi' 2>&1");
  EXPECT_NE(wrong_head.status, 0);
  EXPECT_NE(wrong_head.output.find("roformer: error:"), std::string::npos) << wrong_head.output;
  EXPECT_NE(wrong_head.output.find("fill-mask"), std::string::npos) << "names the command for this head: " << wrong_head.output;
  const auto bad_utf8 = run_command("printf 'ok\\n\\377\\376bad\\n' | " + cli_path() + " embed -m " +
                                    fixture_dir("roformer-tiny-mlm") + " 2>&1");
  EXPECT_NE(bad_utf8.status, 0);
  EXPECT_NE(bad_utf8.output.find("UTF-8"), std::string::npos) << bad_utf8.output;
  const auto empty = run_command("printf '' | " + cli_path() + " embed -m " + fixture_dir("roformer-tiny-mlm") + " 2>&1");
  EXPECT_NE(empty.status, 0);
  EXPECT_NE(empty.output.find("no input"), std::string::npos) << empty.output;
  const auto qa_no_tab = run_command(cli_path() + " qa -m " + fixture_dir("roformer-tiny-qa") + " 'no tab here' 2>&1");
  EXPECT_NE(qa_no_tab.status, 0);
}

}  // namespace
}  // namespace roformer::testing

#pragma once
// How a predicted answer is scored against the accepted ones: SQuAD v1.1's
// exact match and word F1, or CMRC 2018's (the Chinese reading-comprehension
// benchmark) exact match and longest-common-run F1.
#include <string>
#include <string_view>
#include <vector>

namespace roformer {

enum class QaScoring { Squad, Cmrc2018 };

// "squad" or "cmrc2018"; anything else throws Error naming both.
QaScoring parse_qa_scoring(std::string_view name);
const char* qa_scoring_name(QaScoring scoring);

// SQuAD's scoring: lower case, ASCII punctuation and the articles a / an /
// the removed, whitespace collapsed; F1 of the words two answers share. In
// Chinese each CJK ideograph is a word and CJK punctuation goes too, so
// "北京" and "北 京" are the same answer. Throws on invalid UTF-8.
std::string squad_normalize(std::string_view text);
double squad_f1(std::string_view prediction, std::string_view answer);

// CMRC 2018's official scoring (its cmrc2018_evaluate.py): the text lower-
// cased and stripped, the script's list of punctuation marks (ASCII - : _ *
// ^ / \ ~ ` + = and the fullwidth ones) removed; every character in
// U+4E00..U+9FA5 is a segment of its own, and the runs between them are split
// into words with NLTK's word_tokenize as the script does (its Penn Treebank
// rules: "don't" -> "do" "n't", "3.5" and "u.s." whole, quotes as `` and '').
// One difference: NLTK first cuts a run into sentences with its Punkt model,
// which is not reproduced, so a period ending a sentence inside a run stays
// on its word ("home." in "went home. then"); the run's last period is split.
std::vector<std::string> cmrc_segments(std::string_view text);
// F1 of the longest common run of segments (precision over the prediction's
// segments, recall over the answer's).
double cmrc_f1(std::string_view prediction, std::string_view answer);
// The texts equal once lower-cased, stripped and without the listed punctuation.
bool cmrc_exact_match(std::string_view prediction, std::string_view answer);

// The exact match (0 or 1) and F1 of a prediction against one answer.
double qa_exact_match(QaScoring scoring, std::string_view prediction, std::string_view answer);
double qa_f1(QaScoring scoring, std::string_view prediction, std::string_view answer);

}  // namespace roformer

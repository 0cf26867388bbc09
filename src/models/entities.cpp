#include "roformer/entities.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "roformer/error.h"

namespace roformer {

namespace {

// ("B" | "I", type): HF's get_tag, where a label without a prefix is a continuation.
std::pair<char, std::string_view> tag_of(std::string_view label) {
  if (label.starts_with("B-")) return {'B', label.substr(2)};
  if (label.starts_with("I-")) return {'I', label.substr(2)};
  return {'I', label};
}

// What the grouping walks over: a token, or with a word strategy a word.
struct Unit {
  std::string label;
  double score = 0;
  CharSpan span;
  bool special = false;
  int segment = 0;
  int64_t first_token = 0, last_token = 0;
};

Unit unit_of_token(const TokenLabel& t, int64_t index) {
  return {t.label, t.score, t.span, t.special, t.segment, index, index};
}

// Tokens [first, last] as one word, labelled by the strategy.
Unit unit_of_word(const std::vector<TokenLabel>& tokens, int64_t first, int64_t last, Aggregation aggregation,
                  const std::vector<std::string>& label_names) {
  const auto at = [&](int64_t i) -> const TokenLabel& { return tokens[static_cast<std::size_t>(i)]; };
  Unit u = unit_of_token(at(first), first);
  u.last_token = last;
  u.span.end = at(last).span.end;
  if (aggregation == Aggregation::Max) {
    int64_t best = first;
    for (int64_t i = first + 1; i <= last; ++i)
      if (at(i).score > at(best).score) best = i;
    u.label = at(best).label;
    u.score = at(best).score;
  } else if (aggregation == Aggregation::Average) {
    std::vector<double> mean(label_names.size(), 0.0);
    for (int64_t i = first; i <= last; ++i) {
      ROFORMER_CHECK(at(i).probs.size() == label_names.size(),
                     "entities: averaging needs every token's " + std::to_string(label_names.size()) + " probabilities");
      for (std::size_t c = 0; c < mean.size(); ++c) mean[c] += at(i).probs[c] / static_cast<double>(last - first + 1);
    }
    const auto best = static_cast<std::size_t>(std::max_element(mean.begin(), mean.end()) - mean.begin());
    u.label = label_names.at(best);
    u.score = mean[best];
  }
  return u;
}

std::vector<Unit> units_of(const std::vector<TokenLabel>& tokens, Aggregation aggregation,
                           const std::vector<std::string>& label_names) {
  std::vector<Unit> units;
  const auto n = static_cast<int64_t>(tokens.size());
  for (int64_t i = 0; i < n;) {
    const TokenLabel& t = tokens[static_cast<std::size_t>(i)];
    if (aggregation == Aggregation::Simple || t.special) {
      units.push_back(unit_of_token(t, i++));
      continue;
    }
    int64_t last = i;
    while (last + 1 < n) {
      const TokenLabel& next = tokens[static_cast<std::size_t>(last + 1)];
      if (!next.subword || next.special || next.segment != t.segment) break;
      ++last;
    }
    units.push_back(unit_of_word(tokens, i, last, aggregation, label_names));
    i = last + 1;
  }
  return units;
}

}  // namespace

Aggregation parse_aggregation(std::string_view name) {
  if (name == "simple") return Aggregation::Simple;
  if (name == "first") return Aggregation::First;
  if (name == "average") return Aggregation::Average;
  if (name == "max") return Aggregation::Max;
  throw Error("aggregation must be simple, first, average or max, not '" + std::string(name) + "'");
}

std::vector<Entity> group_entities(const std::vector<TokenLabel>& tokens, Aggregation aggregation,
                                   const std::vector<std::string>& label_names, const std::vector<std::string>& ignore) {
  const std::vector<Unit> units = units_of(tokens, aggregation, label_names);
  std::vector<Entity> out;
  std::vector<std::size_t> members;  // the open group's units
  const auto close = [&] {
    if (members.empty()) return;
    const Unit& first = units[members.front()];
    const Unit& last = units[members.back()];
    Entity e;
    e.group = std::string(tag_of(first.label).second);
    for (std::size_t m : members) e.score += units[m].score;
    e.score /= static_cast<double>(members.size());
    e.span = {first.span.start, last.span.end};
    e.first_token = first.first_token;
    e.last_token = last.last_token;
    e.segment = first.segment;
    members.clear();
    if (std::find(ignore.begin(), ignore.end(), e.group) == ignore.end()) out.push_back(std::move(e));
  };
  for (std::size_t i = 0; i < units.size(); ++i) {
    const Unit& u = units[i];
    if (u.special) {
      close();
      continue;
    }
    if (!members.empty()) {
      const Unit& previous = units[members.back()];
      const auto [bi, type] = tag_of(u.label);
      if (bi == 'B' || type != tag_of(previous.label).second || u.segment != previous.segment) close();
    }
    members.push_back(i);
  }
  close();
  return out;
}

}  // namespace roformer

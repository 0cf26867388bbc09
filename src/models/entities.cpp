#include "roformer/entities.h"

#include <algorithm>
#include <string_view>
#include <utility>

namespace roformer {

namespace {

// ("B" | "I", type): HF's get_tag, where a label without a prefix is a continuation.
std::pair<char, std::string_view> tag_of(std::string_view label) {
  if (label.starts_with("B-")) return {'B', label.substr(2)};
  if (label.starts_with("I-")) return {'I', label.substr(2)};
  return {'I', label};
}

}  // namespace

std::vector<Entity> group_entities(const std::vector<TokenLabel>& tokens, const std::vector<std::string>& ignore) {
  std::vector<Entity> out;
  std::vector<int64_t> members;  // the open group's tokens
  const auto close = [&] {
    if (members.empty()) return;
    const TokenLabel& first = tokens[static_cast<std::size_t>(members.front())];
    const TokenLabel& last = tokens[static_cast<std::size_t>(members.back())];
    Entity e;
    e.group = std::string(tag_of(first.label).second);
    for (int64_t m : members) e.score += tokens[static_cast<std::size_t>(m)].score;
    e.score /= static_cast<double>(members.size());
    e.span = {first.span.start, last.span.end};
    e.first_token = members.front();
    e.last_token = members.back();
    e.segment = first.segment;
    members.clear();
    if (std::find(ignore.begin(), ignore.end(), e.group) == ignore.end()) out.push_back(std::move(e));
  };
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const TokenLabel& t = tokens[i];
    if (t.special) {
      close();
      continue;
    }
    if (!members.empty()) {
      const TokenLabel& previous = tokens[static_cast<std::size_t>(members.back())];
      const auto [bi, type] = tag_of(t.label);
      if (bi == 'B' || type != tag_of(previous.label).second || t.segment != previous.segment) close();
    }
    members.push_back(static_cast<int64_t>(i));
  }
  close();
  return out;
}

}  // namespace roformer

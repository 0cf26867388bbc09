// WordPiece vocabulary learning: characters first, then greedy pair merges
// scored by likelihood (count(ab) / (count(a) count(b)), the WordPiece score)
// or by frequency (BPE). Incremental: each merge touches only the words that
// contain the pair, and a lazy max-heap holds the pair scores (an entry is
// stale when its pair's count or score has changed since it was pushed; every
// change pushes a fresh entry, so the best live entry is always there).
#include "roformer/wordpiece_trainer.h"

#include <algorithm>
#include <map>
#include <optional>
#include <unordered_map>

#include "roformer/error.h"
#include "roformer/text_corpus.h"
#include "train/atomic_file.h"
#include "train/wordpiece_words.h"

namespace roformer {
namespace {

using data::append_utf8;
using data::utf8_code_points;

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }
int32_t key_left(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t key_right(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

struct PairInfo {
  int64_t count = 0;
  std::vector<int32_t> words;  // words that contain (or once contained) the pair
  int64_t scored_at = -1;      // merge step of the last push (dedupes re-scoring)
};

struct HeapEntry {
  double score;
  int64_t count;
  uint64_t key;
};

// "a is worse than b" for std::push_heap's max-heap: lower score, then lower
// count, then the younger pair (higher ids).
bool worse(const HeapEntry& a, const HeapEntry& b) {
  if (a.score != b.score) return a.score < b.score;
  if (a.count != b.count) return a.count < b.count;
  return a.key > b.key;
}

class Merger {
 public:
  Merger(const WordPieceTrainerOptions& options, const std::vector<std::string>& specials)
      : options_(options) {
    for (const auto& s : specials) add_symbol(s);
  }

  // Sets up characters and words. Returns the number of word occurrences left
  // out for rare characters.
  int64_t load(const std::unordered_map<std::string, int64_t>& counts) {
    // Sorted words: nothing below depends on hash-map order.
    std::map<std::string, int64_t> sorted(counts.begin(), counts.end());
    std::map<char32_t, int64_t> chars;
    std::vector<std::vector<char32_t>> spelled;
    spelled.reserve(sorted.size());
    for (const auto& [word, count] : sorted) {
      spelled.push_back(utf8_code_points(word));
      for (char32_t cp : spelled.back()) chars[cp] += count;
    }
    std::vector<char32_t> alphabet;
    for (const auto& [cp, count] : chars) {
      if (count >= options_.min_char_count) alphabet.push_back(cp);
    }
    alphabet_ = static_cast<int64_t>(alphabet.size());
    const int64_t needed = static_cast<int64_t>(symbols_.size()) + 2 * alphabet_;
    ROFORMER_CHECK(options_.vocab_size >= needed, "WordPiece trainer: vocab size " + std::to_string(options_.vocab_size) +
                                             " is too small: the special tokens and " + std::to_string(alphabet_) +
                                             " characters (each also as ##c) need " + std::to_string(needed));
    std::map<char32_t, int32_t> first, rest;
    for (char32_t cp : alphabet) {
      std::string s;
      append_utf8(s, cp);
      first[cp] = add_symbol(s);
    }
    for (char32_t cp : alphabet) {
      std::string s = "##";
      append_utf8(s, cp);
      rest[cp] = add_symbol(s);
    }
    counts_.assign(symbols_.size(), 0);
    int64_t dropped = 0;
    std::size_t i = 0;
    for (const auto& [word, count] : sorted) {
      const auto& cps = spelled[i++];
      Word w;
      w.count = count;
      bool ok = true;
      for (std::size_t k = 0; k < cps.size() && ok; ++k) {
        const auto& table = k == 0 ? first : rest;
        const auto it = table.find(cps[k]);
        ok = it != table.end();
        if (ok) w.symbols.push_back(it->second);
      }
      if (!ok) {
        dropped += count;
        continue;
      }
      for (int32_t s : w.symbols) counts_[s] += count;
      words_.push_back(std::move(w));
    }
    for (std::size_t wi = 0; wi < words_.size(); ++wi) {
      const Word& w = words_[wi];
      for (std::size_t k = 0; k + 1 < w.symbols.size(); ++k) {
        add_pair(pair_key(w.symbols[k], w.symbols[k + 1]), w.count, static_cast<int32_t>(wi));
      }
    }
    rebuild_heap();
    return dropped;
  }

  // Merges until the vocabulary reaches the asked size or no pair qualifies.
  void run() {
    while (static_cast<int64_t>(vocab_.size()) < options_.vocab_size) {
      const auto best = pop_best();
      if (!best) break;
      merge(*best);
      ++merges_;
      if (heap_.size() > 2 * live_pairs_ + 65536) rebuild_heap();
    }
  }

  const std::vector<std::string>& vocab() const { return vocab_; }
  int64_t alphabet() const { return alphabet_; }
  int64_t merges() const { return merges_; }

 private:
  // The id of piece `s`, a new one (appended to the vocabulary) if unseen.
  int32_t add_symbol(const std::string& s) {
    const auto it = ids_.find(s);
    if (it != ids_.end()) return it->second;
    const auto id = static_cast<int32_t>(symbols_.size());
    symbols_.push_back(s);
    ids_.emplace(s, id);
    counts_.push_back(0);
    pairs_of_.emplace_back();
    vocab_.push_back(s);
    return id;
  }

  double score(const PairInfo& p, uint64_t key) const {
    if (options_.score == WordPieceScore::Frequency) return static_cast<double>(p.count);
    return static_cast<double>(p.count) /
           (static_cast<double>(counts_[key_left(key)]) * static_cast<double>(counts_[key_right(key)]));
  }

  // Adds `delta` occurrences of a pair (negative removes); remembers `word` for
  // a pair that gains occurrences in it.
  void add_pair(uint64_t key, int64_t delta, int32_t word) {
    auto [it, created] = pairs_.try_emplace(key);
    PairInfo& p = it->second;
    if (created) {
      pairs_of_[key_left(key)].push_back(key);
      if (key_left(key) != key_right(key)) pairs_of_[key_right(key)].push_back(key);
    }
    const bool was_live = p.count > 0;
    p.count += delta;
    if (delta > 0 && (p.words.empty() || p.words.back() != word)) p.words.push_back(word);
    if (!was_live && p.count > 0) ++live_pairs_;
    if (was_live && p.count <= 0) {
      --live_pairs_;
      p.words = {};  // never needed again unless the pair reappears, which re-adds its words
    }
    touched_.push_back(key);
  }

  void push(uint64_t key, const PairInfo& p) {
    if (p.count < options_.min_pair_count) return;
    heap_.push_back({score(p, key), p.count, key});
    std::push_heap(heap_.begin(), heap_.end(), worse);
  }

  void rebuild_heap() {
    heap_.clear();
    for (const auto& [key, p] : pairs_) {
      if (p.count >= options_.min_pair_count) heap_.push_back({score(p, key), p.count, key});
    }
    std::make_heap(heap_.begin(), heap_.end(), worse);
  }

  std::optional<uint64_t> pop_best() {
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), worse);
      const HeapEntry e = heap_.back();
      heap_.pop_back();
      const auto it = pairs_.find(e.key);
      if (it == pairs_.end() || it->second.count != e.count || e.count < options_.min_pair_count) continue;
      if (score(it->second, e.key) != e.score) continue;
      return e.key;
    }
    return std::nullopt;
  }

  void merge(uint64_t key) {
    const int32_t a = key_left(key), b = key_right(key);
    // b sits after another symbol, so it is a continuation "##...": drop its marker.
    const int32_t m = add_symbol(symbols_[a] + symbols_[b].substr(2));
    touched_.clear();
    const std::vector<int32_t> words = pairs_[key].words;  // copied: add_pair may clear it
    ++step_;
    if (word_stamp_.size() < words_.size()) word_stamp_.resize(words_.size(), -1);
    std::vector<int32_t> merged;
    std::vector<std::pair<uint64_t, int64_t>> deltas;
    for (int32_t wi : words) {
      if (word_stamp_[wi] == step_) continue;
      word_stamp_[wi] = step_;
      Word& w = words_[wi];
      merged.clear();
      int64_t times = 0;
      for (std::size_t k = 0; k < w.symbols.size(); ++k) {
        if (k + 1 < w.symbols.size() && w.symbols[k] == a && w.symbols[k + 1] == b) {
          merged.push_back(m);
          ++times;
          ++k;
        } else {
          merged.push_back(w.symbols[k]);
        }
      }
      if (times == 0) continue;
      // Net pair changes of this word (pairs away from the merge cancel out).
      deltas.clear();
      for (std::size_t k = 0; k + 1 < w.symbols.size(); ++k) deltas.emplace_back(pair_key(w.symbols[k], w.symbols[k + 1]), -w.count);
      for (std::size_t k = 0; k + 1 < merged.size(); ++k) deltas.emplace_back(pair_key(merged[k], merged[k + 1]), w.count);
      std::sort(deltas.begin(), deltas.end());
      for (std::size_t k = 0; k < deltas.size();) {
        int64_t sum = 0;
        std::size_t j = k;
        for (; j < deltas.size() && deltas[j].first == deltas[k].first; ++j) sum += deltas[j].second;
        if (sum != 0) add_pair(deltas[k].first, sum, wi);
        k = j;
      }
      counts_[a] -= times * w.count;
      counts_[b] -= times * w.count;
      counts_[m] += times * w.count;
      w.symbols.swap(merged);
    }
    // Re-score what changed: the pairs whose counts moved, and (likelihood) every
    // pair of a and b, whose symbol counts fell.
    auto rescore = [&](uint64_t k) {
      auto it = pairs_.find(k);
      if (it == pairs_.end() || it->second.scored_at == step_) return;
      it->second.scored_at = step_;
      push(k, it->second);
    };
    for (uint64_t k : touched_) rescore(k);
    if (options_.score == WordPieceScore::Likelihood) {
      for (int32_t s : {a, b}) {
        for (uint64_t k : pairs_of_[s]) rescore(k);
      }
    }
  }

  const WordPieceTrainerOptions& options_;
  std::vector<std::string> symbols_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<int64_t> counts_;                 // occurrences of each symbol in the current segmentation
  std::vector<std::vector<uint64_t>> pairs_of_;  // pairs a symbol takes part in (some may be dead)
  std::vector<std::string> vocab_;
  std::vector<Word> words_;
  std::unordered_map<uint64_t, PairInfo> pairs_;
  std::vector<HeapEntry> heap_;
  std::vector<uint64_t> touched_;
  std::vector<int64_t> word_stamp_;
  std::size_t live_pairs_ = 0;
  int64_t step_ = 0;
  int64_t alphabet_ = 0;
  int64_t merges_ = 0;
};

}  // namespace

struct WordPieceTrainer::Impl {
  explicit Impl(WordPieceTrainerOptions o) : options(std::move(o)), counter(options.tokenizer) {}
  WordPieceTrainerOptions options;
  data::WordCounter counter;
  WordPieceTrainerStats stats;
};

WordPieceTrainer::WordPieceTrainer(WordPieceTrainerOptions options) {
  ROFORMER_CHECK(options.vocab_size > 0, "WordPiece trainer: vocab size must be positive");
  ROFORMER_CHECK(options.vocab_size <= (int64_t{1} << 30), "WordPiece trainer: vocab size is unreasonably large");
  ROFORMER_CHECK(options.min_pair_count >= 1 && options.min_char_count >= 1,
        "WordPiece trainer: min_pair_count and min_char_count must be at least 1");
  impl_ = std::make_unique<Impl>(std::move(options));
}
WordPieceTrainer::~WordPieceTrainer() = default;
WordPieceTrainer::WordPieceTrainer(WordPieceTrainer&&) noexcept = default;
WordPieceTrainer& WordPieceTrainer::operator=(WordPieceTrainer&&) noexcept = default;

void WordPieceTrainer::add_text(std::string_view text) { impl_->counter.add_text(text); }

void WordPieceTrainer::add_file(const std::string& path) {
  TextCorpusReader reader(path);
  std::vector<std::string> paragraphs;
  while (reader.next(paragraphs)) {
    for (std::size_t i = 0; i < paragraphs.size(); ++i) {
      try {
        add_text(paragraphs[i]);
      } catch (const Error& e) {
        throw Error(path + ":" + std::to_string(reader.document_line() + static_cast<int64_t>(i)) + ": " + e.what());
      }
    }
  }
}

std::vector<std::string> WordPieceTrainer::train() {
  const auto& counter = impl_->counter;
  Merger merger(impl_->options, counter.special_tokens());
  const int64_t dropped = merger.load(counter.counts());
  merger.run();
  auto& s = impl_->stats;
  s.words = counter.words();
  s.distinct_words = static_cast<int64_t>(counter.counts().size());
  s.skipped_words = counter.skipped() + dropped;
  s.alphabet = merger.alphabet();
  s.merges = merger.merges();
  s.vocab_size = static_cast<int64_t>(merger.vocab().size());
  return merger.vocab();
}

const WordPieceTrainerStats& WordPieceTrainer::stats() const { return impl_->stats; }

std::string vocab_text(const std::vector<std::string>& tokens) {
  std::string out;
  for (const auto& t : tokens) {
    ROFORMER_CHECK(!t.empty() && t.find_first_of("\r\n") == std::string::npos,
          "vocab: token '" + t + "' cannot be written as one line");
    out += t;
    out += '\n';
  }
  return out;
}

void write_vocab_file(const std::string& path, const std::vector<std::string>& tokens) {
  data::write_file_atomically(path, vocab_text(tokens));
}

}  // namespace roformer

// jieba 0.42.1's dictionary and its cut(HMM=False), reproduced step by step:
// gen_pfdict, get_DAG, calc, __cut_DAG_NO_HMM and the block splitting of cut().
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "tokenizer/text_file.h"
#include "tokenizer/unicode_text.h"

namespace roformer {

namespace {

constexpr std::size_t kMaxDictBytes = std::size_t{1} << 30;

// Python's bytes.strip(): ASCII whitespace.
bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view strip_ascii(std::string_view s) {
  while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_ascii_alnum(char32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// re_han_default = [\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]
bool is_han_default(char32_t c) {
  if (c >= 0x4E00 && c <= 0x9FD5) return true;
  if (is_ascii_alnum(c)) return true;
  switch (c) {
    case '+': case '#': case '&': case '.': case '_': case '%': case '-':
      return true;
    default:
      return false;
  }
}

// Decodes the code point at s[i] (valid UTF-8) and its length.
char32_t next_char(std::string_view s, std::size_t i, std::size_t& len) {
  const auto b = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k])); };
  const char32_t c0 = b(0);
  if (c0 < 0x80) {
    len = 1;
    return c0;
  }
  if (c0 < 0xE0) {
    len = 2;
    return ((c0 & 0x1F) << 6) | (b(1) & 0x3F);
  }
  if (c0 < 0xF0) {
    len = 3;
    return ((c0 & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  }
  len = 4;
  return ((c0 & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
}

// Keys are short UTF-8 words; mix 8 bytes at a time.
uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x243F6A8885A308D3ULL ^ s.size();
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, s.data() + i, 8);
    h = (h ^ chunk) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  for (std::size_t k = 0; i + k < s.size(); ++k) tail |= uint64_t{static_cast<unsigned char>(s[i + k])} << (8 * k);
  h = (h ^ tail) * 0x9E3779B97F4A7C15ULL;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 32;
  return h;
}

// A slot's tag: 32 bits of its key's hash (the ones the index does not
// use first), never 0, which marks an empty slot.
uint32_t tag_of(uint64_t hash) { return static_cast<uint32_t>(hash >> 32) | 1u; }

struct CacheEntry {
  std::weak_ptr<const JiebaDictionary> dict;
  uintmax_t size = 0;
  int64_t mtime_ns = 0;
};

}  // namespace

// ---------------------------------------------------------------- dictionary

std::string default_jieba_dict_path() {
  if (const char* env = std::getenv("ROFORMER_JIEBA_DICT"); env != nullptr && *env != '\0') return env;
  return "/usr/lib/python3/dist-packages/jieba/dict.txt";  // Debian's python3-jieba
}

std::shared_ptr<const JiebaDictionary> JiebaDictionary::from_string(std::string text, const std::string& source) {
  std::shared_ptr<JiebaDictionary> d(new JiebaDictionary());
  d->source_ = source;
  d->text_ = std::move(text);
  d->parse();
  return d;
}

std::shared_ptr<const JiebaDictionary> JiebaDictionary::load(const std::string& path) {
  static std::mutex mutex;
  static std::map<std::string, CacheEntry> cache;

  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) key = path;
  // Size and modification time let an edited file be read again.
  struct stat st {};
  uintmax_t size = 0;
  int64_t mtime_ns = 0;
  if (::stat(key.c_str(), &st) == 0) {
    size = static_cast<uintmax_t>(st.st_size);
    mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  }

  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end() && it->second.size == size && it->second.mtime_ns == mtime_ns) {
    if (auto d = it->second.dict.lock()) return d;
  }
  auto d = from_string(tok::read_file(path, kMaxDictBytes, "jieba dictionary"), "jieba dictionary '" + path + "'");
  cache[key] = CacheEntry{d, size, mtime_ns};
  return d;
}

void JiebaDictionary::parse() {
  const std::string_view all = text_;
  check(all.size() < (std::size_t{1} << 32), source_ + ": larger than 4 GiB");
  // Two passes: the lines are read and checked in order first, then the
  // table is built in bulk, so it can be sized once and each slot fetched
  // ahead of its insertion (a table of ~500k entries lives outside the
  // caches, and inserting line by line waited on a miss per key).
  std::vector<Entry> words;
  std::size_t start = 0;
  int64_t lineno = 0;
  // Binary-mode lines: split at \n only; strip() then removes a trailing \r.
  while (start < all.size()) {
    ++lineno;
    std::size_t end = all.find('\n', start);
    if (end == std::string_view::npos) end = all.size();
    const std::string_view line = strip_ascii(all.substr(start, end - start));
    start = end + 1;
    const auto fail = [&](const std::string& why) {
      throw Error(source_ + ": invalid entry at line " + std::to_string(lineno) + ": " + why);
    };
    if (const std::size_t bad = tok::find_invalid_utf8(line); bad != std::string_view::npos) {
      fail("invalid UTF-8 at byte " + std::to_string(bad) + " of the line");
    }
    // line.split(' ')[:2] must give a word and a frequency; later fields (the tag) are ignored.
    const std::size_t sp = line.find(' ');
    if (line.empty() || sp == std::string_view::npos) fail("expected 'word frequency [tag]'");
    const std::string_view word = line.substr(0, sp);
    std::string_view freq_text = line.substr(sp + 1);
    freq_text = freq_text.substr(0, freq_text.find(' '));
    freq_text = strip_ascii(freq_text);  // int() ignores surrounding whitespace
    if (!freq_text.empty() && freq_text.front() == '+') freq_text.remove_prefix(1);
    int64_t freq = 0;
    const auto [ptr, err] = std::from_chars(freq_text.data(), freq_text.data() + freq_text.size(), freq);
    if (freq_text.empty() || err != std::errc() || ptr != freq_text.data() + freq_text.size()) {
      fail("frequency '" + std::string(freq_text) + "' is not a non-negative integer below 2^63");
    }
    if (freq < 0) fail("negative frequency");
    if (freq > INT64_MAX - total_) fail("total frequency overflows 64 bits");
    total_ += freq;
    words.push_back(Entry{static_cast<uint32_t>(word.data() - all.data()), static_cast<uint32_t>(word.size()), freq});
  }
  if (words.empty()) throw Error(source_ + ": empty dictionary");
  // jieba takes log(total); a zero total would fail there.
  if (total_ <= 0) throw Error(source_ + ": the frequencies sum to 0");

  // Room for the words at most half full; the prefixes that are not words
  // themselves (~150k of jieba's ~500k entries) mostly fit the slack.
  const std::size_t size = std::bit_ceil(std::max<std::size_t>(16, 2 * words.size() + 1));
  tags_.assign(size, 0);
  slots_.assign(size, Entry{});
  // Python's gen_pfdict sets lfreq[word] = freq line by line (a later line
  // wins) and gives every proper prefix (by character) frequency 0 unless
  // present. All words first, then the prefixes if absent, ends the same.
  std::size_t w = 0;
  put_stream([&](Entry& e) { return w < words.size() ? (e = words[w++], true) : false; }, /*overwrite=*/true);
  w = 0;
  uint32_t cut = 1;  // the next prefix of words[w] ends at byte cut
  put_stream(
      [&](Entry& e) {
        for (; w < words.size(); ++w, cut = 1) {
          const Entry& word = words[w];
          while (cut < word.length && (static_cast<unsigned char>(all[word.offset + cut]) & 0xC0) == 0x80) ++cut;
          if (cut < word.length) {
            e = Entry{word.offset, cut++, 0};
            return true;
          }
        }
        return false;
      },
      /*overwrite=*/false);
}

template <class Next>
void JiebaDictionary::put_stream(Next next, bool overwrite) {
  // A ring of the next kAhead keys, whose slots are requested as they are
  // produced: the table is larger than the caches, and inserting one key at
  // a time waited on a miss for each.
  constexpr std::size_t kAhead = 16;
  std::array<Entry, kAhead> keys;
  std::array<uint64_t, kAhead> hashes;
  const std::string_view all = text_;
  const auto word = [&](const Entry& e) { return all.substr(e.offset, e.length); };
  std::size_t produced = 0;
  const auto produce = [&] {
    Entry& e = keys[produced % kAhead];
    if (!next(e)) return false;
    const uint64_t h = hash_bytes(word(e));
    hashes[produced % kAhead] = h;
    const std::size_t at = static_cast<std::size_t>(h) & (tags_.size() - 1);
    __builtin_prefetch(&tags_[at]);
    __builtin_prefetch(&slots_[at]);  // read when the key is there already (most prefixes)
    ++produced;
    return true;
  };
  while (produced < kAhead && produce()) {
  }
  for (std::size_t i = 0; i < produced; ++i) {
    const Entry e = keys[i % kAhead];
    const uint64_t h = hashes[i % kAhead];
    produce();  // into the place just read
    put(word(e), h, e.freq, overwrite);
  }
}

std::size_t JiebaDictionary::find_slot(std::string_view word, uint64_t hash) const {
  // Linear probing in a power-of-two table kept at most half full. The tags
  // (32 hash bits, 0 for an empty slot) sit apart from the slots, so a probe
  // reads 4 bytes and the slot and the text only on a likely match.
  const std::size_t mask = tags_.size() - 1;
  const uint32_t tag = tag_of(hash);
  for (std::size_t i = static_cast<std::size_t>(hash) & mask;; i = (i + 1) & mask) {
    if (tags_[i] == 0) return i;
    if (tags_[i] != tag) continue;
    const Entry& s = slots_[i];
    if (s.length == word.size() && std::memcmp(text_.data() + s.offset, word.data(), word.size()) == 0) return i;
  }
}

void JiebaDictionary::grow() {
  std::vector<Entry> old_slots(slots_.size() * 2);
  std::vector<uint32_t> old_tags(tags_.size() * 2, 0);
  old_slots.swap(slots_);
  old_tags.swap(tags_);
  const std::size_t mask = tags_.size() - 1;
  for (std::size_t j = 0; j < old_tags.size(); ++j) {
    if (old_tags[j] == 0) continue;
    const Entry& s = old_slots[j];
    const uint64_t h = hash_bytes(std::string_view(text_).substr(s.offset, s.length));
    std::size_t i = static_cast<std::size_t>(h) & mask;
    while (tags_[i] != 0) i = (i + 1) & mask;
    tags_[i] = old_tags[j];
    slots_[i] = s;
  }
}

void JiebaDictionary::put(std::string_view word, uint64_t hash, int64_t freq, bool overwrite) {
  const std::size_t i = find_slot(word, hash);
  if (tags_[i] != 0) {
    if (overwrite) slots_[i].freq = freq;
    return;
  }
  // `word` is a view into text_, so its offset identifies it.
  tags_[i] = tag_of(hash);
  slots_[i] = Entry{static_cast<uint32_t>(word.data() - text_.data()), static_cast<uint32_t>(word.size()), freq};
  if (++count_ * 2 > tags_.size()) grow();
}

void JiebaDictionary::prefetch(std::string_view word) const {
  if (tags_.empty()) return;
  const std::size_t at = static_cast<std::size_t>(hash_bytes(word)) & (tags_.size() - 1);
  __builtin_prefetch(&tags_[at]);
  __builtin_prefetch(&slots_[at]);
}

std::optional<int64_t> JiebaDictionary::frequency(std::string_view word) const {
  if (word.empty() || tags_.empty()) return std::nullopt;
  const std::size_t i = find_slot(word, hash_bytes(word));
  if (tags_[i] == 0) return std::nullopt;
  return slots_[i].freq;
}

// ---------------------------------------------------------------- segmenter

JiebaSegmenter::JiebaSegmenter(std::shared_ptr<const JiebaDictionary> dict) : dict_(std::move(dict)) {
  check(dict_ != nullptr, "JiebaSegmenter: no dictionary");
}

std::vector<std::string> JiebaSegmenter::cut(std::string_view text) const {
  if (const std::size_t bad = tok::find_invalid_utf8(text); bad != std::string_view::npos) {
    throw Error("jieba input: invalid UTF-8 at byte " + std::to_string(bad));
  }
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t len = 0;
    const char32_t c = next_char(text, i, len);
    if (is_han_default(c)) {
      // A maximal run of re_han_default characters is one block for the DAG.
      std::size_t j = i + len;
      while (j < text.size()) {
        std::size_t l2 = 0;
        if (!is_han_default(next_char(text, j, l2))) break;
        j += l2;
      }
      cut_block(text.substr(i, j - i), out);
      i = j;
      continue;
    }
    // Other text: re_skip "(\r\n|\s)" splits it, and cut() yields every piece
    // one character at a time except "\r\n", which stays whole.
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') len = 2;
    out.emplace_back(text.substr(i, len));
    i += len;
  }
  return out;
}

void JiebaSegmenter::cut_block(std::string_view block, std::vector<std::string>& out) const {
  // The DAG's arrays, one set per thread: blocks are short (a run between
  // punctuation), and allocating five arrays for each cost more than its
  // arithmetic.
  struct Edge {
    std::size_t end;
    double log_freq;
  };
  thread_local std::vector<std::size_t> off, first, best_end;
  thread_local std::vector<Edge> edges;
  thread_local std::vector<double> score;

  // Byte offset of every character, plus the end.
  off.clear();
  for (std::size_t i = 0; i < block.size(); ++i) {
    if ((static_cast<unsigned char>(block[i]) & 0xC0) != 0x80) off.push_back(i);
  }
  const std::size_t n = off.size();
  off.push_back(block.size());
  const auto piece = [&](std::size_t from, std::size_t to) { return block.substr(off[from], off[to] - off[from]); };

  // get_DAG: for each start k, the ends i of the dictionary words sentence[k:i+1]
  // with a non-zero frequency (or just k when there is none), and log(freq or 1).
  edges.clear();
  first.assign(n + 1, 0);
  // The table is larger than the caches and each lookup waits on it: the
  // first two lookups of the start kAhead characters on are requested early.
  constexpr std::size_t kAhead = 4;
  for (std::size_t k = 0; k < n; ++k) {
    if (const std::size_t a = k + kAhead; a < n) {
      dict_->prefetch(piece(a, a + 1));
      if (a + 1 < n) dict_->prefetch(piece(a, a + 2));
    }
    first[k] = edges.size();
    for (std::size_t i = k; i < n; ++i) {
      const auto f = dict_->frequency(piece(k, i + 1));
      if (!f) break;  // not even a prefix: no longer word can start here
      if (*f > 0) edges.push_back({i, std::log(static_cast<double>(*f))});
    }
    if (edges.size() == first[k]) edges.push_back({k, 0.0});  // log(1)
  }
  first[n] = edges.size();

  // calc: route[idx] = max over edges of (log(freq) - log(total) + route[end + 1], end),
  // the tuple max of Python, so an equal score goes to the larger end.
  const double log_total = std::log(static_cast<double>(dict_->total()));
  score.assign(n + 1, 0.0);
  best_end.assign(n + 1, 0);
  for (std::size_t idx = n; idx-- > 0;) {
    bool have = false;
    for (std::size_t e = first[idx]; e < first[idx + 1]; ++e) {
      const double s = edges[e].log_freq - log_total + score[edges[e].end + 1];
      if (!have || s >= score[idx]) {  // edges ascend by end, so >= prefers the larger end
        score[idx] = s;
        best_end[idx] = edges[e].end;
        have = true;
      }
    }
  }

  // __cut_DAG_NO_HMM: single ASCII letters/digits are glued into one word.
  std::string eng;
  std::size_t x = 0;
  while (x < n) {
    const std::size_t y = best_end[x] + 1;
    const std::string_view word = piece(x, y);
    if (y - x == 1 && word.size() == 1 && is_ascii_alnum(static_cast<unsigned char>(word[0]))) {
      eng.append(word);
    } else {
      if (!eng.empty()) {
        out.push_back(std::move(eng));
        eng.clear();
      }
      out.emplace_back(word);
    }
    x = y;
  }
  if (!eng.empty()) out.push_back(std::move(eng));
}

}  // namespace roformer

// Tokenizer throughput: every line of a text file encoded as BERT's tokenizer
// encodes it ([CLS] text [SEP], input ids), on the vocabulary of a vocab.txt.
// bench/hf_tokenize.js runs HF's Rust tokenizers (npm `tokenizers`) on the
// same vocabulary and lines; scripts/bench_tokenize.sh runs both side by side
// and writes docs/bench_tokenize.md.
//
//   bench_tokenize --vocab FILE --text FILE [--threads N] [--offsets] [--cased] [--jieba]
//                  [--min-seconds S] [--min-reps N] [--json]
//
// Each timed pass encodes every line once through Tokenizer::encode_batch;
// the ids of a pass are summed into a checksum that HF's side computes the
// same way, so the two are seen to produce the same ids.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_common.h"
#include "roformer/error.h"
#include "roformer/tokenizer.h"

namespace {

using namespace roformer;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string vocab, text;
  int threads = 1, min_reps = 5;
  double min_seconds = 2.0;
  bool offsets = false, cased = false, jieba = false, json = false;
};

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("Times BERT-style encoding of every line of a text file: [CLS] text [SEP] to input ids.",
               "bench_tokenize");
  app.add_option("--vocab", o.vocab, "vocab.txt of the WordPiece vocabulary")->required();
  app.add_option("--text", o.text, "UTF-8 text, one input a line (empty lines skipped)")->required();
  app.add_option("--threads", o.threads, "threads")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--min-reps", o.min_reps, "timed passes at least")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--min-seconds", o.min_seconds, "and for at least this long")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_flag("--offsets", o.offsets, "also each token's character span (HF's offset_mapping)");
  app.add_flag("--cased", o.cased, "keep case and accents (BERT cased); default: lower case, accents stripped");
  app.add_flag("--jieba", o.jieba, "segment words with jieba first, as RoFormerTokenizer does (Debian's dict.txt)");
  app.add_flag("--json", o.json, "print one JSON object instead of text");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return o;
}

int run(const Options& o) {
  const std::vector<std::string> lines = bench::read_text_lines(o.text);
  TokenizerOptions options;
  options.do_lower_case = !o.cased;
  options.use_jieba = o.jieba;
  const Tokenizer tokenizer(Vocab::from_file(o.vocab), options);
  uint64_t bytes = 0;
  for (const auto& l : lines) bytes += l.size();

  int64_t tokens = 0;
  uint64_t checksum = 0;
  const auto pass = [&] {
    const auto encodings = tokenizer.encode_batch(lines, {}, o.threads, Truncation::None, std::nullopt, o.offsets);
    tokens = 0;
    checksum = 0;
    for (const Encoding& e : encodings) {
      tokens += static_cast<int64_t>(e.input_ids.size());
      for (int64_t id : e.input_ids) checksum += static_cast<uint64_t>(id);
    }
  };
  pass();  // warm-up
  std::vector<double> seconds;
  const auto start = Clock::now();
  while (static_cast<int>(seconds.size()) < o.min_reps ||
         std::chrono::duration<double>(Clock::now() - start).count() < o.min_seconds) {
    const auto t0 = Clock::now();
    pass();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2], best = seconds.front();
  const double mb_s = static_cast<double>(bytes) / median / 1e6;
  if (o.json) {
    std::printf(
        "{\"impl\": \"roformer.cpp\", \"threads\": %d, \"offsets\": %s, \"lines\": %zu, \"bytes\": %llu, "
        "\"tokens\": %lld, \"checksum\": %llu, \"reps\": %zu, \"median_s\": %.6f, \"best_s\": %.6f, \"mb_per_s\": %.3f, "
        "\"tokens_per_s\": %.1f}\n",
        o.threads, o.offsets ? "true" : "false", lines.size(), static_cast<unsigned long long>(bytes),
        static_cast<long long>(tokens), static_cast<unsigned long long>(checksum), seconds.size(), median, best, mb_s,
        static_cast<double>(tokens) / median);
  } else {
    std::printf("roformer.cpp  %zu lines, %.2f MB, %d thread(s)%s: median %.4f s over %zu passes -> %.2f MB/s, "
                "%.0f tokens/s (%lld tokens, id sum %llu)\n",
                lines.size(), static_cast<double>(bytes) / 1e6, o.threads, o.offsets ? ", with offsets" : "", median,
                seconds.size(), mb_s, static_cast<double>(tokens) / median, static_cast<long long>(tokens),
                static_cast<unsigned long long>(checksum));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenize: %s\n", e.what());
    return 1;
  }
}

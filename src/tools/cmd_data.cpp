// `roformer data`: learn a WordPiece vocabulary, encode a corpus into an .rfds
// file, and describe one.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "roformer/dataset.h"
#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "roformer/wordpiece_trainer.h"
#include "tools/commands.h"

namespace roformer::cli {

void register_data(CLI::App& app);

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A vocab.txt file, or a checkpoint directory holding one (with its tokenizer settings).
struct LoadedTokenizer {
  Tokenizer tokenizer;
  std::string vocab_path;
};

LoadedTokenizer load_tokenizer(const std::string& path, bool cased) {
  if (std::filesystem::is_directory(path)) {
    return {Tokenizer::from_pretrained(path), path + "/vocab.txt"};
  }
  TokenizerOptions o;
  o.do_lower_case = !cased;
  return {Tokenizer(Vocab::from_file(path), o), path};
}

void register_data_vocab(CLI::App& data) {
  struct Options {
    std::vector<std::string> corpora;
    int64_t size = 8000;
    std::string out = "vocab.txt";
    bool cased = false;
    std::string score = "frequency";
    int64_t min_pair_count = 2;
    int64_t min_char_count = 1;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = data.add_subcommand("vocab", "Learn a WordPiece vocab.txt from text files");
  cmd->add_option("--corpus,-c", opt->corpora, "text file(s): one paragraph a line")->required()->check(
      CLI::ExistingFile);
  cmd->add_option("--size,-n", opt->size, "vocabulary size, special tokens included")->capture_default_str();
  cmd->add_option("--out,-o", opt->out, "where to write vocab.txt")->capture_default_str();
  cmd->add_flag("--cased", opt->cased, "keep case and accents (default: lowercase like bert-base-uncased)");
  cmd->add_option("--score", opt->score, "merge score: frequency (BPE-style) or likelihood (count(ab)/count(a)count(b))")
      ->capture_default_str();
  cmd->add_option("--min-pair-count", opt->min_pair_count, "never merge rarer pairs")->capture_default_str();
  cmd->add_option("--min-char-count", opt->min_char_count, "leave out rarer characters")->capture_default_str();
  cmd->callback([opt] {
    WordPieceTrainerOptions o;
    o.vocab_size = opt->size;
    o.tokenizer.do_lower_case = !opt->cased;
    check(opt->score == "frequency" || opt->score == "likelihood",
          "--score: expected frequency or likelihood, got '" + opt->score + "'");
    o.score = opt->score == "frequency" ? WordPieceScore::Frequency : WordPieceScore::Likelihood;
    o.min_pair_count = opt->min_pair_count;
    o.min_char_count = opt->min_char_count;
    const auto start = std::chrono::steady_clock::now();
    WordPieceTrainer trainer(o);
    for (const auto& c : opt->corpora) trainer.add_file(c);
    const double counted = seconds_since(start);
    const auto vocab = trainer.train();
    write_vocab_file(opt->out, vocab);
    const auto& s = trainer.stats();
    std::printf("wrote %s: %lld tokens (%lld characters, %lld merges) from %lld words (%lld distinct)\n",
                opt->out.c_str(), static_cast<long long>(vocab.size()), static_cast<long long>(s.alphabet),
                static_cast<long long>(s.merges), static_cast<long long>(s.words),
                static_cast<long long>(s.distinct_words));
    std::printf("time: %.2f s counting, %.2f s merging\n", counted, seconds_since(start) - counted);
    if (s.skipped_words > 0) {
      std::fprintf(stderr, "warning: %lld word occurrences will be [UNK] (over-long or rare characters)\n",
                   static_cast<long long>(s.skipped_words));
    }
    if (s.vocab_size < opt->size) {
      std::fprintf(stderr, "warning: the text allowed only %lld of the %lld tokens asked for\n",
                   static_cast<long long>(s.vocab_size), static_cast<long long>(opt->size));
    }
  });
}

void register_data_encode(CLI::App& data) {
  struct Options {
    std::string vocab, corpus, out;
    bool cased = false;
    int threads = 1;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = data.add_subcommand("encode", "Tokenize a corpus into an .rfds dataset file");
  cmd->add_option("--vocab,-v", opt->vocab, "vocab.txt, or a checkpoint directory with its tokenizer")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--corpus,-c", opt->corpus, "text file: one paragraph a line, blank line between documents")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", opt->out, "the .rfds file to write")->required();
  cmd->add_flag("--cased", opt->cased, "with a vocab.txt: keep case and accents");
  cmd->add_option("--threads", opt->threads, "paragraphs tokenized at once (the file is the same at any count)")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  cmd->callback([opt] {
    const auto start = std::chrono::steady_clock::now();
    const auto loaded = load_tokenizer(opt->vocab, opt->cased);
    const auto stats =
        encode_corpus(loaded.tokenizer, sha256_file(loaded.vocab_path), opt->corpus, opt->out, opt->threads);
    std::printf("wrote %s: %lld documents, %lld tokens (%lld [UNK]) in %.2f s\n", opt->out.c_str(),
                static_cast<long long>(stats.documents), static_cast<long long>(stats.tokens),
                static_cast<long long>(stats.unknown), seconds_since(start));
  });
}

void register_data_info(CLI::App& data) {
  struct Options {
    std::string file, vocab;
    int64_t show = 0;
    bool cased = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = data.add_subcommand("info", "Describe an .rfds dataset file (and check it against a vocab)");
  cmd->add_option("file", opt->file, ".rfds file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--vocab,-v", opt->vocab, "vocab.txt or checkpoint directory: check the sha256, decode --show")
      ->check(CLI::ExistingPath);
  cmd->add_option("--show", opt->show, "decode the first N tokens of the first document (needs --vocab)");
  cmd->add_flag("--cased", opt->cased, "with a vocab.txt: keep case and accents");
  cmd->callback([opt] {
    const auto ds = TokenDataset::open(opt->file);
    const auto& info = ds.info();
    std::vector<int64_t> lengths;
    for (int64_t d = 0; d < ds.documents(); ++d) lengths.push_back(ds.document_length(d));
    std::sort(lengths.begin(), lengths.end());
    std::printf("file:          %s\n", opt->file.c_str());
    std::printf("format:        RFDS version %u, %d-bit token ids\n", info.version, info.token_bytes * 8);
    std::printf("vocabulary:    %lld ids, sha256 %s\n", static_cast<long long>(info.vocab_size),
                sha256_hex(info.vocab_sha256).c_str());
    std::printf("documents:     %lld\n", static_cast<long long>(info.documents));
    std::printf("tokens:        %lld\n", static_cast<long long>(info.tokens));
    if (!lengths.empty()) {
      std::printf("document size: min %lld, median %lld, max %lld tokens\n", static_cast<long long>(lengths.front()),
                  static_cast<long long>(lengths[lengths.size() / 2]), static_cast<long long>(lengths.back()));
    }
    if (opt->vocab.empty()) {
      check(opt->show == 0, "--show needs --vocab");
      return;
    }
    const auto loaded = load_tokenizer(opt->vocab, opt->cased);
    const bool same = sha256_file(loaded.vocab_path) == info.vocab_sha256;
    std::printf("vocab check:   %s %s\n", loaded.vocab_path.c_str(),
                same ? "matches" : "DIFFERS (encoded with another vocabulary)");
    if (opt->show > 0 && ds.documents() > 0) {
      const int64_t n = std::min(opt->show, ds.document_length(0));
      std::vector<int64_t> ids(static_cast<std::size_t>(n));
      ds.copy_tokens(0, 0, n, ids.data());
      std::printf("document 0:    %s\n", loaded.tokenizer.decode(ids).c_str());
    }
    check(same, opt->file + ": was encoded with another vocabulary than " + loaded.vocab_path);
  });
}

}  // namespace

void register_data(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Training data: WordPiece vocabularies and tokenized datasets");
  data->require_subcommand(1);
  register_data_vocab(*data);
  register_data_encode(*data);
  register_data_info(*data);
}

}  // namespace roformer::cli

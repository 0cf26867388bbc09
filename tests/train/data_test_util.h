#pragma once
// Shared by the data-pipeline tests: the committed sample and a tokenizer whose
// vocabulary is learned from it (once per test program).
#include <fstream>
#include <string>
#include <vector>

#include "roformer/tokenizer.h"
#include "roformer/wordpiece_trainer.h"
#include "support/test_support.h"

namespace roformer::data_test {

inline std::string sample_path(const std::string& name) {
  return testing::data_path("../../data/sample/" + name);
}

inline std::vector<std::string> sample_lines(const std::string& name, std::size_t max_lines = SIZE_MAX) {
  std::ifstream in(sample_path(name));
  std::vector<std::string> lines;
  std::string line;
  while (lines.size() < max_lines && std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// vocab.txt text (2000 pieces) learned from the first lines of the English sample.
inline const std::string& sample_vocab_text() {
  static const std::string text = [] {
    WordPieceTrainerOptions o;
    o.vocab_size = 2000;
    WordPieceTrainer t(o);
    for (const auto& l : sample_lines("en_train.txt", 600)) t.add_text(l);
    return vocab_text(t.train());
  }();
  return text;
}

inline const Tokenizer& sample_tokenizer() {
  static const Tokenizer tok(Vocab::from_string(sample_vocab_text()), TokenizerOptions{});
  return tok;
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace roformer::data_test

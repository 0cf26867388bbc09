#pragma once
// The plain-text corpus format of data/: one paragraph a line, a blank line
// (or a whitespace-only one) between documents. Lines may end in \n or \r\n.
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace roformer {

class TextCorpusReader {
 public:
  // Throws Error when the file cannot be opened.
  explicit TextCorpusReader(const std::string& path, std::size_t max_line_bytes = std::size_t{64} << 20);

  // The next document's paragraphs (at least one); false at the end of the file.
  // Throws Error naming the file and line when a line is longer than the limit.
  bool next(std::vector<std::string>& paragraphs);
  // The line number (1-based) of the last line read, and of the current
  // document's first paragraph (paragraph i is on line document_line() + i).
  int64_t line() const { return line_; }
  int64_t document_line() const { return document_line_; }
  const std::string& path() const { return path_; }

 private:
  bool read_line(std::string& out);
  std::string path_;
  std::ifstream in_;
  std::size_t max_line_bytes_;
  int64_t line_ = 0;
  int64_t document_line_ = 0;
};

}  // namespace roformer

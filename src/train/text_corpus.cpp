#include "roformer/text_corpus.h"

#include "roformer/error.h"

namespace roformer {

TextCorpusReader::TextCorpusReader(const std::string& path, std::size_t max_line_bytes)
    : path_(path), in_(path, std::ios::binary), max_line_bytes_(max_line_bytes) {
  ROFORMER_CHECK(in_.is_open(), path + ": cannot open the corpus file");
}

bool TextCorpusReader::read_line(std::string& out) {
  out.clear();
  // Read in slices so that a hostile file without newlines cannot make us allocate without bound.
  char buf[4096];
  bool any = false;
  while (true) {
    in_.getline(buf, sizeof buf);
    const auto got = static_cast<std::size_t>(in_.gcount());
    if (got == 0 && in_.eof() && !any) return false;
    any = true;
    const bool ended = !in_.fail() || in_.eof();  // fail without eof: the slice was full
    const std::size_t text = ended && !in_.eof() ? got - 1 : got;  // gcount counts the '\n'
    out.append(buf, text);
    ROFORMER_CHECK(out.size() <= max_line_bytes_, path_ + ":" + std::to_string(line_ + 1) + ": line longer than " +
                                             std::to_string(max_line_bytes_) + " bytes");
    if (ended) break;
    in_.clear();
  }
  ++line_;
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return true;
}

bool TextCorpusReader::next(std::vector<std::string>& paragraphs) {
  paragraphs.clear();
  std::string line;
  while (read_line(line)) {
    const bool blank = line.find_first_not_of(" \t\r\f\v") == std::string::npos;
    if (blank) {
      if (!paragraphs.empty()) return true;
      continue;
    }
    if (paragraphs.empty()) document_line_ = line_;
    paragraphs.push_back(std::move(line));
    line = std::string();
  }
  return !paragraphs.empty();
}

}  // namespace roformer

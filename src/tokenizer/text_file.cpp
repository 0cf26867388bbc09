#include "tokenizer/text_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "roformer/error.h"

namespace roformer::tok {

std::string read_file(const std::string& path, std::size_t max_bytes, const char* what) {
  const std::string label = std::string(what) + " '" + path + "'";
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw Error(label + ": file not found");
  if (!std::filesystem::is_regular_file(status)) throw Error(label + ": not a regular file");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(label + ": cannot open (" + std::strerror(errno) + ")");
  std::string out;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size <= max_bytes) out.reserve(static_cast<std::size_t>(size));
  char buf[1 << 16];
  std::size_t n;
  // Read to EOF rather than trusting the size, which may change under us.
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    if (out.size() + n > max_bytes) {
      throw Error(label + ": larger than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, n);
  }
  if (std::ferror(f.get())) throw Error(label + ": read error");
  return out;
}

}  // namespace roformer::tok

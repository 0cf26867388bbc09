#include "train/jsonl_reader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "roformer/error.h"

namespace roformer::train {

void for_each_jsonl_object(const std::string& path, int64_t max_file_bytes,
                           const std::function<void(const nlohmann::json&, int64_t, const std::string&)>& fn) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  ROFORMER_CHECK(!ec, path + ": cannot read (" + ec.message() + ")");
  ROFORMER_CHECK(bytes <= static_cast<uint64_t>(max_file_bytes),
                 path + ": larger than the " + std::to_string(max_file_bytes) + "-byte limit");
  std::ifstream in(path, std::ios::binary);
  ROFORMER_CHECK(in.is_open(), path + ": cannot open");
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + "invalid JSON (" + e.what() + ")");
    }
    ROFORMER_CHECK(j.is_object(), where + "expected a JSON object");
    fn(j, number, where);
  }
  ROFORMER_CHECK(!in.bad(), path + ": read error");
}

bool split_in(std::string_view split, std::string_view names) {
  for (std::size_t begin = 0; begin <= names.size();) {
    const std::size_t end = std::min(names.find(',', begin), names.size());
    if (names.substr(begin, end - begin) == split) return true;
    begin = end + 1;
  }
  return false;
}

}  // namespace roformer::train

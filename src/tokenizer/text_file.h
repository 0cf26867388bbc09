#pragma once
// Whole-file reads for the tokenizer's small text inputs (vocab, configs, dictionary).
#include <cstddef>
#include <string>

namespace roformer::tok {

// The bytes of `path`. Throws Error naming `what` and the path when the file is
// missing, unreadable, not a regular file, or larger than `max_bytes`.
std::string read_file(const std::string& path, std::size_t max_bytes, const char* what);

}  // namespace roformer::tok

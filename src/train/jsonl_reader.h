#pragma once
// Walks a JSONL file object by object, with the checks every labelled data
// set needs: a size limit, blank lines skipped, and errors that name the file
// and line ("path:line: ...").
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace roformer::train {

// fn(object, line number, "path:line: ") for every non-blank line.
void for_each_jsonl_object(const std::string& path, int64_t max_file_bytes,
                           const std::function<void(const nlohmann::json&, int64_t, const std::string&)>& fn);

// Whether a record's "split" value is one of `names`, a comma-separated list
// ("valid,test"; a single name matches only itself).
bool split_in(std::string_view split, std::string_view names);

}  // namespace roformer::train

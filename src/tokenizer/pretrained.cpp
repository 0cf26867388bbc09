// Loading a tokenizer from a save_pretrained directory: vocab.txt,
// tokenizer_config.json, special_tokens_map.json (and config.json's model_type).
#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "tokenizer/text_file.h"

namespace roformer {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxConfigBytes = std::size_t{16} << 20;
// HF writes model_max_length = int(1e30) for "no limit"; anything this large means that.
constexpr double kNoLimit = 1e18;

json parse_object(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(source + ": invalid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(source + ": expected a JSON object at the top level");
  return j;
}

class Reader {
 public:
  Reader(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(source_ + ": field '" + key + "' " + what);
  }
  const json* get(const std::string& key) const {
    const auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  void boolean(const std::string& key, bool& out) const {
    if (const json* v = get(key)) {
      if (!v->is_boolean()) fail(key, "must be true or false");
      out = v->get<bool>();
    }
  }
  // A special token: a string, or an AddedToken object with a "content" string.
  void token(const std::string& key, std::string& out) const {
    if (const json* v = get(key)) out = token_value(key, *v);
  }
  std::string token_value(const std::string& key, const json& v) const {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object()) {
      const auto c = v.find("content");
      if (c != v.end() && c->is_string()) return c->get<std::string>();
    }
    fail(key, "must be a string or an object with a string 'content'");
  }
  void token_list(const std::string& key, std::vector<std::string>& out) const {
    const json* v = get(key);
    if (!v || v->is_null()) return;
    if (!v->is_array()) fail(key, "must be a list of tokens");
    out.clear();
    for (const json& item : *v) out.push_back(token_value(key, item));
  }

 private:
  const json& j_;
  std::string source_;
};

void read_special_tokens(const Reader& r, TokenizerOptions& o) {
  r.token("unk_token", o.unk_token);
  r.token("sep_token", o.sep_token);
  r.token("pad_token", o.pad_token);
  r.token("cls_token", o.cls_token);
  r.token("mask_token", o.mask_token);
  r.token_list("additional_special_tokens", o.additional_special_tokens);
  // BERT-style tokenizers have no bos/eos, but a config that names them makes them special.
  for (const char* key : {"bos_token", "eos_token"}) {
    const json* v = r.get(key);
    if (v && !v->is_null()) o.additional_special_tokens.push_back(r.token_value(key, *v));
  }
}

void read_added_tokens(const Reader& r, const std::string& source, TokenizerOptions& o) {
  const json* dec = r.get("added_tokens_decoder");
  if (!dec || dec->is_null()) return;
  if (!dec->is_object()) r.fail("added_tokens_decoder", "must be an object {id: token}");
  for (const auto& [key, value] : dec->items()) {
    const std::string field = "added_tokens_decoder." + key;
    int64_t id = -1;
    const auto [ptr, err] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (key.empty() || err != std::errc() || ptr != key.data() + key.size() || id < 0) {
      throw Error(source + ": field '" + field + "': the key must be a non-negative integer id");
    }
    if (!value.is_object()) throw Error(source + ": field '" + field + "' must be an object");
    const Reader t(value, source);
    AddedToken token;
    const json* content = t.get("content");
    if (!content || !content->is_string()) throw Error(source + ": field '" + field + ".content' must be a string");
    token.content = content->get<std::string>();
    bool single_word = false;
    try {
      t.boolean("special", token.special);
      t.boolean("lstrip", token.lstrip);
      t.boolean("rstrip", token.rstrip);
      t.boolean("normalized", token.normalized);
      t.boolean("single_word", single_word);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (in '" + field + "')");
    }
    if (single_word) throw Error(source + ": field '" + field + ".single_word': single_word tokens are not supported");
    o.added_tokens.emplace_back(id, std::move(token));
  }
}

// tokenizer_class -> whether jieba segments first; nullopt when the key is absent.
std::optional<bool> jieba_for_class(const json& config, const std::string& source) {
  const auto it = config.find("tokenizer_class");
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) throw Error(source + ": field 'tokenizer_class' must be a string");
  const std::string cls = it->get<std::string>();
  if (cls == "RoFormerTokenizer" || cls == "RoFormerTokenizerFast") return true;
  if (cls == "BertTokenizer" || cls == "BertTokenizerFast") return false;
  throw Error(source + ": field 'tokenizer_class': unsupported tokenizer '" + cls +
              "' (expected RoFormerTokenizer or BertTokenizer)");
}

}  // namespace

TokenizerOptions Tokenizer::options_from_json(std::string_view tokenizer_config, std::string_view special_tokens_map,
                                              const std::string& source) {
  TokenizerOptions o;
  const json config = parse_object(tokenizer_config, source);
  const Reader r(config, source);
  r.boolean("do_lower_case", o.do_lower_case);
  r.boolean("do_basic_tokenize", o.do_basic_tokenize);
  r.boolean("tokenize_chinese_chars", o.tokenize_chinese_chars);
  r.boolean("clean_up_tokenization_spaces", o.clean_up_tokenization_spaces);
  if (const json* v = r.get("strip_accents"); v && !v->is_null()) {
    if (!v->is_boolean()) r.fail("strip_accents", "must be null, true or false");
    o.strip_accents = v->get<bool>();
  }
  if (const json* v = r.get("never_split"); v && !v->is_null()) {
    if (!v->is_array()) r.fail("never_split", "must be null or a list of strings");
    for (const json& s : *v) {
      if (!s.is_string()) r.fail("never_split", "must be null or a list of strings");
      o.never_split.push_back(s.get<std::string>());
    }
  }
  if (const json* v = r.get("model_max_length"); v && !v->is_null()) {
    if (!v->is_number()) r.fail("model_max_length", "must be a number");
    const double limit = v->get<double>();
    if (!(limit >= 1)) r.fail("model_max_length", "must be at least 1");
    if (limit < kNoLimit) o.model_max_length = static_cast<int64_t>(limit);
  }
  if (const auto jieba = jieba_for_class(config, source)) o.use_jieba = *jieba;
  read_special_tokens(r, o);
  read_added_tokens(r, source, o);

  if (!special_tokens_map.empty()) {
    const std::string map_source = "special_tokens_map.json";
    const json map = parse_object(special_tokens_map, map_source);
    read_special_tokens(Reader(map, map_source), o);
  }
  return o;
}

Tokenizer Tokenizer::from_pretrained(const std::string& dir, const std::string& jieba_dict_path) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error("tokenizer directory '" + dir + "' does not exist");
  const auto read_optional = [&](const char* name) -> std::string {
    const fs::path p = root / name;
    if (!fs::exists(p, ec)) return {};
    return tok::read_file(p.string(), kMaxConfigBytes, name);
  };
  const std::string config_path = (root / "tokenizer_config.json").string();
  std::string config_text = read_optional("tokenizer_config.json");
  const bool has_config = !config_text.empty() || fs::exists(config_path, ec);
  if (!has_config) config_text = "{}";
  const std::string special_map = read_optional("special_tokens_map.json");

  TokenizerOptions options = options_from_json(config_text, special_map, config_path);
  // Without tokenizer_class, AutoTokenizer goes by the model type.
  if (!jieba_for_class(parse_object(config_text, config_path), config_path)) {
    const std::string model_config = read_optional("config.json");
    if (model_config.empty()) {
      throw Error(config_path + ": no 'tokenizer_class', and no config.json to tell RoFormer from BERT");
    }
    const std::string model_path = (root / "config.json").string();
    const json mc = parse_object(model_config, model_path);
    const auto it = mc.find("model_type");
    if (it == mc.end() || !it->is_string()) throw Error(model_path + ": field 'model_type' must be a string");
    const std::string type = it->get<std::string>();
    if (type == "roformer") {
      options.use_jieba = true;
    } else if (type == "bert") {
      options.use_jieba = false;
    } else {
      throw Error(model_path + ": field 'model_type': no tokenizer known for '" + type + "'");
    }
  }
  options.jieba_dict_path = jieba_dict_path;
  return Tokenizer(Vocab::from_file((root / "vocab.txt").string()), std::move(options));
}

}  // namespace roformer

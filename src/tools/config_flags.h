#pragma once
// Command-line flags that override a JSON options object: defaults, then a
// --config file, then the flags actually given. Each flag's value is parsed
// as the JSON type of its default (string, integer, number or boolean).
#include <CLI/CLI.hpp>
#include <list>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace roformer::cli {

class ConfigFlags {
 public:
  ConfigFlags(CLI::App* cmd, nlohmann::json defaults);

  // A flag with a value (--lr 1e-4) for the option `key`.
  void add(const std::string& flag, const std::string& key, const std::string& help);
  // A boolean switch (--whole-word-masking) that sets `key` to true.
  void add_switch(const std::string& flag, const std::string& key, const std::string& help);

  // Defaults <- the config file's keys (when a path is given) <- the flags given.
  std::string merged(const std::string& config_file) const;

 private:
  struct Entry {
    CLI::Option* option = nullptr;
    std::string key;
    std::string value;
    bool is_switch = false;
  };
  CLI::App* cmd_;
  nlohmann::json defaults_;
  std::list<Entry> entries_;  // a list: CLI11 keeps pointers to the values
};

}  // namespace roformer::cli

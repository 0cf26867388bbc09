#include "tools/config_flags.h"

#include <fstream>
#include <sstream>

#include "roformer/error.h"

namespace roformer::cli {

using nlohmann::json;

ConfigFlags::ConfigFlags(CLI::App* cmd, json defaults) : cmd_(cmd), defaults_(std::move(defaults)) {}

void ConfigFlags::add(const std::string& flag, const std::string& key, const std::string& help) {
  check(defaults_.contains(key), "internal: no option named " + key);
  Entry& e = entries_.emplace_back();
  e.key = key;
  const json& d = defaults_.at(key);
  e.option = cmd_->add_option(flag, e.value, help);
  e.option->default_str(d.is_string() ? d.get<std::string>() : d.dump());
}

void ConfigFlags::add_switch(const std::string& flag, const std::string& key, const std::string& help) {
  check(defaults_.contains(key) && defaults_.at(key).is_boolean(), "internal: no boolean option named " + key);
  Entry& e = entries_.emplace_back();
  e.key = key;
  e.is_switch = true;
  e.option = cmd_->add_flag(flag, help);
}

std::string ConfigFlags::merged(const std::string& config_file) const {
  json out = json::object();
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    check(static_cast<bool>(in), "cannot open " + config_file);
    std::stringstream ss;
    ss << in.rdbuf();
    try {
      out = json::parse(ss.str());
    } catch (const json::exception& e) {
      throw Error(config_file + ": not valid JSON: " + e.what());
    }
    check(out.is_object(), config_file + ": the top level must be an object");
  }
  for (const Entry& e : entries_) {
    if (e.option->count() == 0) continue;
    if (e.is_switch) {
      out[e.key] = true;
      continue;
    }
    const json& d = defaults_.at(e.key);
    const std::string flag = e.option->get_name();
    try {
      std::size_t used = 0;
      if (d.is_string()) {
        out[e.key] = e.value;
        used = e.value.size();
      } else if (d.is_number_unsigned()) {
        check(!e.value.empty() && e.value[0] != '-', flag + " must be a non-negative integer");
        out[e.key] = std::stoull(e.value, &used);
      } else if (d.is_number_integer()) {
        out[e.key] = std::stoll(e.value, &used);
      } else if (d.is_number()) {
        out[e.key] = std::stod(e.value, &used);
      } else if (d.is_boolean()) {
        check(e.value == "true" || e.value == "false", flag + " must be true or false");
        out[e.key] = e.value == "true";
        used = e.value.size();
      }
      check(used == e.value.size(), flag + ": '" + e.value + "' is not a valid value");
    } catch (const std::logic_error&) {
      throw Error(flag + ": '" + e.value + "' is not a valid value");
    }
  }
  return out.dump();
}

}  // namespace roformer::cli

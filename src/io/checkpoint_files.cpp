#include "roformer/checkpoint_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "roformer/error.h"
#include "roformer/safetensors.h"
#include "roformer/torch_checkpoint.h"

namespace roformer {

namespace fs = std::filesystem;

struct TensorSource::File {
  std::optional<SafeTensors> safetensors;
  std::optional<TorchCheckpoint> torch;

  explicit File(const std::string& path) {
    if (path.ends_with(".safetensors")) safetensors.emplace(SafeTensors::open(path));
    else torch.emplace(TorchCheckpoint::open(path));
  }
  const std::string& path() const { return safetensors ? safetensors->path() : torch->path(); }
  std::vector<std::string> names() const { return safetensors ? safetensors->names() : torch->names(); }
  bool contains(const std::string& n) const { return safetensors ? safetensors->contains(n) : torch->contains(n); }
  Shape shape(const std::string& n) const { return safetensors ? safetensors->info(n).shape : torch->shape(n); }
  std::string dtype(const std::string& n) const { return safetensors ? safetensors->info(n).dtype : torch->dtype(n); }
  Tensor get(const std::string& n) const { return safetensors ? safetensors->get(n) : torch->get(n); }
};

namespace {

constexpr std::uintmax_t kMaxIndexBytes = 64u << 20;  // real indexes are well under 1 MiB

using json = nlohmann::json;

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

json read_json(const std::string& path) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) throw Error(path + ": cannot read (" + ec.message() + ")");
  if (size > kMaxIndexBytes) throw Error(path + ": index file larger than 64 MiB");
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<std::size_t>(size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) throw Error(path + ": cannot read");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(path + ": not valid JSON");
  return j;
}

// A shard must be a plain relative path that stays inside the index's directory.
// (Checked lexically: HF cache snapshots are symlinks into a blob store, which is fine.)
bool stays_inside(const std::string& name) {
  const fs::path p(name);
  if (name.empty() || p.is_absolute() || p.has_root_name() || p.has_root_directory()) return false;
  for (const fs::path& part : p)
    if (part == "..") return false;
  return true;
}

}  // namespace

TensorSource TensorSource::open(const std::string& path) {
  TensorSource src;
  src.path_ = path;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw Error(path + ": no such file or directory");

  std::string file = path;
  if (fs::is_directory(st)) {
    static const char* kCandidates[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                        "pytorch_model.bin.index.json"};
    file.clear();
    for (const char* c : kCandidates) {
      if (is_file(fs::path(path) / c)) {
        file = (fs::path(path) / c).string();
        break;
      }
    }
    if (file.empty())
      throw Error(path + ": no model.safetensors, model.safetensors.index.json, pytorch_model.bin or "
                         "pytorch_model.bin.index.json in this directory");
  }

  if (!file.ends_with(".json")) {
    auto f = std::make_shared<const File>(file);
    src.order_ = f->names();
    for (const std::string& n : src.order_) src.where_.emplace(n, 0);
    src.files_.push_back(std::move(f));
    return src;
  }

  // A sharded checkpoint: {"metadata": {...}, "weight_map": {tensor: shard file}}.
  const json index = read_json(file);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(file + ": index has no \"weight_map\" object");
  const fs::path dir = fs::path(file).parent_path();
  std::map<std::string, std::vector<std::string>> shard_tensors;  // shard -> tensors (sorted shard order)
  for (const auto& [tensor, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) throw Error(file + ": weight_map entry '" + tensor + "' is not a file name");
    const std::string name = shard.get<std::string>();
    if (!stays_inside(name))
      throw Error(file + ": shard '" + name + "' for tensor '" + tensor + "' points outside the checkpoint directory");
    shard_tensors[name].push_back(tensor);
  }
  if (shard_tensors.empty()) throw Error(file + ": weight_map is empty");
  for (auto& [shard, tensors] : shard_tensors) {
    std::sort(tensors.begin(), tensors.end());
    const fs::path shard_path = dir / shard;
    if (!is_file(shard_path))
      throw Error(file + ": shard '" + shard + "' (holding '" + tensors.front() + "') is missing");
    auto f = std::make_shared<const File>(shard_path.string());
    for (const std::string& t : tensors)
      if (!f->contains(t)) throw Error(file + ": tensor '" + t + "' is not in its shard '" + shard + "'");
    // Names in the shard's own order; tensors a shard holds but the index does not list stay hidden.
    const std::size_t k = src.files_.size();
    for (const std::string& n : f->names()) {
      if (std::binary_search(tensors.begin(), tensors.end(), n)) {
        src.order_.push_back(n);
        src.where_.emplace(n, k);
      }
    }
    src.files_.push_back(std::move(f));
  }
  return src;
}

std::vector<std::string> TensorSource::files() const {
  std::vector<std::string> out;
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

std::vector<std::string> TensorSource::names() const { return order_; }

namespace {
template <typename Map>
std::size_t lookup(const Map& where, const std::string& path, const std::string& name) {
  auto it = where.find(name);
  if (it == where.end()) throw Error(path + ": no tensor named '" + name + "'");
  return it->second;
}
}  // namespace

Shape TensorSource::shape(const std::string& name) const { return files_[lookup(where_, path_, name)]->shape(name); }

std::string TensorSource::dtype(const std::string& name) const {
  return files_[lookup(where_, path_, name)]->dtype(name);
}

Tensor TensorSource::get(const std::string& name) const { return files_[lookup(where_, path_, name)]->get(name); }

}  // namespace roformer

// Seq2SeqModel (weights, initialisation, save/load, teacher-forced forward)
// and Seq2SeqTrainer (gradients, loss, dropout).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "roformer/data_rng.h"
#include "roformer/error.h"
#include "roformer/safetensors.h"
#include "roformer/seq2seq.h"
#include "seq2seq/graph.h"
#include "seq2seq/model_impl.h"
#include "train/atomic_file.h"

namespace roformer {

namespace fs = std::filesystem;
using seq2seq::Slot;

Seq2SeqBatch make_seq2seq_batch(const std::vector<std::vector<int64_t>>& sources,
                                const std::vector<std::vector<int64_t>>& targets, const Seq2SeqConfig& c) {
  ROFORMER_CHECK(!sources.empty(), "seq2seq batch: no sentences");
  ROFORMER_CHECK(sources.size() == targets.size(), "seq2seq batch: " + std::to_string(sources.size()) + " sources but " +
                                                       std::to_string(targets.size()) + " targets");
  const auto B = static_cast<int64_t>(sources.size());
  int64_t S = 0, T = 0;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    ROFORMER_CHECK(!sources[i].empty(), "seq2seq batch: source " + std::to_string(i) + " has no tokens");
    S = std::max<int64_t>(S, static_cast<int64_t>(sources[i].size()) + 1);
    T = std::max<int64_t>(T, static_cast<int64_t>(targets[i].size()) + 1);
  }
  Seq2SeqBatch b{Tensor::zeros({B, S}, DType::I64), Tensor::zeros({B, T}, DType::I64), Tensor::zeros({B, T}, DType::I64)};
  int64_t* src = b.src.data<int64_t>();
  int64_t* tin = b.tgt_in.data<int64_t>();
  int64_t* tout = b.tgt_out.data<int64_t>();
  std::fill(src, src + B * S, c.pad_token_id);
  std::fill(tin, tin + B * T, c.pad_token_id);
  std::fill(tout, tout + B * T, c.pad_token_id);
  for (int64_t r = 0; r < B; ++r) {
    const auto& s = sources[static_cast<std::size_t>(r)];
    const auto& t = targets[static_cast<std::size_t>(r)];
    std::copy(s.begin(), s.end(), src + r * S);
    src[r * S + static_cast<int64_t>(s.size())] = c.eos_token_id;
    tin[r * T] = c.bos_token_id;
    std::copy(t.begin(), t.end(), tin + r * T + 1);
    std::copy(t.begin(), t.end(), tout + r * T);
    tout[r * T + static_cast<int64_t>(t.size())] = c.eos_token_id;
  }
  return b;
}

// ------------------------------------------------------------------ model

Seq2SeqModel::Seq2SeqModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Seq2SeqModel::Seq2SeqModel(Seq2SeqModel&&) noexcept = default;
Seq2SeqModel& Seq2SeqModel::operator=(Seq2SeqModel&&) noexcept = default;
Seq2SeqModel::~Seq2SeqModel() = default;

const Seq2SeqConfig& Seq2SeqModel::config() const { return impl_->config; }

Seq2SeqModel Seq2SeqModel::clone() const {
  auto impl = std::make_unique<Impl>();
  impl->config = impl_->config;
  impl->w = seq2seq::clone(impl_->config, impl_->w);
  return Seq2SeqModel(std::move(impl));
}

Seq2SeqModel Seq2SeqModel::random_init(const Seq2SeqConfig& c, uint64_t seed) {
  c.validate();
  auto impl = std::make_unique<Impl>();
  impl->config = c;
  DataRng rng(seed);
  const double embed_std = c.init_std > 0 ? c.init_std : 1.0 / std::sqrt(static_cast<double>(c.d_model));
  seq2seq::for_each_slot(c, impl->w, [&](const std::string& name, Tensor& t, const Shape& shape, Slot kind) {
    t = Tensor::zeros(shape);
    float* p = t.data<float>();
    const int64_t n = t.numel();
    switch (kind) {
      case Slot::Bias:
      case Slot::NormBias: break;
      case Slot::NormWeight: std::fill(p, p + n, 1.0f); break;
      case Slot::ProjectionWeight: {
        // Xavier uniform; fairseq scales q/k/v of self-attention by 1/sqrt(2).
        const bool qkv = name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos ||
                         name.find("v_proj") != std::string::npos;
        const double bound = std::sqrt(6.0 / static_cast<double>(shape[0] + shape[1])) / (qkv ? std::sqrt(2.0) : 1.0);
        for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
        break;
      }
      case Slot::Embedding: {
        for (int64_t i = 0; i < n; i += 2) {  // Box-Muller
          const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
          const double r = std::sqrt(-2.0 * std::log(u1)) * embed_std;
          p[i] = static_cast<float>(r * std::cos(2.0 * M_PI * u2));
          if (i + 1 < n) p[i + 1] = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
        }
        if (name.find("embed_tokens") != std::string::npos)
          std::fill(p + c.pad_token_id * shape[1], p + (c.pad_token_id + 1) * shape[1], 0.0f);
        break;
      }
    }
  });
  seq2seq::tie(c, impl->w);
  return Seq2SeqModel(std::move(impl));
}

Seq2SeqModel Seq2SeqModel::from_tensors(const Seq2SeqConfig& c, const std::vector<std::pair<std::string, Tensor>>& tensors) {
  c.validate();
  std::map<std::string, Tensor> by_name;
  for (const auto& [name, t] : tensors) {
    ROFORMER_CHECK(by_name.emplace(name, t).second, "seq2seq weights: tensor " + name + " appears twice");
  }
  auto impl = std::make_unique<Impl>();
  impl->config = c;
  std::set<std::string> used;
  seq2seq::for_each_slot(c, impl->w, [&](const std::string& name, Tensor& slot, const Shape& shape, Slot) {
    auto it = by_name.find(name);
    ROFORMER_CHECK(it != by_name.end(), "seq2seq weights: tensor " + name + " is missing");
    ROFORMER_CHECK(it->second.shape() == shape, "seq2seq weights: tensor " + name + " has shape " +
                                                    shape_str(it->second.shape()) + ", the config needs " + shape_str(shape));
    const Tensor& t = it->second;
    slot = t.dtype() == DType::F32 && t.is_contiguous() ? t : t.to(DType::F32);
    used.insert(name);
  });
  for (const auto& [name, t] : by_name)
    ROFORMER_CHECK(used.count(name) != 0, "seq2seq weights: unexpected tensor " + name + " (the config does not use it)");
  seq2seq::tie(c, impl->w);
  return Seq2SeqModel(std::move(impl));
}

Seq2SeqModel Seq2SeqModel::from_pretrained(const std::string& dir) {
  const fs::path d(dir);
  ROFORMER_CHECK(fs::is_directory(d), "seq2seq model: " + dir + " is not a directory");
  const Seq2SeqConfig c = Seq2SeqConfig::from_file((d / "config.json").string());
  const SafeTensors st = SafeTensors::open((d / "model.safetensors").string());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& name : st.names()) tensors.emplace_back(name, st.get(name));
  try {
    return from_tensors(c, tensors);
  } catch (const Error& e) {
    throw Error(st.path() + ": " + e.what());
  }
}

std::vector<std::pair<std::string, Tensor>> Seq2SeqModel::named_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  seq2seq::for_each_slot(impl_->config, impl_->w,
                         [&](const std::string& name, Tensor& t, const Shape&, Slot) { out.emplace_back(name, t); });
  return out;
}

void Seq2SeqModel::save_pretrained(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  ROFORMER_CHECK(!ec && fs::is_directory(dir), "save: cannot create directory " + dir);
  data::write_file_atomically((fs::path(dir) / "config.json").string(), impl_->config.to_json_text());
  save_safetensors((fs::path(dir) / "model.safetensors").string(), named_tensors(),
                   {{"format", "pt"}, {"model_type", "roformer_seq2seq"}});
}

Tensor Seq2SeqModel::forward(const Seq2SeqBatch& batch, const ExecContext& ctx) const {
  seq2seq::Graph g;
  g.prepare(impl_->config, batch, false);
  g.forward(impl_->config, impl_->w, ctx);
  Tensor out = Tensor::zeros({g.B, g.T, impl_->config.tgt_vocab_size});
  std::memcpy(out.data<float>(), g.logits.data(), g.logits.size() * sizeof(float));
  return out;
}

// ------------------------------------------------------------------ trainer

struct Seq2SeqTrainer::Impl {
  Seq2SeqModel model;
  seq2seq::Weights g;
  seq2seq::Graph graph;
  std::vector<Tensor> grads;  // every gradient buffer once
  bool dropout_on = false;
  uint64_t seed = 0, step = 0;

  explicit Impl(Seq2SeqModel m) : model(std::move(m)) {}
  LabelSmoothedLoss run(const Seq2SeqBatch& batch, double eps, const ExecContext& ctx, bool backward, float scale);
};

LabelSmoothedLoss Seq2SeqTrainer::Impl::run(const Seq2SeqBatch& batch, double eps, const ExecContext& ctx,
                                            bool backward, float scale) {
  const Seq2SeqConfig& c = model.config();
  graph.prepare(c, batch, true);
  const bool drop = backward && dropout_on && c.dropout > 0;
  graph.drop_p = drop ? static_cast<float>(c.dropout) : 0.0f;
  graph.drop_seed = seed;
  graph.drop_step = step;
  graph.forward(c, model.impl().w, ctx);
  graph.dlogits.resize(graph.logits.size());
  const LabelSmoothedLoss r =
      label_smoothed_cross_entropy(graph.logits.data(), graph.tgt_out.data(), graph.B * graph.T, c.tgt_vocab_size, eps,
                                   c.pad_token_id, backward ? graph.dlogits.data() : nullptr, scale);
  if (backward) {
    graph.backward(c, model.impl().w, g, ctx);
    if (dropout_on) ++step;
  }
  return r;
}

Seq2SeqTrainer::Seq2SeqTrainer(const Seq2SeqModel& model) : impl_(std::make_unique<Impl>(model.clone())) {
  const Seq2SeqConfig& c = impl_->model.config();
  impl_->g = seq2seq::zeros_like(c);
  seq2seq::for_each_slot(c, impl_->g, [&](const std::string&, Tensor& t, const Shape&, Slot) { impl_->grads.push_back(t); });
}
Seq2SeqTrainer::~Seq2SeqTrainer() = default;
Seq2SeqTrainer::Seq2SeqTrainer(Seq2SeqTrainer&&) noexcept = default;
Seq2SeqTrainer& Seq2SeqTrainer::operator=(Seq2SeqTrainer&&) noexcept = default;

LabelSmoothedLoss Seq2SeqTrainer::forward_backward(const Seq2SeqBatch& batch, double label_smoothing,
                                                   const ExecContext& ctx, float grad_scale) {
  return impl_->run(batch, label_smoothing, ctx, true, grad_scale);
}

LabelSmoothedLoss Seq2SeqTrainer::evaluate(const Seq2SeqBatch& batch, double label_smoothing, const ExecContext& ctx) {
  return impl_->run(batch, label_smoothing, ctx, false, 1.0f);
}

void Seq2SeqTrainer::zero_grad() {
  for (Tensor& t : impl_->grads) std::memset(t.raw(), 0, t.nbytes());
}

void Seq2SeqTrainer::set_dropout(bool enabled, uint64_t seed) {
  impl_->dropout_on = enabled;
  impl_->seed = seed;
}
uint64_t Seq2SeqTrainer::dropout_step() const { return impl_->step; }
void Seq2SeqTrainer::set_dropout_step(uint64_t step) { impl_->step = step; }

std::vector<Parameter> Seq2SeqTrainer::parameters() {
  std::vector<Parameter> out;
  seq2seq::for_each_slot(impl_->model.config(), impl_->model.impl().w,
                         [&](const std::string& name, Tensor& t, const Shape& shape, Slot) {
                           out.push_back({name, t.data<float>(), nullptr, t.numel(), true, shape});
                         });
  for (std::size_t i = 0; i < out.size(); ++i) out[i].grad = impl_->grads[i].data<float>();
  return out;
}

const Seq2SeqModel& Seq2SeqTrainer::model() const { return impl_->model; }

}  // namespace roformer

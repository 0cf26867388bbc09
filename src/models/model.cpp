// RoFormerModel: input checks, masks and positions, the cache, load and save.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "kernels/packed_matmul.h"
#include "models/encoder.h"
#include "models/heads.h"
#include "models/model_impl.h"
#include "models/tensor_files.h"
#include "models/weights.h"
#include "roformer/error.h"
#include "roformer/model.h"
#include "roformer/safetensors.h"

namespace roformer {

struct KvCache::State {
  std::vector<nn::LayerKvCache> layers;
  std::vector<uint8_t> key_valid;  // (B, length): padding flags of cached tokens
  int64_t batch = 0;
  int64_t length = 0;
  int64_t reserved = 0;  // tokens to make room for (KvCache::reserve)
};

KvCache::KvCache() : state_(std::make_unique<State>()) {}
KvCache::~KvCache() = default;
KvCache::KvCache(KvCache&&) noexcept = default;
KvCache& KvCache::operator=(KvCache&&) noexcept = default;
int64_t KvCache::length() const { return state_->length; }
DType KvCache::dtype() const {
  const bool bf16 = !state_->layers.empty() && state_->layers.front().bf16_storage;
  return bf16 ? DType::BF16 : DType::F32;
}
void KvCache::clear() {
  for (nn::LayerKvCache& layer : state_->layers) layer.length = 0;
  state_->key_valid.clear();
  state_->length = 0;
}
void KvCache::reserve(int64_t tokens) {
  ROFORMER_CHECK(tokens >= 0, "kv cache: cannot reserve a negative number of tokens");
  state_->reserved = tokens;
}

namespace {

// Keys (or values) of one layer as (B, heads, length, head_dim) floats.
Tensor cache_to_bhsd(const nn::LayerKvCache& c, bool values, int64_t heads) {
  const int64_t B = c.batch, L = c.length, H = c.hidden, D = H / heads;
  std::vector<float> k, v;
  c.to_floats(k, v);  // (B, L, H)
  const std::vector<float>& data = values ? v : k;
  Tensor t = Tensor::zeros({B, heads, L, D});
  float* p = t.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t s = 0; s < L; ++s)
        for (int64_t d = 0; d < D; ++d) p[((b * heads + h) * L + s) * D + d] = data[((b * L + s) * H) + h * D + d];
  return t;
}

// The products' weights as LoadOptions ask: bf16, or fp32 packed where
// oneDNN is this CPU's default GEMM library or our own AVX2 panels take its
// place (elsewhere packing buys nothing the default context would use).
void apply_precision(RoFormerModel& model, const LoadOptions& options) {
  ROFORMER_CHECK(!(options.bf16_matmuls && options.int8_matmuls), "load options: pick bf16 or int8 products, not both");
  if (options.bf16_matmuls) model.set_bf16_matmuls(true, options.bf16_kernel);
  else if (options.int8_matmuls) model.set_int8_matmuls(true);
  else if (options.packed_matmuls &&
           (default_gemm_backend() == GemmBackend::OneDnn || kernels::PackedMatmul::own_f32_panels())) model.set_packed_matmuls(true);
}

}  // namespace

Tensor KvCache::keys(int64_t layer, int64_t heads) const {
  ROFORMER_CHECK(layer >= 0 && layer < static_cast<int64_t>(state_->layers.size()), "kv cache: no such layer");
  return cache_to_bhsd(state_->layers[layer], false, heads);
}
Tensor KvCache::values(int64_t layer, int64_t heads) const {
  ROFORMER_CHECK(layer >= 0 && layer < static_cast<int64_t>(state_->layers.size()), "kv cache: no such layer");
  return cache_to_bhsd(state_->layers[layer], true, heads);
}

RoFormerModel::RoFormerModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RoFormerModel::RoFormerModel(RoFormerModel&&) noexcept = default;
RoFormerModel& RoFormerModel::operator=(RoFormerModel&&) noexcept = default;
RoFormerModel::~RoFormerModel() = default;

const RoFormerConfig& RoFormerModel::config() const { return impl_->config; }
Task RoFormerModel::task() const { return impl_->task; }

RoFormerModel RoFormerModel::from_tensors(const RoFormerConfig& config, Task task,
                                          const std::map<std::string, Tensor>& tensors, bool ignore_other_heads) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->task = task;
  impl->weights = models::bind_weights(config, task, tensors, ignore_other_heads);
  return RoFormerModel(std::move(impl));
}

RoFormerModel RoFormerModel::from_pretrained(const std::string& path, const LoadOptions& options) {
  namespace fs = std::filesystem;
  ROFORMER_CHECK(fs::is_directory(path), "model: " + path + " is not a directory");
  RoFormerConfig config = RoFormerConfig::from_file((fs::path(path) / "config.json").string());
  if (!options.config_overrides.empty()) config = config.with_overrides(options.config_overrides);
  Task task = Task::Base;
  if (!config.architectures.empty()) task = task_from_name(config.architectures.front());
  if (config.is_decoder && config.architectures.empty()) task = Task::CausalLM;
  bool ignore_other_heads = false;
  if (options.task && *options.task != task) {
    task = *options.task;
    ignore_other_heads = true;
  }
  const auto tensors = models::load_tensor_files(options.weights_file.empty() ? path : options.weights_file);
  // A checkpoint of a head model read as the base model keeps its "roformer." prefix.
  if (task == Task::Base && tensors.count("roformer.embeddings.word_embeddings.weight")) {
    std::map<std::string, Tensor> stripped;
    for (const auto& [name, t] : tensors)
      if (name.starts_with("roformer.")) stripped.emplace(name.substr(9), t);
    RoFormerModel model = from_tensors(config, task, stripped, true);
    apply_precision(model, options);
    return model;
  }
  RoFormerModel model = from_tensors(config, task, tensors, ignore_other_heads);
  apply_precision(model, options);
  return model;
}

void RoFormerModel::set_bf16_matmuls(bool on, std::string_view kernel) {
  models::set_packed_matmuls(impl_->task, impl_->weights,
                             on ? std::optional(kernels::MatmulPrecision::Bf16) : std::nullopt,
                             kernels::parse_bf16_kernel(kernel));
}

bool RoFormerModel::bf16_matmuls() const {
  return models::packed_matmuls(impl_->weights) == kernels::MatmulPrecision::Bf16;
}

void RoFormerModel::set_int8_matmuls(bool on) {
  models::set_packed_matmuls(impl_->task, impl_->weights,
                             on ? std::optional(kernels::MatmulPrecision::Int8) : std::nullopt);
}

bool RoFormerModel::int8_matmuls() const {
  return models::packed_matmuls(impl_->weights) == kernels::MatmulPrecision::Int8;
}

void RoFormerModel::set_packed_matmuls(bool on) {
  models::set_packed_matmuls(impl_->task, impl_->weights,
                             on ? std::optional(kernels::MatmulPrecision::F32) : std::nullopt);
}

bool RoFormerModel::packed_matmuls() const {
  return models::packed_matmuls(impl_->weights) == kernels::MatmulPrecision::F32;
}

std::vector<std::pair<std::string, Tensor>> RoFormerModel::named_tensors() const {
  return models::state_dict(impl_->config, impl_->task, impl_->weights);
}

void RoFormerModel::save_pretrained(const std::string& dir) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  ROFORMER_CHECK(!ec && fs::is_directory(dir), "save: cannot create directory " + dir);
  RoFormerConfig c = impl_->config;
  c.architectures = {std::string(task_name(impl_->task))};
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  {
    const std::string tmp = cfg_path + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << c.to_json_text();
    out.close();
    ROFORMER_CHECK(static_cast<bool>(out), "save: cannot write " + tmp);
    fs::rename(tmp, cfg_path, ec);
    ROFORMER_CHECK(!ec, "save: cannot rename " + tmp);
  }
  save_safetensors((fs::path(dir) / "model.safetensors").string(), named_tensors());
}

namespace {

struct CheckedBatch {
  Tensor ids, types, mask;  // contiguous I64 (rows, T)
  int64_t rows = 0, length = 0, choices = 1;
};

Tensor as_rows(const Tensor& t, const Shape& expect, const char* what) {
  ROFORMER_CHECK(t.dtype() == DType::I64, std::string("forward: ") + what + " must be int64");
  ROFORMER_CHECK(t.shape() == expect, std::string("forward: ") + what + " has shape " + shape_str(t.shape()) + ", expected " +
                                 shape_str(expect));
  return t.is_contiguous() ? t : t.to(DType::I64);
}

CheckedBatch check_batch(const RoFormerConfig& c, Task task, const Batch& batch) {
  CheckedBatch cb;
  const Tensor& ids = batch.input_ids;
  ROFORMER_CHECK(ids.defined() && ids.dtype() == DType::I64, "forward: input_ids must be an int64 tensor");
  if (task == Task::MultipleChoice) {
    ROFORMER_CHECK(ids.dim() == 3, "forward: multiple choice input_ids must be (batch, choices, length), got " +
                              shape_str(ids.shape()));
    cb.choices = ids.size(1);
  } else {
    ROFORMER_CHECK(ids.dim() == 2, "forward: input_ids must be (batch, length), got " + shape_str(ids.shape()));
  }
  const Shape shape = ids.shape();
  cb.length = shape.back();
  cb.rows = ids.numel() / std::max<int64_t>(cb.length, 1);
  ROFORMER_CHECK(cb.rows > 0 && cb.length > 0, "forward: empty input (shape " + shape_str(shape) + ")");
  cb.ids = as_rows(ids, shape, "input_ids").reshape({cb.rows, cb.length});
  const int64_t* p = cb.ids.data<int64_t>();
  for (int64_t i = 0; i < cb.ids.numel(); ++i)
    ROFORMER_CHECK(p[i] >= 0 && p[i] < c.vocab_size, "forward: input id " + std::to_string(p[i]) + " outside the vocabulary [0, " +
                                                std::to_string(c.vocab_size) + ")");
  if (batch.token_type_ids.defined() && batch.token_type_ids.numel() > 0) {
    cb.types = as_rows(batch.token_type_ids, shape, "token_type_ids").reshape({cb.rows, cb.length});
    const int64_t* t = cb.types.data<int64_t>();
    for (int64_t i = 0; i < cb.types.numel(); ++i)
      ROFORMER_CHECK(t[i] >= 0 && t[i] < c.type_vocab_size, "forward: token type " + std::to_string(t[i]) + " out of range");
  }
  return cb;
}

}  // namespace

ModelOutput RoFormerModel::forward(const Batch& batch, const ForwardOptions& options, const ExecContext& ctx,
                                   KvCache* cache) const {
  const RoFormerConfig& c = impl_->config;
  ROFORMER_CHECK(options.logits_to_keep >= 0, "forward: logits_to_keep must be >= 0");
  ROFORMER_CHECK(options.logits_to_keep == 0 || impl_->task == Task::MaskedLM || impl_->task == Task::CausalLM,
                 "forward: logits_to_keep applies to the language-model heads, not to " +
                     std::string(task_name(impl_->task)));
  CheckedBatch cb = check_batch(c, impl_->task, batch);
  const int64_t B = cb.rows, T = cb.length;
  ROFORMER_CHECK(cache == nullptr || c.is_decoder, "forward: a KV cache needs a decoder model (is_decoder: true)");
  KvCache::State* state = cache ? &cache->state() : nullptr;
  const int64_t past = state ? state->length : 0;
  if (state && past > 0) ROFORMER_CHECK(state->batch == B, "forward: the batch size changed while decoding with a cache");

  // Key padding flags over past + new positions.
  const int64_t Tk = past + T;
  std::vector<uint8_t> valid(static_cast<std::size_t>(B * Tk), 1);
  if (state && past > 0) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < past; ++j) valid[b * Tk + j] = state->key_valid[b * past + j];
  }
  if (batch.attention_mask.defined() && batch.attention_mask.numel() > 0) {
    const Tensor& m = batch.attention_mask;
    ROFORMER_CHECK(m.dtype() == DType::I64, "forward: attention_mask must be int64");
    const bool covers_all = m.dim() == 2 && m.size(0) == B && m.size(1) == Tk && past > 0;
    Tensor mm = covers_all ? (m.is_contiguous() ? m : m.to(DType::I64))
                           : as_rows(m, batch.input_ids.shape(), "attention_mask").reshape({B, T});
    const int64_t* mp = mm.data<int64_t>();
    const int64_t width = covers_all ? Tk : T;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < width; ++j) {
        const int64_t v = mp[b * width + j];
        ROFORMER_CHECK(v == 0 || v == 1, "forward: attention_mask values must be 0 or 1");
        valid[b * Tk + (covers_all ? j : past + j)] = static_cast<uint8_t>(v);
      }
  }

  ModelOutput out;
  Tensor positions = Tensor::zeros({T}, DType::I64);
  for (int64_t t = 0; t < T; ++t) positions.data<int64_t>()[t] = past + t;
  if (Tk > c.max_position_embeddings) {
    out.warnings.push_back("input of " + std::to_string(Tk) + " positions exceeds max_position_embeddings " +
                           std::to_string(c.max_position_embeddings) +
                           "; RoPE extends past it, but the model was not trained that long");
  }

  models::EncoderInput in;
  in.input_ids = cb.ids.data<int64_t>();
  in.token_type_ids = cb.types.defined() && cb.types.numel() > 0 ? cb.types.data<int64_t>() : nullptr;
  in.batch = B;
  in.length = T;
  in.positions = positions;
  in.mask.key_valid = valid.data();
  in.mask.key_len = Tk;
  in.mask.causal = c.is_decoder;

  // skip_padding: rows whose mask is 1…1 0…0 run packed, unless the head
  // reads the padding or something asks for the padded layout itself.
  const bool skip_padding = options.skip_padding && !models::head_reads_padding(c, impl_->task);
  bool zero_padding = skip_padding;
  if (skip_padding && state == nullptr && !options.hidden_states && !options.attentions &&
      c.attention_type == "softmax" && nn::attention_runs_fused(ctx)) {
    in.sequence_starts = models::packed_row_starts(valid.data(), B, T);
    zero_padding = in.sequence_starts.empty();  // the packed forward leaves zeros there itself
  }

  if (state && past == 0) {  // a new sequence, in a fresh or cleared cache
    state->layers.resize(static_cast<std::size_t>(c.num_hidden_layers));
    state->batch = B;
  }
  if (state)
    for (nn::LayerKvCache& layer : state->layers) layer.min_capacity = state->reserved;
  out.last_hidden_state =
      models::encoder_forward(c, impl_->weights, in, state ? &state->layers : nullptr, options, out, ctx);
  if (state) {
    state->key_valid = valid;
    state->length = Tk;
  }
  if (zero_padding) {
    const int64_t H = out.last_hidden_state.size(2);
    float* h = out.last_hidden_state.data<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        if (valid[b * Tk + past + t] == 0) std::fill_n(h + (b * T + t) * H, H, 0.0f);
  }
  models::heads_forward(c, impl_->task, impl_->weights, out.last_hidden_state, cb.choices, options.logits_to_keep,
                        out, ctx);
  return out;
}

}  // namespace roformer

// The MLM pre-training job: data preparation, the training loop,
// evaluation, checkpoints and resumption.
#include "roformer/pretrain.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "roformer/dataset.h"
#include "roformer/error.h"
#include "roformer/mlm_batches.h"
#include "roformer/model.h"
#include "roformer/optim.h"
#include "roformer/safetensors.h"
#include "roformer/sequence_packing.h"
#include "roformer/tokenizer.h"
#include "roformer/training.h"
#include "roformer/wordpiece_trainer.h"
#include "train/atomic_file.h"
#include "train/job_support.h"

namespace roformer {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json options_to_json(const PretrainOptions& o) {
  return json{{"objective", o.objective},     {"train_file", o.train_file},   {"valid_file", o.valid_file},
              {"vocab_file", o.vocab_file},   {"vocab_size", o.vocab_size},
              {"whole_word_masking", o.whole_word_masking},
              {"hidden_size", o.hidden_size}, {"num_layers", o.num_layers},
              {"num_heads", o.num_heads},     {"intermediate_size", o.intermediate_size},
              {"embedding_size", o.embedding_size}, {"hidden_act", o.hidden_act},
              {"dropout", o.dropout},         {"rotary_value", o.rotary_value},
              {"position_embedding_type", o.position_embedding_type}, {"rope_theta", o.rope_theta},
              {"max_position_embeddings", o.max_position_embeddings}, {"attention_type", o.attention_type},
              {"linear_feature_map", o.linear_feature_map},
              {"seq_len", o.seq_len},         {"batch_size", o.batch_size},
              {"accumulation", o.accumulation}, {"steps", o.steps},
              {"warmup_steps", o.warmup_steps}, {"schedule", o.schedule},
              {"lr", o.lr},                   {"weight_decay", o.weight_decay},
              {"clip_norm", o.clip_norm},     {"seed", o.seed},
              {"threads", o.threads},         {"gemm", o.gemm},
              {"precision", o.precision},     {"fp32_attention", o.fp32_attention},
              {"keep_padding", o.keep_padding},
              {"log_every", o.log_every},
              {"eval_every", o.eval_every},   {"eval_batches", o.eval_batches},
              {"save_every", o.save_every},   {"out_dir", o.out_dir},
              {"resume", o.resume},           {"max_minutes", o.max_minutes},
              {"stop_at_step", o.stop_at_step}};
}

void validate(const PretrainOptions& o) {
  ROFORMER_CHECK(o.objective == "mlm" || o.objective == "causal", "pretrain: objective must be mlm or causal, not '" + o.objective + "'");
  ROFORMER_CHECK(o.steps >= 1, "pretrain: steps must be at least 1");
  ROFORMER_CHECK(o.batch_size >= 1 && o.accumulation >= 1, "pretrain: batch_size and accumulation must be at least 1");
  ROFORMER_CHECK(o.seq_len >= 8 && o.seq_len <= 65536, "pretrain: seq_len must be in [8, 65536]");
  ROFORMER_CHECK(o.lr > 0 && o.weight_decay >= 0 && o.clip_norm >= 0, "pretrain: lr must be positive, weight_decay and clip_norm >= 0");
  ROFORMER_CHECK(o.warmup_steps >= 0 && o.warmup_steps <= o.steps, "pretrain: warmup_steps must be in [0, steps]");
  ROFORMER_CHECK(o.dropout >= 0 && o.dropout < 1, "pretrain: dropout must be in [0, 1)");
  ROFORMER_CHECK(o.threads >= 1, "pretrain: threads must be at least 1");
  parse_gemm_backend(o.gemm);  // throws on an unknown name
  parse_product_precision(o.precision);
  ROFORMER_CHECK(o.vocab_size >= 100 || !o.vocab_file.empty(), "pretrain: vocab_size must be at least 100");
  ROFORMER_CHECK(!o.out_dir.empty(), "pretrain: out_dir is empty");
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ROFORMER_CHECK(static_cast<bool>(in), "cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The checkpoint directory `latest` names: one line "checkpoint-N", as the
// run writes it; anything else (an empty or edited file, another path) is refused
// rather than followed.
std::string checkpoint_named_by(const fs::path& latest_file) {
  std::string name = read_text(latest_file.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
  const std::string prefix = "checkpoint-";
  const bool ok = name.size() > prefix.size() && name.starts_with(prefix) &&
                  name.find_first_not_of("0123456789", prefix.size()) == std::string::npos;
  ROFORMER_CHECK(ok, "pretrain: " + latest_file.string() + " should name a checkpoint directory (checkpoint-N), not '" +
                         name.substr(0, 80) + "'");
  return name;
}

// tokenizer_config.json for the lower-casing BERT-style WordPiece we train.
const char* kTokenizerConfig = R"({
  "tokenizer_class": "BertTokenizer",
  "do_lower_case": true,
  "tokenize_chinese_chars": true,
  "strip_accents": null,
  "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"
}
)";

struct Evaluation {
  double loss = 0, accuracy = 0;
};

Evaluation evaluate(TrainableRoFormer& model, const PackedBlocks& blocks, const MlmMasker& masker, const PretrainOptions& o,
                    const ExecContext& ctx) {
  // The same batches every time: a fresh, unshuffled batcher with a fixed seed.
  MlmBatcher batcher(blocks, masker, o.seed ^ 0x56414C4944ull, false, o.objective == "causal");
  const int64_t available = (blocks.size() + o.batch_size - 1) / o.batch_size;
  const int64_t n = o.eval_batches > 0 ? std::min(o.eval_batches, available) : available;
  double loss_sum = 0;
  int64_t predicted = 0, correct = 0;
  MlmBatch batch;
  for (int64_t i = 0; i < n; ++i) {
    batcher.next(std::min(o.batch_size, blocks.size()), batch);
    if (batch.predictions == 0) continue;
    const TrainStep s = model.evaluate(batch.model_batch(), TrainLabels{batch.labels_tensor(), {}, {}}, ctx);
    loss_sum += s.loss * static_cast<double>(s.examples);
    predicted += s.examples;
    correct += s.correct;
  }
  ROFORMER_CHECK(predicted > 0, "pretrain: the validation text gave no masked tokens");
  return Evaluation{loss_sum / static_cast<double>(predicted), static_cast<double>(correct) / static_cast<double>(predicted)};
}

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60));
  else std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

}  // namespace

std::string pretrain_options_to_json(const PretrainOptions& o) { return options_to_json(o).dump(2); }

PretrainOptions pretrain_options_from_json(const std::string& text, PretrainOptions o) {
  const json merged = train::merge_options(text, options_to_json(o), "pretrain config");
  try {
#define ROFORMER_READ(field) o.field = merged.at(#field).get<decltype(o.field)>()
    ROFORMER_READ(objective); ROFORMER_READ(train_file); ROFORMER_READ(valid_file); ROFORMER_READ(vocab_file); ROFORMER_READ(vocab_size);
    ROFORMER_READ(whole_word_masking); ROFORMER_READ(hidden_size); ROFORMER_READ(num_layers); ROFORMER_READ(num_heads);
    ROFORMER_READ(intermediate_size); ROFORMER_READ(embedding_size); ROFORMER_READ(hidden_act); ROFORMER_READ(dropout);
    ROFORMER_READ(rotary_value); ROFORMER_READ(position_embedding_type); ROFORMER_READ(rope_theta);
    ROFORMER_READ(max_position_embeddings); ROFORMER_READ(attention_type); ROFORMER_READ(linear_feature_map); ROFORMER_READ(seq_len); ROFORMER_READ(batch_size); ROFORMER_READ(accumulation);
    ROFORMER_READ(steps); ROFORMER_READ(warmup_steps); ROFORMER_READ(schedule); ROFORMER_READ(lr);
    ROFORMER_READ(weight_decay); ROFORMER_READ(clip_norm); ROFORMER_READ(seed); ROFORMER_READ(threads); ROFORMER_READ(gemm); ROFORMER_READ(precision);
    ROFORMER_READ(fp32_attention); ROFORMER_READ(keep_padding);
    ROFORMER_READ(log_every); ROFORMER_READ(eval_every); ROFORMER_READ(eval_batches); ROFORMER_READ(save_every);
    ROFORMER_READ(out_dir); ROFORMER_READ(resume); ROFORMER_READ(max_minutes);
    ROFORMER_READ(stop_at_step);
#undef ROFORMER_READ
  } catch (const json::exception& e) {
    throw Error(std::string("pretrain config: a value has the wrong type: ") + e.what());
  }
  return o;
}

PretrainResult pretrain(const PretrainOptions& o, const PretrainCallbacks& cb) {
  validate(o);
  auto log = [&](const std::string& line) {
    if (cb.on_log) cb.on_log(line);
  };
  const auto start = std::chrono::steady_clock::now();
  ExecContext ctx{o.threads, best_isa(), parse_gemm_backend(o.gemm), parse_product_precision(o.precision)};
  ctx.bf16_attention = !o.fp32_attention;
  const fs::path out(o.out_dir), work = out / "work";
  fs::create_directories(work);
  const std::string metrics_path = (out / "metrics.jsonl").string();
  const fs::path latest_file = out / "latest";
  const bool resuming = o.resume && fs::exists(latest_file);
  ROFORMER_CHECK(!o.resume || resuming, "pretrain: --resume given but " + latest_file.string() + " does not exist");
  if (!resuming) fs::remove(metrics_path);

  // Vocabulary: given, kept from the run being resumed, or trained on the training text.
  const std::string vocab_path = (work / "vocab.txt").string();
  if (!o.vocab_file.empty()) {
    fs::copy_file(o.vocab_file, vocab_path, fs::copy_options::overwrite_existing);
  } else if (!(resuming && fs::exists(vocab_path))) {
    WordPieceTrainerOptions wo;
    wo.vocab_size = o.vocab_size;
    WordPieceTrainer trainer(wo);
    trainer.add_file(o.train_file);
    const auto tokens = trainer.train();
    write_vocab_file(vocab_path, tokens);
    log("trained a WordPiece vocabulary of " + std::to_string(tokens.size()) + " tokens on " + o.train_file);
  }
  const Tokenizer tokenizer(Vocab::from_file(vocab_path), TokenizerOptions{});
  const Sha256Digest vocab_sha = sha256_file(vocab_path);

  // Data: tokenized once into the binary format, packed into blocks.
  const std::string train_ds = (work / "train.rfds").string(), valid_ds = (work / "valid.rfds").string();
  const EncodeStats train_stats = encode_corpus(tokenizer, vocab_sha, o.train_file, train_ds, o.threads);
  encode_corpus(tokenizer, vocab_sha, o.valid_file, valid_ds, o.threads);
  const TokenDataset train_data = TokenDataset::open(train_ds), valid_data = TokenDataset::open(valid_ds);
  auto all_documents = [](const TokenDataset& d) {
    std::vector<int64_t> v(static_cast<std::size_t>(d.documents()));
    for (int64_t i = 0; i < d.documents(); ++i) v[static_cast<std::size_t>(i)] = i;
    return v;
  };
  PackingOptions packing;
  packing.seq_len = o.seq_len;
  packing = with_special_ids(packing, tokenizer);
  const PackedBlocks train_blocks(train_data, all_documents(train_data), packing);
  const PackedBlocks valid_blocks(valid_data, all_documents(valid_data), packing);
  ROFORMER_CHECK(train_blocks.size() > 0 && valid_blocks.size() > 0, "pretrain: the training or validation text is empty");
  log("data: " + std::to_string(train_stats.tokens) + " training tokens in " + std::to_string(train_blocks.size()) +
      " blocks of " + std::to_string(o.seq_len) + ", " + std::to_string(valid_blocks.size()) + " validation blocks");
  MlmMaskingOptions mo;
  mo.whole_word = o.whole_word_masking;
  const MlmMasker masker(mlm_vocab(tokenizer), mo);
  const bool causal = o.objective == "causal";
  MlmBatcher batcher(train_blocks, masker, o.seed, true, causal);

  // Model: fresh, or the latest checkpoint.
  RoFormerConfig config;
  config.vocab_size = tokenizer.id_space();
  config.hidden_size = o.hidden_size;
  config.num_hidden_layers = o.num_layers;
  config.num_attention_heads = o.num_heads;
  config.intermediate_size = o.intermediate_size;
  config.embedding_size = o.embedding_size;
  config.hidden_act = o.hidden_act;
  config.hidden_dropout_prob = o.dropout;
  config.attention_probs_dropout_prob = o.dropout;
  config.max_position_embeddings =
      o.max_position_embeddings > 0 ? o.max_position_embeddings : std::max<int64_t>(512, o.seq_len);
  config.rotary_value = o.rotary_value;
  config.position_embedding_type = o.position_embedding_type;
  config.rope_theta = o.rope_theta;
  config.attention_type = o.attention_type;
  config.linear_feature_map = o.linear_feature_map;
  config.validate();
  config.pad_token_id = tokenizer.pad_id();
  config.is_decoder = causal;
  config.architectures = {causal ? "RoFormerForCausalLM" : "RoFormerForMaskedLM"};
  config.id2label = {{0, "LABEL_0"}, {1, "LABEL_1"}};
  std::string resume_dir;
  if (resuming) resume_dir = (out / checkpoint_named_by(latest_file)).string();
  TrainableRoFormer model(resuming ? RoFormerModel::from_pretrained(resume_dir)
                                   : RoFormerModel::random_init(config, causal ? Task::CausalLM : Task::MaskedLM, o.seed));
  model.set_dropout(o.dropout > 0, o.seed);
  model.set_skip_padding(!o.keep_padding);
  std::vector<Parameter> params = train::optimizer_parameters(model);
  int64_t parameter_count = 0;
  for (const auto& p : params) parameter_count += p.size;
  AdamW adamw = train::bert_adamw(params, o.lr, o.weight_decay, ctx);
  LrScheduleOptions so;
  so.decay = parse_lr_decay(o.schedule);
  so.base_lr = o.lr;
  so.warmup_steps = o.warmup_steps;
  so.total_steps = o.steps;
  const LrSchedule schedule(so);

  int64_t step = 0;
  if (resuming) {
    SafeTensors state = SafeTensors::open(resume_dir + "/trainer_state.safetensors");
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& n : state.names()) tensors.emplace_back(n, state.get(n));
    adamw.load_state(tensors);
    const std::string state_file = resume_dir + "/trainer_state.json";
    std::string data_position;
    try {  // the library's own messages name neither the file nor the run
      const json js = json::parse(read_text(state_file));
      step = js.at("step").get<int64_t>();
      const auto dropout_step = js.at("dropout_step").get<int64_t>();
      ROFORMER_CHECK(step >= 0 && dropout_step >= 0, "pretrain: " + state_file + ": negative step count");
      model.set_dropout_step(static_cast<uint64_t>(dropout_step));
      data_position = js.at("data_position").get<std::string>();
    } catch (const json::exception& e) {
      throw Error("pretrain: cannot resume from " + state_file + ": " + e.what());
    }
    batcher.restore(IteratorState::parse(data_position));
    ROFORMER_CHECK(adamw.step_count() == step, "pretrain: the checkpoint's optimizer step disagrees with its trainer step");
    log("resumed from " + resume_dir + " at step " + std::to_string(step));
  }
  log("model: " + std::to_string(o.num_layers) + " layers x " + std::to_string(o.hidden_size) + " hidden, " +
      std::to_string(parameter_count) + " parameters; " + std::to_string(o.steps) + " steps of " +
      std::to_string(o.batch_size * o.accumulation) + " x " + std::to_string(o.seq_len) + " tokens; " +
      std::to_string(ctx.threads) + " thread(s), " + std::string(isa_name(ctx.isa)) + " kernels, " +
      std::string(gemm_backend_name(ctx.gemm)) + " products in " +
      product_precision_label(ctx.bf16_products, ctx.isa, ctx.bf16_attention));

  auto save = [&](const std::string& name) {
    const fs::path dir = out / name, tmp = out / (name + ".tmp");
    fs::remove_all(tmp);
    RoFormerModel snapshot = model.snapshot();
    snapshot.save_pretrained(tmp.string());
    fs::copy_file(vocab_path, tmp / "vocab.txt");
    data::write_file_atomically((tmp / "tokenizer_config.json").string(), kTokenizerConfig);
    save_safetensors((tmp / "trainer_state.safetensors").string(), adamw.state());
    const json js{{"step", step},
                  {"dropout_step", model.dropout_step()},
                  {"data_position", batcher.state().to_string()},
                  {"options", options_to_json(o)}};
    data::write_file_atomically((tmp / "trainer_state.json").string(), js.dump(2) + "\n");
    // The directory appears complete or not at all; `latest` moves only after.
    fs::remove_all(dir);
    fs::rename(tmp, dir);
    data::write_file_atomically(latest_file.string(), name + "\n");
    return dir.string();
  };

  MlmBatch batch;
  double interval_loss = 0, last_train_loss = 0;
  int64_t interval_steps = 0, interval_tokens = 0;
  auto interval_start = std::chrono::steady_clock::now();
  const int64_t first_step = step;
  PretrainResult result;
  while (step < o.steps) {
    model.zero_grad();
    double loss = 0;
    for (int64_t micro = 0; micro < o.accumulation; ++micro) {
      batcher.next(o.batch_size, batch);
      if (batch.predictions == 0) continue;
      const TrainStep s = model.forward_backward(batch.model_batch(), TrainLabels{batch.labels_tensor(), {}, {}}, ctx,
                                                 1.0f / static_cast<float>(o.accumulation));
      loss += s.loss / static_cast<double>(o.accumulation);
      for (int64_t m : batch.attention_mask) interval_tokens += m;
    }
    const double norm = o.clip_norm > 0 ? clip_grad_norm(params, o.clip_norm) : grad_norm(params);
    ROFORMER_CHECK(std::isfinite(loss) && std::isfinite(norm), "pretrain: the loss or gradient became non-finite at step " +
                                                          std::to_string(step) + "; lower the learning rate");
    const double lr = schedule.lr(step);
    adamw.step(lr);
    ++step;
    interval_loss += loss;
    ++interval_steps;

    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double interval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - interval_start).count();
    const double tps = interval_s > 0 ? static_cast<double>(interval_tokens) / interval_s : 0;
    if (cb.on_progress) {
      const double per_step = elapsed / static_cast<double>(step - first_step);
      cb.on_progress(PretrainProgress{step, o.steps, loss, lr, norm, tps, elapsed,
                                      per_step * static_cast<double>(o.steps - step)});
    }
    const bool out_of_time = (o.max_minutes > 0 && elapsed > o.max_minutes * 60) || (o.stop_at_step > 0 && step >= o.stop_at_step);
    if (step % std::max<int64_t>(1, o.log_every) == 0 || step == o.steps || out_of_time) {
      last_train_loss = interval_loss / static_cast<double>(interval_steps);
      train::append_json_line(metrics_path, json{{"step", step}, {"loss", last_train_loss}, {"lr", lr}, {"grad_norm", norm},
                                     {"tokens_per_second", tps}, {"elapsed_seconds", elapsed}});
      interval_loss = 0;
      interval_steps = 0;
      interval_tokens = 0;
      interval_start = std::chrono::steady_clock::now();
    }
    if ((o.eval_every > 0 && step % o.eval_every == 0) || step == o.steps || out_of_time) {
      const Evaluation ev = evaluate(model, valid_blocks, masker, o, ctx);
      train::append_json_line(metrics_path, json{{"step", step}, {"valid_loss", ev.loss}, {"valid_perplexity", std::exp(ev.loss)},
                                     {"valid_accuracy", ev.accuracy}});
      char line[160];
      std::snprintf(line, sizeof line, causal ? "step %lld: valid next-token loss %.4f (perplexity %.1f), accuracy %.1f%%" : "step %lld: valid MLM loss %.4f (perplexity %.1f), accuracy %.1f%%",
                    static_cast<long long>(step), ev.loss, std::exp(ev.loss), 100 * ev.accuracy);
      log(line);
      result.valid_loss = ev.loss;
      result.valid_accuracy = ev.accuracy;
    }
    if (o.save_every > 0 && step % o.save_every == 0 && step != o.steps) save("checkpoint-" + std::to_string(step));
    if (out_of_time) {
      log("stopping at step " + std::to_string(step) + " after " + format_duration(elapsed) + "; --resume continues");
      break;
    }
  }
  const std::string last = save("checkpoint-" + std::to_string(step));
  // The final model as a plain HF directory (no training state).
  const fs::path final_dir = out / "final";
  fs::remove_all(final_dir);
  fs::create_directories(final_dir);
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
    fs::copy_file(fs::path(last) / f, final_dir / f);
  result.steps = step;
  result.train_loss = last_train_loss;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.model_dir = final_dir.string();
  return result;
}

}  // namespace roformer

// The translation training job and text-level translation.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "roformer/bleu.h"
#include "roformer/checkpoint_average.h"
#include "roformer/data_rng.h"
#include "roformer/error.h"
#include "roformer/optim.h"
#include "roformer/parallel_corpus.h"
#include "roformer/translation.h"
#include "roformer/wordpiece_trainer.h"
#include "train/atomic_file.h"
#include "train/job_support.h"

namespace roformer {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<int64_t> translation_ids(const Tokenizer& tokenizer, const std::string& text) {
  std::vector<int64_t> ids = tokenizer.tokenize_to_ids(text);
  ROFORMER_CHECK(!ids.empty(), "the text has no tokens");
  return ids;
}

std::vector<std::string> translate_lines(const Seq2SeqModel& model, const Tokenizer& tokenizer,
                                         const std::vector<std::string>& lines, const DecodeOptions& decode,
                                         int64_t batch_size, const ExecContext& ctx) {
  ROFORMER_CHECK(batch_size >= 1, "translate: batch size must be at least 1");
  ROFORMER_CHECK(tokenizer.id_space() <= model.config().src_vocab_size,
                 "translate: the tokenizer has " + std::to_string(tokenizer.id_space()) +
                     " ids but the model's source vocabulary only " + std::to_string(model.config().src_vocab_size));
  std::vector<std::string> out;
  out.reserve(lines.size());
  for (std::size_t first = 0; first < lines.size(); first += static_cast<std::size_t>(batch_size)) {
    const std::size_t last = std::min(lines.size(), first + static_cast<std::size_t>(batch_size));
    std::vector<std::vector<int64_t>> sources;
    for (std::size_t i = first; i < last; ++i) {
      try {
        sources.push_back(translation_ids(tokenizer, lines[i]));
      } catch (const Error& e) {
        throw Error("input line " + std::to_string(i + 1) + ": " + e.what());
      }
    }
    for (const Hypothesis& h : beam_search(model, sources, decode, ctx)) out.push_back(tokenizer.decode(h.tokens, true));
  }
  return out;
}

namespace {

json options_to_json(const TranslationTrainOptions& o) {
  return json{{"train_file", o.train_file}, {"valid_file", o.valid_file}, {"valid_fraction", o.valid_fraction},
              {"vocab_file", o.vocab_file}, {"vocab_size", o.vocab_size}, {"lowercase", o.lowercase},
              {"max_source_tokens", o.max_source_tokens}, {"max_target_tokens", o.max_target_tokens},
              {"d_model", o.d_model}, {"encoder_layers", o.encoder_layers}, {"decoder_layers", o.decoder_layers},
              {"num_heads", o.num_heads}, {"ffn_dim", o.ffn_dim}, {"activation", o.activation},
              {"normalize_before", o.normalize_before}, {"position_encoding", o.position_encoding},
              {"rope_theta", o.rope_theta}, {"share_all_embeddings", o.share_all_embeddings},
              {"share_decoder_input_output_embed", o.share_decoder_input_output_embed}, {"dropout", o.dropout},
              {"batch_size", o.batch_size}, {"steps", o.steps}, {"lr", o.lr}, {"warmup_steps", o.warmup_steps},
              {"warmup_init_lr", o.warmup_init_lr}, {"adam_beta1", o.adam_beta1}, {"adam_beta2", o.adam_beta2},
              {"adam_eps", o.adam_eps}, {"weight_decay", o.weight_decay}, {"clip_norm", o.clip_norm},
              {"label_smoothing", o.label_smoothing}, {"seed", o.seed}, {"threads", o.threads},
              {"log_every", o.log_every}, {"eval_every", o.eval_every}, {"save_every", o.save_every},
              {"average_last", o.average_last}, {"out_dir", o.out_dir}, {"bleu_sentences", o.bleu_sentences},
              {"beam", o.beam}, {"lenpen", o.lenpen}, {"max_len_a", o.max_len_a}, {"max_len_b", o.max_len_b}};
}

void validate(const TranslationTrainOptions& o) {
  ROFORMER_CHECK(!o.train_file.empty(), "train-translation: train_file is empty");
  ROFORMER_CHECK(o.valid_fraction > 0 && o.valid_fraction < 1, "train-translation: valid_fraction must be in (0, 1)");
  ROFORMER_CHECK(o.vocab_size >= 50 || !o.vocab_file.empty(), "train-translation: vocab_size must be at least 50");
  ROFORMER_CHECK(o.max_source_tokens >= 1 && o.max_target_tokens >= 1, "train-translation: max token counts must be >= 1");
  ROFORMER_CHECK(o.steps >= 1 && o.batch_size >= 1, "train-translation: steps and batch_size must be at least 1");
  ROFORMER_CHECK(o.lr > 0 && o.warmup_steps >= 0 && o.warmup_init_lr >= 0 && o.warmup_init_lr <= o.lr,
                 "train-translation: lr must be positive, warmup_steps >= 0, 0 <= warmup_init_lr <= lr");
  ROFORMER_CHECK(o.adam_beta1 >= 0 && o.adam_beta1 < 1 && o.adam_beta2 >= 0 && o.adam_beta2 < 1 && o.adam_eps > 0,
                 "train-translation: Adam betas must be in [0, 1) and eps positive");
  ROFORMER_CHECK(o.weight_decay >= 0 && o.clip_norm >= 0, "train-translation: weight_decay and clip_norm must be >= 0");
  ROFORMER_CHECK(o.label_smoothing >= 0 && o.label_smoothing < 1, "train-translation: label_smoothing must be in [0, 1)");
  ROFORMER_CHECK(o.threads >= 1 && o.threads <= 1024, "train-translation: threads must be in [1, 1024]");
  ROFORMER_CHECK(o.average_last >= 0 && o.bleu_sentences >= 0 && o.beam >= 1,
                 "train-translation: average_last and bleu_sentences must be >= 0, beam >= 1");
  ROFORMER_CHECK(!o.out_dir.empty(), "train-translation: out_dir is empty");
  ROFORMER_CHECK(std::isfinite(o.lenpen) && std::isfinite(o.max_len_a) && o.max_len_a >= 0 && o.max_len_b >= 0,
                 "train-translation: lenpen must be a number, max_len_a and max_len_b >= 0");
}

// The model the options describe; validated (so a bad model option fails
// before any data is read).
Seq2SeqConfig model_config(const TranslationTrainOptions& o, int64_t vocab, int64_t pad, int64_t bos, int64_t eos) {
  Seq2SeqConfig c;
  c.src_vocab_size = c.tgt_vocab_size = vocab;
  c.d_model = o.d_model;
  c.encoder_layers = o.encoder_layers;
  c.decoder_layers = o.decoder_layers;
  c.num_heads = o.num_heads;
  c.ffn_dim = o.ffn_dim;
  c.activation = o.activation;
  c.normalize_before = o.normalize_before;
  c.position_encoding = o.position_encoding;
  c.rope_theta = o.rope_theta;
  c.share_all_embeddings = o.share_all_embeddings;
  c.share_decoder_input_output_embed = o.share_decoder_input_output_embed;
  c.dropout = o.dropout;
  c.pad_token_id = pad;
  c.bos_token_id = bos;
  c.eos_token_id = eos;
  c.validate();
  return c;
}

// The tokenizer_config.json of the cased or lowercasing WordPiece we train.
std::string tokenizer_config(bool lowercase) {
  return json{{"tokenizer_class", "BertTokenizer"}, {"do_lower_case", lowercase}, {"tokenize_chinese_chars", true},
              {"strip_accents", nullptr}, {"unk_token", "[UNK]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"},
              {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"}}
             .dump(2) + "\n";
}

struct TokenizedPair {
  std::vector<int64_t> src, tgt;
};

std::vector<TokenizedPair> tokenize_pairs(const Tokenizer& tok, const std::vector<SentencePair>& pairs,
                                          const TranslationTrainOptions& o, bool filter, int64_t& skipped) {
  std::vector<TokenizedPair> out;
  skipped = 0;
  for (const SentencePair& p : pairs) {
    TokenizedPair t;
    try {
      t.src = translation_ids(tok, p.source);
      t.tgt = translation_ids(tok, p.target);
    } catch (const Error&) {
      ++skipped;  // a side without any token (e.g. only control characters)
      continue;
    }
    if (filter && (static_cast<int64_t>(t.src.size()) > o.max_source_tokens ||
                   static_cast<int64_t>(t.tgt.size()) > o.max_target_tokens)) {
      ++skipped;
      continue;
    }
    out.push_back(std::move(t));
  }
  return out;
}

// One epoch's batches: a seeded shuffle, then pairs of similar source length
// grouped in windows of 50 batches (less padding), then the batches shuffled.
std::vector<std::vector<std::size_t>> epoch_batches(const std::vector<TokenizedPair>& data, int64_t batch_size,
                                                    DataRng& rng) {
  std::vector<std::size_t> order(data.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  rng.shuffle(order);
  const std::size_t bs = static_cast<std::size_t>(batch_size), window = 50 * bs;
  for (std::size_t w = 0; w < order.size(); w += window) {
    const auto end = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), w + window));
    std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(w), end,
                     [&](std::size_t a, std::size_t b) { return data[a].src.size() < data[b].src.size(); });
  }
  std::vector<std::vector<std::size_t>> batches;
  for (std::size_t i = 0; i < order.size(); i += bs)
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                         order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + bs)));
  rng.shuffle(batches);
  return batches;
}

Seq2SeqBatch make_batch(const std::vector<TokenizedPair>& data, const std::vector<std::size_t>& idx,
                        const Seq2SeqConfig& c) {
  std::vector<std::vector<int64_t>> s, t;
  for (std::size_t i : idx) {
    s.push_back(data[i].src);
    t.push_back(data[i].tgt);
  }
  return make_seq2seq_batch(s, t, c);
}

}  // namespace

std::string translation_options_to_json(const TranslationTrainOptions& o) { return options_to_json(o).dump(2); }

TranslationTrainOptions translation_options_from_json(const std::string& text, TranslationTrainOptions o) {
  const json merged = train::merge_options(text, options_to_json(o), "train-translation config");
  try {
#define ROFORMER_READ(field) o.field = merged.at(#field).get<decltype(o.field)>()
    ROFORMER_READ(train_file); ROFORMER_READ(valid_file); ROFORMER_READ(valid_fraction); ROFORMER_READ(vocab_file);
    ROFORMER_READ(vocab_size); ROFORMER_READ(lowercase); ROFORMER_READ(max_source_tokens); ROFORMER_READ(max_target_tokens);
    ROFORMER_READ(d_model); ROFORMER_READ(encoder_layers); ROFORMER_READ(decoder_layers); ROFORMER_READ(num_heads);
    ROFORMER_READ(ffn_dim); ROFORMER_READ(activation); ROFORMER_READ(normalize_before); ROFORMER_READ(position_encoding);
    ROFORMER_READ(rope_theta); ROFORMER_READ(share_all_embeddings); ROFORMER_READ(share_decoder_input_output_embed);
    ROFORMER_READ(dropout); ROFORMER_READ(batch_size); ROFORMER_READ(steps); ROFORMER_READ(lr); ROFORMER_READ(warmup_steps);
    ROFORMER_READ(warmup_init_lr); ROFORMER_READ(adam_beta1); ROFORMER_READ(adam_beta2); ROFORMER_READ(adam_eps);
    ROFORMER_READ(weight_decay); ROFORMER_READ(clip_norm); ROFORMER_READ(label_smoothing); ROFORMER_READ(seed);
    ROFORMER_READ(threads); ROFORMER_READ(log_every); ROFORMER_READ(eval_every); ROFORMER_READ(save_every);
    ROFORMER_READ(average_last); ROFORMER_READ(out_dir); ROFORMER_READ(bleu_sentences); ROFORMER_READ(beam);
    ROFORMER_READ(lenpen); ROFORMER_READ(max_len_a); ROFORMER_READ(max_len_b);
#undef ROFORMER_READ
  } catch (const json::exception& e) {
    throw Error(std::string("train-translation config: a value has the wrong type: ") + e.what());
  }
  return o;
}

TranslationTrainResult train_translation(const TranslationTrainOptions& o, const PretrainCallbacks& cb) {
  validate(o);
  model_config(o, 100, 0, 2, 3);  // the model options, checked before any work
  auto log = [&](const std::string& line) {
    if (cb.on_log) cb.on_log(line);
  };
  const auto start = std::chrono::steady_clock::now();
  const ExecContext ctx{o.threads, best_isa()};
  const fs::path out(o.out_dir);
  fs::create_directories(out);
  const std::string metrics_path = (out / "metrics.jsonl").string();
  fs::remove(metrics_path);

  // Data: the training file, and a held-out part of it unless a valid file is given.
  ParallelCorpus corpus = read_parallel_tsv(o.train_file);
  std::vector<SentencePair> train_pairs, valid_pairs;
  if (o.valid_file.empty()) {
    SplitOptions so;
    so.valid_fraction = o.valid_fraction;
    so.test_fraction = 0;
    so.seed = o.seed;
    ParallelSplits sp = split_parallel(corpus.pairs, so);
    train_pairs = std::move(sp.train);
    valid_pairs = std::move(sp.valid);
  } else {
    train_pairs = std::move(corpus.pairs);
    valid_pairs = read_parallel_tsv(o.valid_file).pairs;
  }
  ROFORMER_CHECK(!train_pairs.empty() && !valid_pairs.empty(),
                 "train-translation: the training or validation data is empty (" + std::to_string(train_pairs.size()) +
                     " / " + std::to_string(valid_pairs.size()) + " pairs)");

  // One WordPiece vocabulary for both languages.
  const std::string vocab_path = (out / "vocab.txt").string();
  TokenizerOptions topts;
  topts.do_lower_case = o.lowercase;
  if (!o.vocab_file.empty()) {
    fs::copy_file(o.vocab_file, vocab_path, fs::copy_options::overwrite_existing);
  } else {
    WordPieceTrainerOptions wo;
    wo.vocab_size = o.vocab_size;
    wo.tokenizer = topts;
    WordPieceTrainer trainer(wo);
    for (const SentencePair& p : train_pairs) {
      trainer.add_text(p.source);
      trainer.add_text(p.target);
    }
    const auto tokens = trainer.train();
    write_vocab_file(vocab_path, tokens);
    log("trained a shared WordPiece vocabulary of " + std::to_string(tokens.size()) + " tokens on both sides");
  }
  data::write_file_atomically((out / "tokenizer_config.json").string(), tokenizer_config(o.lowercase));
  const Tokenizer tok = Tokenizer::from_pretrained(out.string());
  int64_t skipped_train = 0, skipped_valid = 0;
  const std::vector<TokenizedPair> train = tokenize_pairs(tok, train_pairs, o, true, skipped_train);
  const std::vector<TokenizedPair> valid = tokenize_pairs(tok, valid_pairs, o, false, skipped_valid);
  ROFORMER_CHECK(!train.empty() && !valid.empty(), "train-translation: no pair is left after tokenizing and length filtering");
  log("data: " + std::to_string(train.size()) + " training pairs (" + std::to_string(skipped_train) +
      " left out: too long or no tokens), " + std::to_string(valid.size()) + " validation pairs");

  Seq2SeqConfig c = model_config(o, tok.id_space(), tok.pad_id(), tok.cls_id(), tok.sep_id());

  Seq2SeqTrainer trainer(Seq2SeqModel::random_init(c, o.seed));
  trainer.set_dropout(o.dropout > 0, o.seed);
  std::vector<Parameter> params = trainer.parameters();
  int64_t parameter_count = 0;
  for (const auto& p : params) parameter_count += p.size;
  AdamWOptions ao;
  ao.lr = o.lr;
  ao.beta1 = o.adam_beta1;
  ao.beta2 = o.adam_beta2;
  ao.eps = o.adam_eps;
  ao.weight_decay = o.weight_decay;
  ao.exec = ctx;
  AdamW adam(params, ao);
  LrScheduleOptions so;
  so.decay = LrDecay::InverseSqrt;
  so.base_lr = o.lr;
  so.warmup_steps = o.warmup_steps;
  so.warmup_init_lr = o.warmup_init_lr;
  so.total_steps = o.steps;
  const LrSchedule schedule(so);
  log("model: " + std::to_string(o.encoder_layers) + "+" + std::to_string(o.decoder_layers) + " layers x " +
      std::to_string(o.d_model) + ", " + o.position_encoding + " positions, " + std::to_string(parameter_count) +
      " parameters; " + std::to_string(o.steps) + " steps of " + std::to_string(o.batch_size) + " pairs");

  auto evaluate = [&] {
    LabelSmoothedLoss total;
    for (std::size_t i = 0; i < valid.size(); i += static_cast<std::size_t>(o.batch_size)) {
      std::vector<std::size_t> idx;
      for (std::size_t j = i; j < std::min(valid.size(), i + static_cast<std::size_t>(o.batch_size)); ++j) idx.push_back(j);
      const LabelSmoothedLoss r = trainer.evaluate(make_batch(valid, idx, c), o.label_smoothing, ctx);
      total.loss_sum += r.loss_sum;
      total.nll_sum += r.nll_sum;
      total.tokens += r.tokens;
      total.correct += r.correct;
    }
    return total;
  };
  auto save = [&](const std::string& name) {
    const fs::path dir = out / name, tmp = out / (name + ".tmp");
    fs::remove_all(tmp);
    trainer.model().save_pretrained(tmp.string());
    fs::copy_file(vocab_path, tmp / "vocab.txt");
    fs::copy_file(out / "tokenizer_config.json", tmp / "tokenizer_config.json");
    fs::remove_all(dir);
    fs::rename(tmp, dir);  // the directory appears complete or not at all
    return dir;
  };

  TranslationTrainResult result;
  DataRng rng(derive_seed(o.seed, 0x5432ull));
  std::vector<std::vector<std::size_t>> batches;
  std::size_t next_batch = 0;
  double interval_loss = 0;
  int64_t interval_steps = 0, interval_tokens = 0;
  auto interval_start = std::chrono::steady_clock::now();
  std::vector<std::string> saved_checkpoints;
  for (int64_t step = 0; step < o.steps;) {
    if (next_batch == batches.size()) {
      batches = epoch_batches(train, o.batch_size, rng);
      next_batch = 0;
    }
    const Seq2SeqBatch batch = make_batch(train, batches[next_batch++], c);
    trainer.zero_grad();
    const LabelSmoothedLoss r = trainer.forward_backward(batch, o.label_smoothing, ctx);
    const double norm = o.clip_norm > 0 ? clip_grad_norm(params, o.clip_norm) : grad_norm(params);
    ROFORMER_CHECK(std::isfinite(r.loss()) && std::isfinite(norm),
                   "train-translation: the loss or gradient became non-finite at step " + std::to_string(step) +
                       "; lower the learning rate");
    const double lr = schedule.lr(step);
    adam.step(lr);
    ++step;
    if (step == 1) result.first_loss = r.loss();
    interval_loss += r.loss();
    ++interval_steps;
    interval_tokens += r.tokens;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double interval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - interval_start).count();
    const double tps = interval_s > 0 ? static_cast<double>(interval_tokens) / interval_s : 0;
    if (cb.on_progress)
      cb.on_progress(PretrainProgress{step, o.steps, r.loss(), lr, norm, tps, elapsed,
                                      elapsed / static_cast<double>(step) * static_cast<double>(o.steps - step)});
    if (step % std::max<int64_t>(1, o.log_every) == 0 || step == o.steps) {
      result.train_loss = interval_loss / static_cast<double>(interval_steps);
      train::append_json_line(metrics_path, json{{"step", step}, {"loss", result.train_loss}, {"nll_loss", r.nll()},
                                                 {"lr", lr}, {"grad_norm", norm}, {"target_tokens_per_second", tps},
                                                 {"elapsed_seconds", elapsed}});
      interval_loss = 0;
      interval_steps = 0;
      interval_tokens = 0;
      interval_start = std::chrono::steady_clock::now();
    }
    if ((o.eval_every > 0 && step % o.eval_every == 0) || step == o.steps) {
      const LabelSmoothedLoss v = evaluate();
      result.valid_loss = v.loss();
      result.valid_nll_loss = v.nll();
      train::append_json_line(metrics_path, json{{"step", step}, {"valid_loss", v.loss()}, {"valid_nll_loss", v.nll()},
                                                 {"valid_perplexity", std::exp(v.nll())},
                                                 {"valid_accuracy", static_cast<double>(v.correct) / static_cast<double>(v.tokens)}});
      char line[160];
      std::snprintf(line, sizeof line, "step %lld: valid loss %.4f, nll %.4f (perplexity %.2f)",
                    static_cast<long long>(step), v.loss(), v.nll(), std::exp(v.nll()));
      log(line);
    }
    if ((o.save_every > 0 && step % o.save_every == 0) || step == o.steps) {
      const std::string name = "checkpoint-" + std::to_string(step);
      save(name);
      if (saved_checkpoints.empty() || saved_checkpoints.back() != name) saved_checkpoints.push_back(name);
    }
  }

  // The final model: the last checkpoint, or the average of the last few (fairseq's recipe).
  const fs::path final_dir = out / "final";
  fs::remove_all(final_dir);
  fs::create_directories(final_dir);
  const fs::path last = out / saved_checkpoints.back();
  for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json"}) fs::copy_file(last / f, final_dir / f);
  const int64_t n_avg = std::min<int64_t>(o.average_last, static_cast<int64_t>(saved_checkpoints.size()));
  if (n_avg > 1) {
    const auto inputs = last_checkpoints(out.string(), static_cast<int>(n_avg));
    average_checkpoints(inputs, (final_dir / "model.safetensors").string());
    log("final model: the average of the last " + std::to_string(n_avg) + " checkpoints");
  } else {
    fs::copy_file(last / "model.safetensors", final_dir / "model.safetensors");
  }

  // Held-out BLEU of the final model with beam search.
  const Seq2SeqModel final_model = Seq2SeqModel::from_pretrained(final_dir.string());
  const std::size_t n_bleu = o.bleu_sentences > 0 ? std::min(valid_pairs.size(), static_cast<std::size_t>(o.bleu_sentences))
                                                  : valid_pairs.size();
  std::vector<std::string> sources, refs;
  for (std::size_t i = 0; i < n_bleu; ++i) {
    sources.push_back(valid_pairs[i].source);
    refs.push_back(valid_pairs[i].target);
  }
  DecodeOptions d;
  d.beam = o.beam;
  d.lenpen = o.lenpen;
  d.max_len_a = o.max_len_a;
  d.max_len_b = o.max_len_b;
  std::vector<std::string> hyps;
  try {
    hyps = translate_lines(final_model, tok, sources, d, o.batch_size, ctx);
  } catch (const Error& e) {
    throw Error(std::string("train-translation: validation source: ") + e.what());
  }
  BleuOptions bo;
  bo.lowercase = o.lowercase;
  const BleuResult bleu = corpus_bleu(hyps, refs, bo);
  result.bleu = bleu.score;
  result.bleu_verbose = bleu.verbose();
  std::string hyp_text;
  for (const auto& h : hyps) hyp_text += h + "\n";
  data::write_file_atomically((out / "valid_hypotheses.txt").string(), hyp_text);
  train::append_json_line(metrics_path, json{{"step", o.steps}, {"valid_bleu", bleu.score}, {"bleu_sentences", n_bleu},
                                             {"beam", o.beam}, {"lenpen", o.lenpen}, {"bleu_signature", bleu.signature}});
  log("valid BLEU " + bleu.verbose() + " on " + std::to_string(n_bleu) + " sentences (beam " + std::to_string(o.beam) + ")");
  result.steps = o.steps;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.model_dir = final_dir.string();
  return result;
}

}  // namespace roformer

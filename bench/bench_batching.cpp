// Many texts of different lengths through the encoder: what batching them by
// length (roformer/length_batches.h, the text subcommands' default) saves over
// batching them as read. The texts are the lines of a file, encoded as BERT
// encodes them ([CLS] text [SEP]) on a vocab.txt; the model is one written by
// `bench_infer --dump` (its ids only need to be below its vocabulary size).
//
//   bench_batching --model DIR --vocab FILE --text FILE [--texts N] [--max-length T]
//                  [--batch B] [--budget-batch B2 --max-tokens M] [--threads N]
//                  [--dtype f32|bf16|int8] [--rounds R] [--json] [--write-batches FILE]
//
// Three plans run the same texts: in input order, B at a time (HF's pipelines
// batch so); by length, B at a time; by length, up to B2 texts and M padded
// tokens a forward. The first and the last also run with the padding skipped
// (ForwardOptions::skip_padding, which the text subcommands set: the real
// tokens back to back through every weight product). Each round times one
// pass of every plan, the plans' order rotating from round to round. Every
// real token's last hidden state is compared between the plans, so the
// saving is seen to change nothing. --write-batches writes the padded plans'
// batches of token ids as JSON, for a peer to run the same batches
// (bench/torch_batching.py).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_common.h"
#include "roformer/error.h"
#include "roformer/length_batches.h"
#include "roformer/model.h"
#include "roformer/tokenizer.h"

namespace {

using namespace roformer;
using Clock = std::chrono::steady_clock;
using Plan = std::vector<std::vector<int64_t>>;

struct Options {
  std::string model, vocab, text, dtype = "f32", write_batches;
  int64_t texts = 128, max_length = 512, batch = 16, budget_batch = 64, max_tokens = 2048;
  int threads = 1, rounds = 3;
  bool json = false;
};

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("Times the encoder over many texts batched as read against batched by length.", "bench_batching");
  app.add_option("--model", o.model, "model directory written by bench_infer --dump")->required();
  app.add_option("--vocab", o.vocab, "vocab.txt to encode the texts with")->required();
  app.add_option("--text", o.text, "UTF-8 text, one input a line (empty lines skipped)")->required();
  app.add_option("--texts", o.texts, "the first N non-empty lines")->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-length", o.max_length, "truncate each text to this many tokens")
      ->check(CLI::Range(int64_t{3}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--batch", o.batch, "texts per forward (the as-read and by-length plans)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  app.add_option("--budget-batch", o.budget_batch, "texts per forward at most (the token-limit plans)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "padded tokens per forward (the token-limit plans)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--dtype", o.dtype, "weight products in f32, bf16 or int8")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}))
      ->capture_default_str();
  app.add_option("--rounds", o.rounds, "timed passes of every plan")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--write-batches", o.write_batches, "write the plans' batches of ids as JSON to FILE");
  app.add_flag("--json", o.json, "print one JSON object instead of text");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return o;
}

Batch padded(const std::vector<Encoding>& all, const std::vector<int64_t>& indices) {
  int64_t T = 0;
  for (const int64_t i : indices)
    T = std::max(T, static_cast<int64_t>(all[static_cast<std::size_t>(i)].input_ids.size()));
  const auto B = static_cast<int64_t>(indices.size());
  Batch b{Tensor::zeros({B, T}, DType::I64), Tensor::zeros({B, T}, DType::I64), Tensor::zeros({B, T}, DType::I64)};
  for (int64_t r = 0; r < B; ++r) {
    const Encoding& e = all[static_cast<std::size_t>(indices[static_cast<std::size_t>(r)])];
    std::copy(e.input_ids.begin(), e.input_ids.end(), b.input_ids.data<int64_t>() + r * T);
    std::fill_n(b.attention_mask.data<int64_t>() + r * T, e.input_ids.size(), int64_t{1});
  }
  return b;
}

struct PlanRun {
  std::string name;
  Plan plan;
  bool skip_padding = false;
  std::vector<double> seconds;
  double max_abs_diff = 0;  // against the first plan, over every real token
};

int run(const Options& o) {
  const std::vector<std::string> lines = bench::read_text_lines(o.text, o.texts);
  const Tokenizer tokenizer(Vocab::from_file(o.vocab), TokenizerOptions{});
  const std::vector<Encoding> encodings =
      tokenizer.encode_batch(lines, {}, o.threads, Truncation::LongestFirst, o.max_length);
  LoadOptions load{Task::Base, {}, {}};
  load.bf16_matmuls = o.dtype == "bf16";
  load.int8_matmuls = o.dtype == "int8";
  const RoFormerModel model = RoFormerModel::from_pretrained(o.model, load);
  const int64_t H = model.config().hidden_size, V = model.config().vocab_size;
  ROFORMER_CHECK(tokenizer.vocab().size() <= V, "bench_batching: the vocab has more ids than the model's vocabulary");
  const ExecContext ctx{o.threads, best_isa()};

  std::vector<int64_t> lengths, first_row{0};
  for (const Encoding& e : encodings) {
    lengths.push_back(static_cast<int64_t>(e.input_ids.size()));
    first_row.push_back(first_row.back() + lengths.back());
  }
  const int64_t real = first_row.back();
  const Plan as_read = plan_length_batches(lengths, {.max_batch = o.batch, .by_length = false});
  const Plan limited = plan_length_batches(lengths, {.max_batch = o.budget_batch, .max_tokens = o.max_tokens});
  std::vector<PlanRun> plans = {{"input order", as_read, false, {}, 0},
                                {"by length", plan_length_batches(lengths, {.max_batch = o.batch}), false, {}, 0},
                                {"by length, token limit", limited, false, {}, 0},
                                {"input order, padding skipped", as_read, true, {}, 0},
                                {"by length, token limit, padding skipped", limited, true, {}, 0}};

  // One pass of a plan: every text's real tokens' hidden states, in text order.
  std::vector<float> reference(static_cast<std::size_t>(real * H)), states(reference.size());
  const auto pass = [&](const PlanRun& p, std::vector<float>& out) {
    for (const auto& indices : p.plan) {
      const ModelOutput y = model.forward(padded(encodings, indices), {.skip_padding = p.skip_padding}, ctx);
      const int64_t T = y.last_hidden_state.size(1);
      for (std::size_t r = 0; r < indices.size(); ++r) {
        const auto text = static_cast<std::size_t>(indices[r]);
        std::copy_n(y.last_hidden_state.data<float>() + static_cast<int64_t>(r) * T * H, lengths[text] * H,
                    out.data() + first_row[text] * H);
      }
    }
  };
  pass(plans[0], reference);  // warm-up, and the states the others are compared with
  for (int round = 0; round < o.rounds; ++round)
    for (std::size_t k = 0; k < plans.size(); ++k) {
      PlanRun& p = plans[(k + static_cast<std::size_t>(round)) % plans.size()];
      const auto t0 = Clock::now();
      pass(p, states);
      p.seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      for (std::size_t i = 0; i < states.size(); ++i) {
        ROFORMER_CHECK(std::isfinite(states[i]), "bench_batching: non-finite output");
        p.max_abs_diff = std::max(p.max_abs_diff, static_cast<double>(std::fabs(states[i] - reference[i])));
      }
    }

  if (!o.write_batches.empty()) {
    std::ofstream f(o.write_batches);
    ROFORMER_CHECK(f.good(), "bench_batching: cannot write " + o.write_batches);
    f << "{\"plans\": [";
    bool first = true;
    for (std::size_t k = 0; k < plans.size(); ++k) {
      if (plans[k].skip_padding) continue;  // a peer runs padded batches
      f << (first ? "" : ", ") << "{\"name\": \"" << plans[k].name << "\", \"batches\": [";
      first = false;
      for (std::size_t b = 0; b < plans[k].plan.size(); ++b) {
        f << (b ? ", " : "") << "[";
        for (std::size_t r = 0; r < plans[k].plan[b].size(); ++r) {
          const Encoding& e = encodings[static_cast<std::size_t>(plans[k].plan[b][r])];
          f << (r ? ", " : "") << "[";
          for (std::size_t t = 0; t < e.input_ids.size(); ++t) f << (t ? "," : "") << e.input_ids[t];
          f << "]";
        }
        f << "]";
      }
      f << "]}";
    }
    f << "]}\n";
    ROFORMER_CHECK(f.good(), "bench_batching: writing " + o.write_batches + " failed");
  }

  const double base = bench::median(plans[0].seconds);
  if (o.json) std::printf("{\"impl\": \"roformer.cpp\", \"dtype\": \"%s\", \"threads\": %d, \"texts\": %zu, "
                          "\"real_tokens\": %lld, \"plans\": [", o.dtype.c_str(), o.threads, lines.size(),
                          static_cast<long long>(real));
  for (std::size_t k = 0; k < plans.size(); ++k) {
    const PlanRun& p = plans[k];
    const int64_t pad = padded_tokens(lengths, p.plan);
    const double med = bench::median(p.seconds), best = *std::min_element(p.seconds.begin(), p.seconds.end());
    if (o.json) {
      std::printf("%s{\"name\": \"%s\", \"skip_padding\": %s, \"forwards\": %zu, \"tokens_run\": %lld, "
                  "\"seconds\": [", k ? ", " : "", p.name.c_str(), p.skip_padding ? "true" : "false", p.plan.size(),
                  static_cast<long long>(p.skip_padding ? real : pad));
      for (std::size_t r = 0; r < p.seconds.size(); ++r) std::printf("%s%.6f", r ? ", " : "", p.seconds[r]);
      std::printf("], \"median_s\": %.6f, \"best_s\": %.6f, \"max_abs_diff\": %.3g}", med, best, p.max_abs_diff);
    } else {
      const int64_t run = p.skip_padding ? real : pad;
      std::printf("%-40s %4zu forwards, %7lld tokens run (%4.1f%% padding): median %.3f s, %.0f real tokens/s, "
                  "%.2fx input order, max |diff| %.2g\n",
                  p.name.c_str(), p.plan.size(), static_cast<long long>(run),
                  100.0 * static_cast<double>(run - real) / static_cast<double>(run), med,
                  static_cast<double>(real) / med, base / med, p.max_abs_diff);
    }
  }
  if (o.json) std::printf("]}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_batching: %s\n", e.what());
    return 1;
  }
}

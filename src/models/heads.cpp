#include "models/heads.h"

#include <cstring>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"

namespace roformer::models {

namespace {

kernels::Activation act_of(const std::string& name) {
  return name == "gelu" ? kernels::Activation::Gelu
         : name == "gelu_new" ? kernels::Activation::GeluNew
                              : kernels::Activation::Relu;
}

// The last `keep` positions of each row of (B, T, H), as a contiguous copy.
Tensor last_positions(const Tensor& hidden, int64_t keep) {
  const int64_t B = hidden.size(0), T = hidden.size(1), H = hidden.size(2);
  if (keep >= T) return hidden;
  return Tensor::view(hidden.data<float>() + (T - keep) * H, {B, keep, H}, DType::F32, nullptr, {T * H, H, 1}).clone();
}

// MLM / causal: transform (H -> E), act, LN, then x . decoder^T + bias.
Tensor lm_head(const RoFormerConfig& c, const RoFormerWeights& w, const Tensor& hidden, const ExecContext& ctx) {
  const int64_t B = hidden.size(0), T = hidden.size(1), rows = B * T;
  const int64_t E = c.embedding_dim(), V = c.vocab_size;
  Tensor t = Tensor::zeros({B, T, E});
  w.lm_transform.forward(hidden.data<float>(), rows, t.data<float>(), ctx, {act_of(c.hidden_act)});
  w.lm_norm.forward(t.data<float>(), t.data<float>(), rows, ctx);
  Tensor logits = Tensor::zeros({B, T, V});
  if (nn::uses_packed(w.lm_decoder_packed.get(), ctx)) {
    w.lm_decoder_packed->forward(t.data<float>(), rows, w.lm_bias.data<float>(), logits.data<float>(), ctx);
  } else {
    kernels::gemm_bias(false, true, rows, V, E, t.data<float>(), E, w.lm_decoder.data<float>(), E,
                       w.lm_bias.data<float>(), logits.data<float>(), V, ctx);
  }
  return logits;
}

}  // namespace

void heads_forward(const RoFormerConfig& c, Task task, const RoFormerWeights& w, const Tensor& hidden,
                   int64_t choices, int64_t logits_to_keep, ModelOutput& out, const ExecContext& ctx) {
  const int64_t B = hidden.size(0), T = hidden.size(1), H = hidden.size(2);
  const float* h = hidden.data<float>();
  switch (task) {
    case Task::Base: return;
    case Task::MaskedLM:
    case Task::CausalLM:
      out.heads["logits"] = lm_head(c, w, logits_to_keep > 0 ? last_positions(hidden, logits_to_keep) : hidden, ctx);
      return;
    case Task::SequenceClassification: {
      // The first token ([CLS]) -> dense -> config.hidden_act -> out_proj.
      Tensor first = Tensor::zeros({B, H});
      for (int64_t b = 0; b < B; ++b) std::memcpy(first.data<float>() + b * H, h + b * T * H, H * sizeof(float));
      Tensor mid = Tensor::zeros({B, H});
      w.classifier_dense.forward(first.data<float>(), B, mid.data<float>(), ctx, {act_of(c.hidden_act)});
      Tensor logits = Tensor::zeros({B, c.num_labels()});
      w.classifier.forward(mid.data<float>(), B, logits.data<float>(), ctx);
      out.heads["logits"] = logits;
      return;
    }
    case Task::TokenClassification: {
      Tensor logits = Tensor::zeros({B, T, c.num_labels()});
      w.classifier.forward(h, B * T, logits.data<float>(), ctx);
      out.heads["logits"] = logits;
      return;
    }
    case Task::QuestionAnswering: {
      Tensor both = Tensor::zeros({B, T, 2});
      w.classifier.forward(h, B * T, both.data<float>(), ctx);
      Tensor start = Tensor::zeros({B, T}), end = Tensor::zeros({B, T});
      for (int64_t r = 0; r < B * T; ++r) {
        start.data<float>()[r] = both.data<float>()[2 * r];
        end.data<float>()[r] = both.data<float>()[2 * r + 1];
      }
      out.heads["start_logits"] = start;
      out.heads["end_logits"] = end;
      return;
    }
    case Task::MultipleChoice: {
      // HF's SequenceSummary: with no summary_* keys it takes the LAST
      // position (padding included), then the classifier (H -> 1).
      Tensor summary = Tensor::zeros({B, H});
      for (int64_t b = 0; b < B; ++b) {
        float* s = summary.data<float>() + b * H;
        if (c.summary_type == "first") {
          std::memcpy(s, h + b * T * H, H * sizeof(float));
        } else if (c.summary_type == "last") {
          std::memcpy(s, h + (b * T + T - 1) * H, H * sizeof(float));
        } else {  // mean over all positions, as HF's "mean" (padding included)
          for (int64_t t = 0; t < T; ++t)
            for (int64_t k = 0; k < H; ++k) s[k] += h[(b * T + t) * H + k] / static_cast<float>(T);
        }
      }
      Tensor logits = Tensor::zeros({B, 1});
      w.classifier.forward(summary.data<float>(), B, logits.data<float>(), ctx);
      out.heads["logits"] = logits.reshape({B / choices, choices});
      return;
    }
  }
}

bool head_reads_padding(const RoFormerConfig& config, Task task) {
  return task == Task::MultipleChoice && config.summary_type != "first";
}

}  // namespace roformer::models

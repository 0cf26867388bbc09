#include "roformer/mlm_masking.h"

#include <algorithm>
#include <cmath>

#include "roformer/error.h"
#include "roformer/tokenizer.h"

namespace roformer {

MlmVocab mlm_vocab(const Tokenizer& tokenizer) {
  MlmVocab v;
  v.mask_id = tokenizer.mask_id();
  const int64_t n = tokenizer.id_space();
  v.special.assign(static_cast<std::size_t>(n), false);
  v.continuation.assign(static_cast<std::size_t>(n), false);
  for (int64_t id = 0; id < n; ++id) {
    v.special[static_cast<std::size_t>(id)] = tokenizer.is_special_id(id) || id == tokenizer.pad_id();
    const std::string* token = tokenizer.vocab().token(id);
    v.continuation[static_cast<std::size_t>(id)] = token != nullptr && token->size() > 2 && token->rfind("##", 0) == 0;
  }
  return v;
}

MlmMasker::MlmMasker(MlmVocab vocab, MlmMaskingOptions options) : vocab_(std::move(vocab)), options_(options) {
  const auto& o = options_;
  ROFORMER_CHECK(o.mask_probability >= 0 && o.mask_probability <= 1, "MLM masking: mask_probability must be in [0, 1]");
  ROFORMER_CHECK(o.mask_token_fraction >= 0 && o.random_token_fraction >= 0 &&
            o.mask_token_fraction + o.random_token_fraction <= 1,
        "MLM masking: the [MASK] and random fractions must be >= 0 and add up to at most 1");
  ROFORMER_CHECK(o.max_predictions >= 0, "MLM masking: max_predictions must be >= 0");
  ROFORMER_CHECK(vocab_.continuation.size() == vocab_.special.size(), "MLM masking: vocab tables differ in size");
  ROFORMER_CHECK(vocab_.mask_id >= 0 && vocab_.mask_id < vocab_.size(), "MLM masking: [MASK] id outside the vocabulary");
  for (int64_t id = 0; id < vocab_.size(); ++id) {
    if (!vocab_.special[static_cast<std::size_t>(id)]) replacements_.push_back(id);
  }
  ROFORMER_CHECK(!replacements_.empty() || o.random_token_fraction == 0, "MLM masking: the vocabulary has no ordinary token");
}

int64_t MlmMasker::apply(std::span<int64_t> ids, std::span<int64_t> labels, DataRng& rng,
                         std::span<const int64_t> attention_mask) const {
  MlmScratch scratch;
  return apply(ids, labels, rng, attention_mask, scratch);
}

int64_t MlmMasker::apply(std::span<int64_t> ids, std::span<int64_t> labels, DataRng& rng,
                         std::span<const int64_t> attention_mask, MlmScratch& scratch) const {
  const std::size_t n = ids.size();
  ROFORMER_CHECK(labels.size() == n && (attention_mask.empty() || attention_mask.size() == n),
        "MLM masking: ids, labels and attention mask differ in length");
  std::fill(labels.begin(), labels.end(), kIgnoreLabel);
  // Units to choose from: single tokens, or whole words [start, end).
  auto& units = scratch.units;
  units.clear();
  int64_t maskable = 0;
  bool previous_maskable = false;
  for (std::size_t i = 0; i < n; ++i) {
    const int64_t id = ids[i];
    ROFORMER_CHECK(id >= 0 && id < vocab_.size(), "MLM masking: token id " + std::to_string(id) + " out of range");
    const bool ok = !vocab_.special[static_cast<std::size_t>(id)] && (attention_mask.empty() || attention_mask[i] != 0);
    if (ok) {
      ++maskable;
      const bool joins = options_.whole_word && previous_maskable && vocab_.continuation[static_cast<std::size_t>(id)];
      if (joins) {
        units.back().second = static_cast<uint32_t>(i + 1);
      } else {
        units.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(i + 1));
      }
    }
    previous_maskable = ok;
  }
  if (maskable == 0 || options_.mask_probability == 0) return 0;
  auto target = std::max<int64_t>(1, std::llround(static_cast<double>(maskable) * options_.mask_probability));
  if (options_.max_predictions > 0) target = std::min(target, options_.max_predictions);

  // Lazy Fisher-Yates over the units: draw until the target is met.
  auto& chosen = scratch.chosen;
  chosen.clear();
  int64_t count = 0;
  for (std::size_t i = 0; i < units.size() && count < target; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng.below(units.size() - i));
    std::swap(units[i], units[j]);
    const auto [start, end] = units[i];
    if (count + static_cast<int64_t>(end - start) > target) continue;  // a word too long for what is left
    for (uint32_t p = start; p < end; ++p) chosen.push_back(p);
    count += end - start;
  }
  std::sort(chosen.begin(), chosen.end());
  for (uint32_t p : chosen) {
    labels[p] = ids[p];
    const double r = rng.uniform();
    if (r < options_.mask_token_fraction) {
      ids[p] = vocab_.mask_id;
    } else if (r < options_.mask_token_fraction + options_.random_token_fraction) {
      ids[p] = replacements_[static_cast<std::size_t>(rng.below(replacements_.size()))];
    }
  }
  return count;
}

}  // namespace roformer

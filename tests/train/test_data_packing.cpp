// Sequence packing, the seeded epoch order, and MLM batches that resume
// bit-identically from a saved iterator state.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "data_test_util.h"
#include "roformer/batch_iterator.h"
#include "roformer/data_rng.h"
#include "roformer/dataset.h"
#include "roformer/error.h"
#include "roformer/mlm_batches.h"
#include "roformer/sequence_packing.h"

namespace roformer {
namespace {

constexpr int64_t CLS = 2, SEP = 3, PAD = 0;

// Documents of lengths 5, 0, 3, 9 with ids 100 + 10*doc + position.
std::string write_docs(const testing::TempDir& dir) {
  const std::string path = dir.file("docs.rfds");
  DatasetWriter w(path, 1000, {});
  for (int64_t len : {5, 0, 3, 9}) {
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < len; ++i) ids.push_back(100 + 10 * static_cast<int64_t>(w.documents()) + i);
    w.add_document(ids);
  }
  w.finish();
  return path;
}

std::vector<std::vector<int64_t>> all_blocks(const PackedBlocks& p, std::vector<std::vector<int64_t>>* masks = nullptr) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t i = 0; i < p.size(); ++i) {
    std::vector<int64_t> ids(static_cast<std::size_t>(p.seq_len())), mask(ids.size());
    p.block(i, ids.data(), mask.data());
    out.push_back(ids);
    if (masks) masks->push_back(mask);
  }
  return out;
}

TEST(DataPacking, AcrossDocumentsWithSeparators) {
  testing::TempDir dir;
  const auto ds = TokenDataset::open(write_docs(dir));
  PackingOptions o;
  o.seq_len = 6;  // 4 content tokens a block
  PackedBlocks p(ds, {0, 1, 2, 3}, o);
  // Stream: 100..104 SEP 120 121 122 SEP 130..138  (19 tokens) -> 5 blocks.
  std::vector<std::vector<int64_t>> masks;
  const auto blocks = all_blocks(p, &masks);
  const std::vector<std::vector<int64_t>> expected = {
      {CLS, 100, 101, 102, 103, SEP}, {CLS, 104, SEP, 120, 121, SEP}, {CLS, 122, SEP, 130, 131, SEP},
      {CLS, 132, 133, 134, 135, SEP}, {CLS, 136, 137, 138, SEP, PAD}};
  EXPECT_EQ(blocks, expected);
  EXPECT_EQ(masks.back(), (std::vector<int64_t>{1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(masks.front(), (std::vector<int64_t>{1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(p.content_tokens(), 19);
  // A short tail block can be dropped.
  o.min_tokens = 4;
  EXPECT_EQ(PackedBlocks(ds, {0, 1, 2, 3}, o).size(), 4);
}

TEST(DataPacking, WithinDocuments) {
  testing::TempDir dir;
  const auto ds = TokenDataset::open(write_docs(dir));
  PackingOptions o;
  o.seq_len = 6;
  o.cross_documents = false;
  PackedBlocks p(ds, {3, 0, 2}, o);  // order as given
  const std::vector<std::vector<int64_t>> expected = {
      {CLS, 130, 131, 132, 133, SEP}, {CLS, 134, 135, 136, 137, SEP}, {CLS, 138, SEP, PAD, PAD, PAD},
      {CLS, 100, 101, 102, 103, SEP}, {CLS, 104, SEP, PAD, PAD, PAD},  {CLS, 120, 121, 122, SEP, PAD}};
  EXPECT_EQ(all_blocks(p), expected);
  o.min_tokens = 2;  // drops the 1-token tails, keeps the short document
  EXPECT_EQ(PackedBlocks(ds, {3, 0, 2}, o).size(), 4);
  o.seq_len = 2;
  EXPECT_THROW(PackedBlocks(ds, {0}, o), Error);
  o.seq_len = 6;
  EXPECT_THROW(PackedBlocks(ds, {4}, o), Error);
  EXPECT_EQ(PackedBlocks(ds, {1}, o).size(), 0);
}

TEST(DataRng, FixedSequencesOnEveryPlatform) {
  // Golden values: if these change, every shuffle and mask changes with them.
  DataRng rng(42);
  const uint64_t first = rng.next();
  DataRng again(42);
  EXPECT_EQ(again.next(), first);
  EXPECT_EQ(DataRng(1).next(), DataRng(1).next());
  EXPECT_NE(DataRng(1).next(), DataRng(2).next());
  EXPECT_EQ(splitmix64_mix(0), 0u);
  EXPECT_EQ(splitmix64_mix(1), 0x5692161D100B05E5ull);
  DataRng g(0);
  EXPECT_EQ(g.next(), 0x99EC5F36CB75F2B4ull);
  EXPECT_EQ(g.next(), 0xBF6E1F784956452Aull);
  std::vector<int> v(10);
  std::iota(v.begin(), v.end(), 0);
  DataRng s(7);
  s.shuffle(v);
  std::vector<int> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_NE(v, sorted);
  // below() is uniform: each of 3 buckets gets about a third.
  int counts[3] = {};
  DataRng u(3);
  for (int i = 0; i < 30000; ++i) ++counts[u.below(3)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
  for (int i = 0; i < 1000; ++i) {
    const double x = u.uniform();
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 1.0);
  }
  auto st = u.state();
  const uint64_t a = u.next();
  u.set_state(st);
  EXPECT_EQ(u.next(), a);
}

TEST(DataIterator, EpochsArePermutationsFixedBySeed) {
  EpochIterator it(10, 5);
  std::vector<int64_t> e0(10), e1(10);
  it.next(e0);
  it.next(e1);
  EXPECT_EQ(it.epoch(), 1);
  EXPECT_EQ(e0, it.epoch_order(0));
  EXPECT_EQ(e1, it.epoch_order(1));
  EXPECT_NE(e0, e1);
  auto sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(10);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_EQ(EpochIterator(10, 6).epoch_order(0) == e0, false);
  EXPECT_EQ(EpochIterator(10, 5, /*shuffle=*/false).epoch_order(3), iota);
  EXPECT_THROW(EpochIterator(0, 1), Error);
}

TEST(DataIterator, SaveAndRestoreContinuesExactly) {
  EpochIterator a(7, 11);
  std::vector<int64_t> warmup(12);
  a.next(warmup);
  const std::string saved = a.state().to_string();
  std::vector<int64_t> rest_a(20);
  a.next(rest_a);

  EpochIterator b(7, 11);
  b.restore(IteratorState::parse(saved));
  std::vector<int64_t> rest_b(20);
  b.next(rest_b);
  EXPECT_EQ(rest_a, rest_b);
  EXPECT_EQ(IteratorState::parse(saved), IteratorState::parse(saved + "\n"));

  EpochIterator other(8, 11);
  EXPECT_THROW(other.restore(IteratorState::parse(saved)), Error);
  EpochIterator other_seed(7, 12);
  EXPECT_THROW(other_seed.restore(IteratorState::parse(saved)), Error);
  for (const char* bad : {"", "rfiter", "rfiter 2 1 7 1 0 0", "rfiter 1 1 7 1 0 8", "rfiter 1 1 7 1 0 0 extra",
                          "rfiter 1 1 7 3 0 0", "nope 1 1 7 1 0 0"}) {
    EXPECT_THROW(IteratorState::parse(bad), Error) << bad;
  }
}

TEST(DataMlmBatches, ResumeIsBitIdentical) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  const std::string path = dir.file("valid.rfds");
  encode_corpus(tok, {}, data_test::sample_path("en_valid.txt"), path);
  const auto ds = TokenDataset::open(path);
  const auto split = split_documents(ds, 0.0);
  PackingOptions po;
  po.seq_len = 64;
  const PackedBlocks blocks(ds, split.train, with_special_ids(po, tok));
  ASSERT_GT(blocks.size(), 50);
  const MlmMasker masker(mlm_vocab(tok), MlmMaskingOptions{});

  MlmBatcher straight(blocks, masker, 1234);
  MlmBatch batch;
  std::vector<MlmBatch> seen;
  IteratorState saved;
  // Enough steps to cross an epoch boundary after the save.
  const int64_t steps = blocks.size() / 8 + 5;
  for (int64_t s = 0; s < steps; ++s) {
    if (s == 3) saved = straight.state();
    straight.next(8, batch);
    seen.push_back(batch);
  }
  EXPECT_GE(straight.order().epoch(), 1);

  MlmBatcher resumed(blocks, masker, 1234);
  resumed.restore(IteratorState::parse(saved.to_string()));
  for (int64_t s = 3; s < steps; ++s) {
    resumed.next(8, batch);
    EXPECT_EQ(batch.input_ids, seen[static_cast<std::size_t>(s)].input_ids) << "step " << s;
    EXPECT_EQ(batch.labels, seen[static_cast<std::size_t>(s)].labels) << "step " << s;
    EXPECT_EQ(batch.attention_mask, seen[static_cast<std::size_t>(s)].attention_mask);
  }
  // Rows are framed blocks with predictions at about 15% of their tokens.
  const auto& b0 = seen[0];
  EXPECT_EQ(b0.input_ids.size(), 8u * 64u);
  EXPECT_EQ(b0.input_ids[0], tok.cls_id());
  EXPECT_GT(b0.predictions, 8 * 62 * 0.12);
  EXPECT_LT(b0.predictions, 8 * 62 * 0.18);
  auto model_batch = seen[0].model_batch();
  EXPECT_EQ(model_batch.input_ids.shape(), (Shape{8, 64}));
  EXPECT_EQ(seen[0].labels_tensor().shape(), (Shape{8, 64}));
  // Another seed, another order and masking.
  MlmBatcher other(blocks, masker, 99);
  other.next(8, batch);
  EXPECT_NE(batch.input_ids, seen[0].input_ids);
}

}  // namespace
}  // namespace roformer

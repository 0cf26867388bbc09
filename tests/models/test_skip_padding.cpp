// ForwardOptions::skip_padding: right-padded rows run packed, real tokens
// back to back, and give what the padded forward gives at real positions,
// zeros at padded ones, under every head, precision and instruction set.
#include <gtest/gtest.h>

#include <vector>

#include "models/encoder.h"
#include "roformer/model.h"
#include "support/model_fixtures.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::fixture_dir;
using testing::right_padded_batch;

// Per (row, position) vectors of `width` values: real positions agree within
// tol, padded positions of `packed` are zero (and of `padded` are not all zero,
// or the comparison would prove nothing).
void expect_rows_agree(const Tensor& packed, const Tensor& padded, const std::vector<int64_t>& lengths, int64_t T,
                       double tol, const std::string& what) {
  ASSERT_EQ(packed.shape(), padded.shape()) << what;
  const int64_t width = packed.numel() / (static_cast<int64_t>(lengths.size()) * T);
  const float* a = packed.data<float>();
  const float* b = padded.data<float>();
  double padded_mass = 0;
  for (std::size_t r = 0; r < lengths.size(); ++r)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < width; ++k) {
        const int64_t i = (static_cast<int64_t>(r) * T + t) * width + k;
        if (t < lengths[r]) {
          ASSERT_NEAR(a[i], b[i], tol) << what << " row " << r << " position " << t;
        } else {
          ASSERT_EQ(a[i], 0.0f) << what << " row " << r << " position " << t;
          padded_mass += std::fabs(b[i]);
        }
      }
  EXPECT_GT(padded_mass, 0.0) << what;
}

TEST(SkipPadding, PackedRowStartsOnlyForRightPaddingWithSomePadding) {
  const std::vector<uint8_t> right = {1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1};
  EXPECT_EQ(models::packed_row_starts(right.data(), 3, 4), (std::vector<int64_t>{0, 3, 4, 8}));
  const std::vector<uint8_t> left = {1, 1, 1, 1, 0, 1, 1, 1};
  EXPECT_TRUE(models::packed_row_starts(left.data(), 2, 4).empty());
  const std::vector<uint8_t> hole = {1, 0, 1, 0};
  EXPECT_TRUE(models::packed_row_starts(hole.data(), 1, 4).empty());
  const std::vector<uint8_t> full = {1, 1, 1, 1, 1, 1};
  EXPECT_TRUE(models::packed_row_starts(full.data(), 2, 3).empty());
  const std::vector<uint8_t> empty_row = {0, 0, 1, 1};
  EXPECT_EQ(models::packed_row_starts(empty_row.data(), 2, 2), (std::vector<int64_t>{0, 0, 2}));
}

TEST(SkipPadding, RealPositionsMatchThePaddedForwardUnderEveryHead) {
  const std::vector<int64_t> lengths = {9, 4, 1, 7};
  ForwardOptions skip;
  skip.skip_padding = true;
  for (const char* name : {"roformer-tiny-mlm", "roformer-tiny-causal", "roformer-tiny-cls", "roformer-tiny-tok",
                           "roformer-tiny-qa", "roformer-tiny-mc"}) {
    const std::string fixture = name;
    const bool choice = fixture == "roformer-tiny-mc";
    for (const char* dtype : {"f32", "bf16", "int8"}) {
      LoadOptions load;
      load.bf16_matmuls = std::string(dtype) == "bf16";
      load.int8_matmuls = std::string(dtype) == "int8";
      const RoFormerModel model = RoFormerModel::from_pretrained(fixture_dir(fixture), load);
      const Batch batch = right_padded_batch(lengths, model.config().vocab_size, 3, choice ? 2 : 1);
      for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
        if (!isa_supported(isa)) continue;
        const ExecContext ctx{1, isa};
        const std::string what = fixture + " " + dtype + " " + std::string(isa_name(isa));
        const ModelOutput padded = model.forward(batch, {}, ctx);
        const ModelOutput packed = model.forward(batch, skip, ctx);
        if (choice) {
          // This head summarises by the last position, padding or not (HF's
          // default), so the option leaves its forward as it is.
          ASSERT_EQ(model.config().summary_type, "last");
          EXPECT_EQ(packed.last_hidden_state.to_vector(), padded.last_hidden_state.to_vector()) << what;
          EXPECT_EQ(packed.heads.at("logits").to_vector(), padded.heads.at("logits").to_vector()) << what;
          continue;
        }
        expect_rows_agree(packed.last_hidden_state, padded.last_hidden_state, lengths, 9, 1e-5, what);
        for (const auto& [head, y] : padded.heads) {
          const Tensor& z = packed.heads.at(head);
          ASSERT_EQ(z.shape(), y.shape()) << what << " " << head;
          if (fixture != "roformer-tiny-cls") {
            // Per-token heads: real positions agree (padded ones hold the head of a zero state).
            const auto a = z.to_vector(), b = y.to_vector();
            const int64_t width = y.numel() / (static_cast<int64_t>(lengths.size()) * 9);
            for (std::size_t r = 0; r < lengths.size(); ++r)
              for (int64_t t = 0; t < lengths[r]; ++t)
                for (int64_t k = 0; k < width; ++k) {
                  const auto i = static_cast<std::size_t>((static_cast<int64_t>(r) * 9 + t) * width + k);
                  ASSERT_NEAR(a[i], b[i], 1e-4) << what << " " << head;
                }
          } else {
            // The pooler reads the first token, which is real in every row.
            EXPECT_LE(testing::max_abs_diff(z.to_vector(), y.to_vector()), 1e-4) << what << " " << head;
          }
        }
      }
    }
  }
}

// Left padding, and asks that need the padded layout, take the padded forward
// and zero its padded positions: the same contract.
TEST(SkipPadding, OtherMasksAndAsksFallBackToThePaddedForward) {
  const RoFormerModel model = RoFormerModel::from_pretrained(fixture_dir("roformer-tiny-mlm"));
  const ExecContext ctx{1, best_isa()};
  ForwardOptions skip;
  skip.skip_padding = true;
  Batch left = right_padded_batch({6, 3}, model.config().vocab_size, 5);
  // Row 1 moved to the right end: 0 0 0 x x x.
  int64_t* ids = left.input_ids.data<int64_t>();
  int64_t* mask = left.attention_mask.data<int64_t>();
  for (int64_t t = 5; t >= 3; --t) {
    ids[6 + t] = ids[6 + t - 3];
    mask[6 + t] = 1;
  }
  for (int64_t t = 0; t < 3; ++t) ids[6 + t] = mask[6 + t] = 0;
  const ModelOutput padded = model.forward(left, {}, ctx);
  const ModelOutput zeroed = model.forward(left, skip, ctx);
  const float* a = zeroed.last_hidden_state.data<float>();
  const float* b = padded.last_hidden_state.data<float>();
  const int64_t H = model.config().hidden_size;
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t t = 0; t < 6; ++t)
      for (int64_t k = 0; k < H; ++k) {
        const int64_t i = (r * 6 + t) * H + k;
        if (mask[r * 6 + t] == 1) {
          ASSERT_EQ(a[i], b[i]);
        } else {
          ASSERT_EQ(a[i], 0.0f);
        }
      }

  ForwardOptions with_states = skip;
  with_states.hidden_states = true;
  const std::vector<int64_t> lengths = {5, 2};
  const Batch right = right_padded_batch(lengths, model.config().vocab_size, 7);
  const ModelOutput states = model.forward(right, with_states, ctx);
  EXPECT_EQ(states.hidden_states.size(), static_cast<std::size_t>(model.config().num_hidden_layers + 1));
  expect_rows_agree(states.last_hidden_state, model.forward(right, {}, ctx).last_hidden_state, lengths, 5, 0.0,
                    "hidden_states asked");
}

}  // namespace
}  // namespace roformer

#pragma once
// Seq2SeqModel's insides, shared by the training and decoding code of this layer.
#include "roformer/seq2seq.h"
#include "seq2seq/weights.h"

namespace roformer {

struct Seq2SeqModel::Impl {
  Seq2SeqConfig config;
  seq2seq::Weights w;
};

}  // namespace roformer

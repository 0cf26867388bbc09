#include "kernels/packed_matmul.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/bf16_convert.h"
#include "kernels/bf16_panels.h"
#include "kernels/blocked_gemv.h"
#include "kernels/f32_panels.h"
#include "kernels/gemm.h"
#include "kernels/huge_pages.h"
#include "kernels/int8_panels.h"
#include "kernels/parallel_chunks.h"
#include "kernels/quantize.h"
#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {

namespace {

using dnnl::memory;
using Dt = memory::data_type;
using Tag = memory::format_tag;

float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

// The int8 path's int32 sums of one row block, one buffer per thread.
std::vector<int32_t>& int8_sums(std::size_t n) {
  thread_local std::vector<int32_t> sums;
  if (sums.size() < n) sums.resize(n);
  return sums;
}

// One chunk of rescaled rows on their way to quantization, per (worker) thread.
float* int8_rows(std::size_t n) {
  thread_local std::vector<float> rows;
  if (rows.size() < n) rows.resize(n);
  return rows.data();
}

// Rows rounded and multiplied at a time by emulated bf16 products: a few MB
// of rounded activations; each block streams the weights once more.
constexpr int64_t kEmulatedRowBlock = 256;

constexpr int64_t kInt8RowChunk = 16;  // rows per task of the quantize and rescale passes

// Rows per product call on the int8 path: about 1 MB of int32 sums, so the
// scratch stays small at any batch size (measured as fast as one call).
constexpr int64_t kInt8BlockBytes = int64_t{1} << 20;
int64_t int8_block_rows(int64_t out) {
  const int64_t rows = kInt8BlockBytes / (out * static_cast<int64_t>(sizeof(int32_t)));
  return std::max<int64_t>(kInt8RowChunk, rows / kInt8RowChunk * kInt8RowChunk);
}

// The weights' layout when it is one blocked_gemv reads (kernels/blocked_gemv.h),
// told from the descriptor oneDNN chose, never assumed: oneDNN 2.x's
// descriptor is a plain struct; with another version the products keep to
// oneDNN's matmul at every row count.
std::optional<BlockedWeights> blocked_view(const memory& packed, const memory::desc& d, int64_t in, int64_t out,
                                           MatmulPrecision precision) {
#if DNNL_VERSION_MAJOR == 2
  const dnnl_memory_desc_t& md = d.data;
  const BlockedLayout layout = precision == MatmulPrecision::F32    ? BlockedLayout::F32x16x64
                               : precision == MatmulPrecision::Bf16 ? BlockedLayout::Bf16x32x64
                                                                    : BlockedLayout::S8x64x64;
  const dnnl_data_type_t type = layout == BlockedLayout::F32x16x64    ? dnnl_f32
                                : layout == BlockedLayout::Bf16x32x64 ? dnnl_bf16
                                                                      : dnnl_s8;
  // oneDNN 2.6 adds zero-point compensation (extra.flags) only for signed
  // activations; the int8 products here take unsigned ones.
  if (md.ndims != 2 || md.format_kind != dnnl_blocked || md.offset0 != 0 || md.extra.flags != 0 ||
      md.data_type != type || md.dims[0] != in || md.dims[1] != out)
    return std::nullopt;
  const dnnl_blocking_desc_t& b = md.format_desc.blocking;
  const int64_t k_block = blocked_k_block(layout);
  // 16 rows (or row pairs, or groups of four rows) of 64 columns per K block.
  const int64_t group = k_block / 16;
  const bool blocks = b.inner_blks[0] == 16 && b.inner_idxs[0] == 0 && b.inner_blks[1] == kGemvPanel &&
                      b.inner_idxs[1] == 1 &&
                      (group == 1 ? b.inner_nblks == 2
                                  : b.inner_nblks == 3 && b.inner_blks[2] == group && b.inner_idxs[2] == 0);
  const int64_t padded_in = md.padded_dims[0];
  if (!blocks || padded_in % k_block != 0 || md.padded_dims[1] % kGemvPanel != 0 ||
      b.strides[0] != k_block * kGemvPanel || b.strides[1] != padded_in * kGemvPanel)
    return std::nullopt;
  return BlockedWeights{layout, packed.get_data_handle(), in, out, padded_in};
#else
  (void)packed, (void)d, (void)in, (void)out, (void)precision;
  return std::nullopt;
#endif
}

dnnl::algorithm eltwise_of(Activation act) {
  switch (act) {
    case Activation::Gelu: return dnnl::algorithm::eltwise_gelu_erf;
    case Activation::GeluNew: return dnnl::algorithm::eltwise_gelu_tanh;
    case Activation::Relu: return dnnl::algorithm::eltwise_relu;
  }
  throw Error("packed matmul: unknown activation");
}

}  // namespace

Bf16Kernel parse_bf16_kernel(std::string_view name) {
  if (name == "auto") return Bf16Kernel::Auto;
  if (name == "onednn") return Bf16Kernel::Library;
  if (name == "panels") return Bf16Kernel::Panels;
  throw Error("unknown bf16 kernel '" + std::string(name) + "' (auto, onednn or panels)");
}

struct PackedMatmul::Impl {
  int64_t out = 0, in = 0;
  MatmulPrecision precision = MatmulPrecision::F32;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  memory::desc packed_desc;  // the layout oneDNN chose for the weights
  memory packed;
  std::string kernel;
  // The fallback: the weights kept plain (fp32) and multiplied by
  // kernels::gemm, or for Bf16 kept as bf16 in our panels
  // (kernels/f32_panels.h) and multiplied there after rounding the
  // activations the same way.
  bool emulated = false;
  std::vector<float> plain;        // (out, in)
  HugePageVector<uint16_t> plain_bf16;  // bf16 bits in the panels' layout
  // Native bf16 on our dot-product kernel instead of oneDNN.
  std::unique_ptr<Bf16Panels> panels;
  // fp32 on our AVX2 panels (kernels/f32_panels.h) instead of oneDNN, where
  // oneDNN has no packed fp32 kernels; empty otherwise.
  HugePageVector<float> f32_panels;
  // The packed weights as blocked_gemv (int8: blocked_sums) reads them, where
  // it can: products of up to kGemvMaxRows rows (a decoding step's) then
  // stream them itself.
  std::optional<BlockedWeights> gemv;
  // Int8: each weight row's scale and the sum of its quantized values (which
  // takes the activations' zero points out of the int32 sums), and for the
  // fallback the quantized weights in our int8 panels (kernels/int8_panels.h).
  std::vector<float> w_scale;
  std::vector<int32_t> w_sum;
  HugePageVector<int8_t> int8_panels;

  Dt src_type() const { return precision == MatmulPrecision::Bf16 ? Dt::bf16 : Dt::f32; }

  // One product set-up per (rows, bias, activation, residual, bf16 output,
  // threads): creating a primitive costs far more than running a small one,
  // and inference repeats a few shapes. oneDNN fixes a primitive's team size
  // when it is created (one made for one thread ran on one thread when the
  // library was then given two), so the team is part of the key and set first.
  struct Shape {
    dnnl::matmul product;
    memory::desc src, dst, bias, residual;
  };
  using Key = std::tuple<int64_t, bool, int, bool, bool, int>;
  mutable std::mutex mutex;
  mutable std::map<Key, std::shared_ptr<const Shape>> shapes;

  memory::desc bias_desc() const { return memory::desc({1, out}, Dt::f32, Tag::ab); }

  dnnl::matmul::primitive_desc describe(int64_t rows, const memory::desc& weights, bool bias,
                                        std::optional<Activation> act, bool residual, bool bf16_out = false) const {
    const memory::desc src({rows, in}, src_type(), Tag::ab);
    const memory::desc dst({rows, out}, bf16_out ? Dt::bf16 : Dt::f32, Tag::ab);
    dnnl::post_ops ops;
    if (act) ops.append_eltwise(1.0f, eltwise_of(*act), 0.0f, 0.0f);
    if (residual) ops.append_binary(dnnl::algorithm::binary_add, dst);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const dnnl::matmul::desc d = bias ? dnnl::matmul::desc(src, weights, bias_desc(), dst)
                                      : dnnl::matmul::desc(src, weights, dst);
    return dnnl::matmul::primitive_desc(d, attr, engine);
  }

  // u8 activations times s8 weights into int32 sums; scales, bias and
  // epilogue run afterwards, in our own passes.
  dnnl::matmul::primitive_desc describe_int8(int64_t rows, const memory::desc& weights) const {
    const memory::desc src({rows, in}, Dt::u8, Tag::ab);
    const memory::desc dst({rows, out}, Dt::s32, Tag::ab);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), engine);
  }

  // Also sets the library's team to ctx.threads, for creating and running the product.
  std::shared_ptr<const Shape> shape(int64_t rows, bool bias, const Epilogue& e, const ExecContext& ctx,
                                     bool bf16_out = false) const {
    use_library_threads(ctx.threads);
    const Key key{rows, bias, e.activation ? static_cast<int>(*e.activation) : -1, e.residual != nullptr, bf16_out,
                  ctx.threads};
    std::lock_guard<std::mutex> lock(mutex);
    auto& slot = shapes[key];
    if (!slot && precision == MatmulPrecision::Int8) {
      auto s = std::make_shared<Shape>();
      s->product = dnnl::matmul(describe_int8(rows, packed_desc));
      s->src = memory::desc({rows, in}, Dt::u8, Tag::ab);
      s->dst = memory::desc({rows, out}, Dt::s32, Tag::ab);
      slot = std::move(s);
    }
    if (!slot) {
      auto s = std::make_shared<Shape>();
      s->product = dnnl::matmul(describe(rows, packed_desc, bias, e.activation, e.residual != nullptr, bf16_out));
      s->src = memory::desc({rows, in}, src_type(), Tag::ab);
      s->dst = memory::desc({rows, out}, bf16_out ? Dt::bf16 : Dt::f32, Tag::ab);
      s->bias = bias_desc();
      s->residual = memory::desc({rows, out}, Dt::f32, Tag::ab);
      slot = std::move(s);
    }
    return slot;
  }

  void pack_int8(const float* weight, bool emulate);
  // Into fp32 rows y, or (y null) quantized into codes for the next int8 product.
  void forward_int8(const PackedInput& x, const float* bias, float* y, PackedInput* codes, const ExecContext& ctx,
                    const Epilogue& epilogue) const;
  // The same for up to kGemvMaxRows rows on gemv's int8 view: the panels cut
  // among the threads, each rescaling the columns it summed.
  void forward_int8_few_rows(const PackedInput& x, const float* bias, float* y, PackedInput* codes,
                             const ExecContext& ctx, const Epilogue& epilogue) const;
  // Output panels [p0, p1) of a product of up to kGemvMaxRows rows through
  // gemv's view, on the calling thread (one: ctx with one thread): fp32 and
  // bf16 straight into y (no epilogue); int8 summed into sums (rows x out),
  // then rescaled and finished into y.
  struct PanelLoops {
    BlockedGemvKernel gemv = nullptr;  // fp32 and bf16
    BlockedSumsKernel sums = nullptr;  // int8, then the rescale's
    QuantKernels quant{};
  };
  // The loops for this product's layout under ctx.isa, looked up once per product.
  PanelLoops panel_loops(const ExecContext& ctx) const;
  void few_rows_panels(const PanelLoops& loops, const PackedInput& x, const float* bias, float* y, int32_t* sums,
                       int64_t p0, int64_t p1, const Epilogue& epilogue, const ExecContext& one) const;
  // Whether products of x's rows stream the weights through gemv's view.
  bool streams(const PackedInput& x, const ExecContext& ctx) const;
  // The condition on the weights and ctx alone (PackedMatmul::streams_few_rows).
  bool streams_weights(const ExecContext& ctx) const;
  // The emulated bf16 product of fp32 rows, bias added, no epilogue.
  void forward_emulated_bf16(const float* x, int64_t rows, const float* bias, float* y, const ExecContext& ctx) const;
  // The oneDNN product of prepared activations into dst (fp32 or bf16).
  void run_product(const PackedInput& x, const float* bias, void* dst, bool bf16_out, const ExecContext& ctx,
                   const Epilogue& epilogue) const;
};

void PackedMatmul::Impl::pack_int8(const float* weight, bool emulate) {
  ROFORMER_CHECK(in <= kMaxInt8Depth, "packed matmul: int8 products take at most " + std::to_string(kMaxInt8Depth) +
                                          " input features, not " + std::to_string(in));
  std::vector<int8_t> q(static_cast<std::size_t>(out * in));
  w_scale.resize(static_cast<std::size_t>(out));
  quantize_weights_s8(weight, out, in, q.data(), w_scale.data());
  w_sum.assign(static_cast<std::size_t>(out), 0);
  for (int64_t o = 0; o < out; ++o) {
    // A local sum: int8_t may alias w_sum, so summing into it in place kept
    // a load and a store per code.
    int32_t sum = 0;
    for (int64_t i = 0; i < in; ++i) sum += q[o * in + i];
    w_sum[o] = sum;
  }
  try {
    if (emulate) throw dnnl::error(dnnl_unimplemented, "fallback requested");
    if (!native_int8()) throw dnnl::error(dnnl_unimplemented, "no native int8 products on this CPU");
    const memory::desc plain_desc({in, out}, Dt::s8, Tag::ba);
    const auto pd = describe_int8(128, memory::desc({in, out}, Dt::s8, Tag::any));
    packed_desc = pd.weights_desc();
    kernel = pd.impl_info_str();
    packed = memory(packed_desc, engine);
    memory source(plain_desc, engine, q.data());
    dnnl::stream stream(engine);
    dnnl::reorder(source, packed).execute(stream, source, packed);
    stream.wait();
    gemv = blocked_view(packed, packed_desc, in, out, MatmulPrecision::Int8);
  } catch (const dnnl::error&) {
    emulated = true;
    packed = memory();
    kernel = "emulated: int8 sums on our own panels (AVX2 where the CPU has it)";
    int8_panels = pack_int8_panels(q.data(), out, in);
  }
}

void PackedMatmul::Impl::forward_int8(const PackedInput& x, const float* bias, float* y, PackedInput* codes,
                                      const ExecContext& ctx, const Epilogue& epilogue) const {
  if (streams(x, ctx)) {
    forward_int8_few_rows(x, bias, y, codes, ctx, epilogue);
    return;
  }
  const int64_t rows = x.rows_;
  const uint8_t* qx = x.codes_.data();
  const RowQuant* params = x.params_.data();
  const int64_t n_in = in, n_out = out;
  // Worker threads see their own thread_local, so the lambdas take a pointer.
  int32_t* sums = int8_sums(static_cast<std::size_t>(std::min(rows, int8_block_rows(n_out)) * n_out)).data();
  const QuantKernels k = quant_kernels(ctx.isa);
  std::atomic<bool> finite{true};

  // Row blocks: the int32 sums of one block stay in cache from the product to
  // the rescale and epilogue, which run on each chunk of rows while it is hot.
  const int64_t block = int8_block_rows(n_out);
  ExecContext one = ctx;
  one.threads = 1;
  for (int64_t r0 = 0; r0 < rows; r0 += block) {
    const int64_t nb = std::min(block, rows - r0);
    const uint8_t* qb = qx + r0 * n_in;
    if (emulated) {
      int8_panels_sums(qb, nb, n_in, int8_panels.data(), n_out, sums, ctx);
    } else {
      try {
        const auto s = shape(nb, false, {}, ctx);
        dnnl::stream stream(engine);
        memory src(s->src, engine, const_cast<uint8_t*>(qb));
        memory dst(s->dst, engine, sums);
        s->product.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed}, {DNNL_ARG_DST, dst}});
        stream.wait();
      } catch (const dnnl::error& e) {
        throw Error(std::string("packed matmul: oneDNN failed: ") + e.what());
      }
    }
    for_each_chunk(nb, kInt8RowChunk, ctx, [&](int64_t b, int64_t e) {
      float* yc = y != nullptr ? y + (r0 + b) * n_out : int8_rows(static_cast<std::size_t>((e - b) * n_out));
      k.dequantize_rows(sums + b * n_out, e - b, n_out, params + r0 + b, w_scale.data(), w_sum.data(), bias, yc);
      Epilogue part = epilogue;
      if (part.residual != nullptr) part.residual += (r0 + b) * n_out;
      apply_epilogue(yc, e - b, n_out, part, one);
      // Quantized for the next product while the chunk is still in cache.
      if (codes != nullptr && !k.quantize_rows(yc, e - b, n_out, codes->codes_.data() + (r0 + b) * n_out,
                                               codes->params_.data() + r0 + b))
        finite = false;
    });
  }
  ROFORMER_CHECK(finite.load(), "packed matmul: the product's output holds a NaN or an infinity");
}

PackedMatmul::Impl::PanelLoops PackedMatmul::Impl::panel_loops(const ExecContext& ctx) const {
  PanelLoops loops;
  if (precision == MatmulPrecision::Int8) {
    loops.sums = blocked_sums_kernel(ctx.isa);
    loops.quant = quant_kernels(ctx.isa);
  } else {
    loops.gemv = blocked_gemv_kernel(gemv->layout, ctx.isa);
  }
  return loops;
}

void PackedMatmul::Impl::few_rows_panels(const PanelLoops& loops, const PackedInput& x, const float* bias, float* y,
                                         int32_t* sums, int64_t p0, int64_t p1, const Epilogue& epilogue,
                                         const ExecContext& one) const {
  const int64_t rows = x.rows_, n_out = out;
  if (precision != MatmulPrecision::Int8) {
    const void* src = precision == MatmulPrecision::Bf16 ? static_cast<const void*>(x.bf16_.data())
                                                         : static_cast<const void*>(x.f32_);
    ROFORMER_CHECK(!epilogue.activation && epilogue.residual == nullptr,
                   "packed matmul: fp32 and bf16 panels take no epilogue");
    loops.gemv(*gemv, src, rows, bias, y, p0, p1);
    return;
  }
  loops.sums(*gemv, x.codes_.data(), rows, sums, p0, p1);
  const QuantKernels& k = loops.quant;
  const int64_t n0 = p0 * kGemvPanel, width = std::min(n_out, p1 * kGemvPanel) - n0;
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * n_out + n0;
    k.dequantize_rows(sums + r * n_out + n0, 1, width, x.params_.data() + r, w_scale.data() + n0, w_sum.data() + n0,
                      bias != nullptr ? bias + n0 : nullptr, yr);
    Epilogue part = epilogue;
    if (part.residual != nullptr) part.residual += r * n_out + n0;
    apply_epilogue(yr, 1, width, part, one);
  }
}

void PackedMatmul::Impl::forward_int8_few_rows(const PackedInput& x, const float* bias, float* y, PackedInput* codes,
                                              const ExecContext& ctx, const Epilogue& epilogue) const {
  const int64_t rows = x.rows_, n_out = out;
  int32_t* sums = int8_sums(static_cast<std::size_t>(rows * n_out)).data();
  // Quantizing for the next product takes whole rows: they wait in fp32 here.
  float* wide = y != nullptr ? y : int8_rows(static_cast<std::size_t>(rows * n_out));
  ExecContext one = ctx;
  one.threads = 1;
  const PanelLoops loops = panel_loops(ctx);
  // Each task rescales its own columns while their sums are in cache: with
  // one row, cutting by rows would leave the rescale on one thread.
  for_each_chunk((n_out + kGemvPanel - 1) / kGemvPanel, kGemvPanelsPerTask, ctx,
                 [&](int64_t p0, int64_t p1) { few_rows_panels(loops, x, bias, wide, sums, p0, p1, epilogue, one); });
  if (codes != nullptr)
    ROFORMER_CHECK(loops.quant.quantize_rows(wide, rows, n_out, codes->codes_.data(), codes->params_.data()),
                   "packed matmul: the product's output holds a NaN or an infinity");
}

void PackedMatmul::Impl::forward_emulated_bf16(const float* x, int64_t rows, const float* bias, float* y,
                                               const ExecContext& ctx) const {
  // The activations rounded a block of rows at a time, so the rounded copy
  // stays small at any batch size.
  thread_local std::vector<float> rounded;
  const int64_t block = std::min(rows, kEmulatedRowBlock);
  if (rounded.size() < static_cast<std::size_t>(block * in)) rounded.resize(static_cast<std::size_t>(block * in));
  for (int64_t r0 = 0; r0 < rows; r0 += block) {
    const int64_t n = std::min(block, rows - r0);
    round_to_bf16_values(x + r0 * in, n * in, rounded.data(), ctx);
    bf16_weight_panels_forward(rounded.data(), n, in, plain_bf16.data(), out, bias, y + r0 * out, ctx);
  }
}

bool PackedMatmul::Impl::streams_weights(const ExecContext& ctx) const {
  return gemv.has_value() && !emulated && panels == nullptr &&
         (ctx.isa == Isa::Scalar || blocked_loop_is_vector(gemv->layout, ctx.isa));
}

bool PackedMatmul::Impl::streams(const PackedInput& x, const ExecContext& ctx) const {
  return x.rows_ >= 1 && x.rows_ <= kGemvMaxRows && streams_weights(ctx);
}

void PackedMatmul::forward_together(const PackedInput& x, std::span<const Target> targets,
                                    const ExecContext& ctx) {
  constexpr std::size_t kMaxTargets = 8;
  ROFORMER_CHECK(targets.size() <= kMaxTargets, "packed matmul: at most 8 products run together");
  bool together = !targets.empty();
  for (const Target& t : targets)
    together = together && t.matmul->impl_->streams(x, ctx) &&
               t.matmul->precision() == targets[0].matmul->precision() && t.matmul->in_features() == x.features_;
  if (!together) {
    for (const Target& t : targets) t.matmul->forward(x, t.bias, t.y, ctx);
    return;
  }
  const auto form = targets[0].matmul->precision() == MatmulPrecision::Int8   ? PackedInput::Form::Int8Codes
                    : targets[0].matmul->precision() == MatmulPrecision::Bf16 ? PackedInput::Form::Bf16Values
                                                                              : PackedInput::Form::F32Rows;
  ROFORMER_CHECK(x.form_ == form && (form != PackedInput::Form::F32Rows || x.f32_ != nullptr),
                 "packed matmul: the prepared activations do not suit these products");
  // Tasks of kGemvPanelsPerTask panels, product after product, as each
  // product alone would cut them: the same bits, with one fork and join.
  int64_t first_task[kMaxTargets + 1] = {0}, sums_at[kMaxTargets + 1] = {0};
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const int64_t panels = (targets[i].matmul->out_features() + kGemvPanel - 1) / kGemvPanel;
    first_task[i + 1] = first_task[i] + (panels + kGemvPanelsPerTask - 1) / kGemvPanelsPerTask;
    sums_at[i + 1] = sums_at[i] + x.rows_ * targets[i].matmul->out_features();
  }
  int32_t* sums = form == PackedInput::Form::Int8Codes
                      ? int8_sums(static_cast<std::size_t>(sums_at[targets.size()])).data()
                      : nullptr;
  ExecContext one = ctx;
  one.threads = 1;
  // One layout and isa for all: the loops of the first serve every product.
  const Impl::PanelLoops loops = targets[0].matmul->impl_->panel_loops(ctx);
  for_each_chunk(first_task[targets.size()], 1, ctx, [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      std::size_t i = 0;
      while (first_task[i + 1] <= task) ++i;
      const Target& t = targets[i];
      const Impl& m = *t.matmul->impl_;
      const int64_t p0 = (task - first_task[i]) * kGemvPanelsPerTask;
      const int64_t p1 = std::min((m.out + kGemvPanel - 1) / kGemvPanel, p0 + kGemvPanelsPerTask);
      m.few_rows_panels(loops, x, t.bias, t.y, sums != nullptr ? sums + sums_at[i] : nullptr, p0, p1, {}, one);
    }
  });
}

PackedMatmul::PackedMatmul(const float* weight, int64_t out, int64_t in, MatmulPrecision precision, bool emulate,
                           Bf16Kernel bf16_kernel)
    : impl_(std::make_unique<Impl>()) {
  ROFORMER_CHECK(out > 0 && in > 0, "packed matmul: empty weight matrix");
  Impl& m = *impl_;
  m.out = out;
  m.in = in;
  m.precision = precision;
  if (precision == MatmulPrecision::Int8) {
    m.pack_int8(weight, emulate);
    return;
  }
  if (precision == MatmulPrecision::F32 && !emulate && own_f32_panels()) {
    m.f32_panels = pack_f32_panels(weight, out, in);
    m.kernel = "roformer:avx2_f32_panels";
    return;
  }
  if (precision == MatmulPrecision::Bf16 && !emulate) {
    const bool possible = cpu_has_avx512_bf16() && in % 2 == 0;
    ROFORMER_CHECK(bf16_kernel != Bf16Kernel::Panels || possible,
                   "packed matmul: bf16 panels need AVX512-BF16 and an even input width");
    if (bf16_kernel == Bf16Kernel::Panels) {
      m.panels = std::make_unique<Bf16Panels>(weight, out, in);
      m.kernel = "roformer:avx512_bf16_panels";
      return;
    }
  }
  try {
    if (emulate) throw dnnl::error(dnnl_unimplemented, "fallback requested");
    if (precision == MatmulPrecision::Bf16 && !native_bf16())
      throw dnnl::error(dnnl_unimplemented, "no native bf16 products on this CPU");
    // W (out, in) row-major is the (in, out) matrix W^T in column-major ("ba").
    const memory::desc plain({in, out}, Dt::f32, Tag::ba);
    const memory::desc any({in, out}, m.src_type(), Tag::any);
    const auto pd = m.describe(128, any, true, std::nullopt, false);
    m.packed_desc = pd.weights_desc();
    m.kernel = pd.impl_info_str();
    m.packed = memory(m.packed_desc, m.engine);
    memory source(plain, m.engine, const_cast<float*>(weight));
    dnnl::stream stream(m.engine);
    dnnl::reorder(source, m.packed).execute(stream, source, m.packed);
    stream.wait();
    m.gemv = blocked_view(m.packed, m.packed_desc, in, out, precision);
  } catch (const dnnl::error&) {
    m.emulated = true;
    m.packed = memory();
    m.kernel = precision == MatmulPrecision::Bf16 ? "emulated: bf16 weights widened to fp32, bf16-rounded activations"
                                                  : "plain fp32 GEMM";
    if (precision == MatmulPrecision::Bf16) {
      m.plain_bf16 = pack_bf16_weight_panels(weight, out, in);
    } else {
      m.plain.assign(weight, weight + out * in);
    }
  }
}

PackedMatmul::~PackedMatmul() = default;

int64_t PackedMatmul::out_features() const { return impl_->out; }
int64_t PackedMatmul::in_features() const { return impl_->in; }
MatmulPrecision PackedMatmul::precision() const { return impl_->precision; }
std::string PackedMatmul::kernel_name() const { return impl_->kernel; }
bool PackedMatmul::emulated() const { return impl_->emulated; }
bool PackedMatmul::bf16_panels() const { return impl_->panels != nullptr; }
bool PackedMatmul::streams_few_rows(const ExecContext& ctx) const { return impl_->streams_weights(ctx); }

bool PackedMatmul::own_f32_panels() { return isa_supported(Isa::Avx2) && !isa_supported(Isa::Avx512); }

bool PackedMatmul::uses_f32_panels() const { return !impl_->f32_panels.empty(); }

bool PackedMatmul::native_bf16() {
  const auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

bool PackedMatmul::native_int8() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  auto has = [isa](unsigned features) { return (isa & features) == features; };
  return has(dnnl_cpu_isa_avx512_core_vnni) || has(dnnl_cpu_isa_avx2_vnni);
}

bool PackedMatmul::feeds(const PackedMatmul& next) const {
  const Impl& m = *impl_;
  if (next.in_features() != m.out || next.precision() != m.precision) return false;
  if (m.precision == MatmulPrecision::Int8) return true;  // both paths read the same codes
  return m.precision == MatmulPrecision::Bf16 && !m.emulated && !next.emulated();
}

void PackedMatmul::prepare(const float* x, int64_t rows, PackedInput& input, const ExecContext& ctx) const {
  ROFORMER_CHECK(rows >= 0, "packed matmul: negative row count");
  const Impl& m = *impl_;
  input.rows_ = rows;
  input.features_ = m.in;
  input.f32_ = x;
  const auto n = static_cast<std::size_t>(rows * m.in);
  if (m.precision == MatmulPrecision::Int8) {
    input.form_ = PackedInput::Form::Int8Codes;
    if (input.codes_.size() < n) input.codes_.resize(n);
    if (input.params_.size() < static_cast<std::size_t>(rows)) input.params_.resize(static_cast<std::size_t>(rows));
    uint8_t* codes = input.codes_.data();
    RowQuant* params = input.params_.data();
    const QuantKernels k = quant_kernels(ctx.isa);
    const int64_t in = m.in;
    std::atomic<bool> finite{true};
    for_each_chunk(rows, kInt8RowChunk, ctx, [&](int64_t b, int64_t e) {
      if (!k.quantize_rows(x + b * in, e - b, in, codes + b * in, params + b)) finite = false;
    });
    ROFORMER_CHECK(finite.load(), "packed matmul: the activations hold a NaN or an infinity");
  } else if (m.precision == MatmulPrecision::Bf16 && !m.emulated) {
    input.form_ = PackedInput::Form::Bf16Values;
    if (input.bf16_.size() < n) input.bf16_.resize(n);
    convert_to_bf16(x, rows * m.in, input.bf16_.data(), ctx);
  } else {
    input.form_ = PackedInput::Form::F32Rows;
  }
}

uint16_t* PackedMatmul::bf16_destination(const float* x, int64_t rows, PackedInput& input) const {
  ROFORMER_CHECK(rows >= 0, "packed matmul: negative row count");
  const Impl& m = *impl_;
  if (m.precision != MatmulPrecision::Bf16 || m.emulated) return nullptr;
  input.form_ = PackedInput::Form::Bf16Values;
  input.rows_ = rows;
  input.features_ = m.in;
  input.f32_ = x;
  const auto n = static_cast<std::size_t>(rows * m.in);
  if (input.bf16_.size() < n) input.bf16_.resize(n);
  return input.bf16_.data();
}

void PackedMatmul::forward(const float* x, int64_t rows, const float* bias, float* y, const ExecContext& ctx,
                           const Epilogue& epilogue) const {
  thread_local PackedInput input;
  prepare(x, rows, input, ctx);
  forward(input, bias, y, ctx, epilogue);
}

void PackedMatmul::forward(const PackedInput& x, const float* bias, float* y, const ExecContext& ctx,
                           const Epilogue& epilogue) const {
  const Impl& m = *impl_;
  ROFORMER_CHECK(x.features_ == m.in, "packed matmul: the prepared activations have " + std::to_string(x.features_) +
                                          " features, the product takes " + std::to_string(m.in));
  const int64_t rows = x.rows_;
  if (rows == 0) return;
  if (m.precision == MatmulPrecision::Int8) {
    ROFORMER_CHECK(x.form_ == PackedInput::Form::Int8Codes, "packed matmul: int8 products need int8-prepared activations");
    m.forward_int8(x, bias, y, nullptr, ctx, epilogue);
    return;
  }
  if (m.emulated || m.precision == MatmulPrecision::F32) {
    ROFORMER_CHECK(x.f32_ != nullptr, "packed matmul: this product needs the activations' fp32 rows");
  } else {
    ROFORMER_CHECK(x.form_ == PackedInput::Form::Bf16Values, "packed matmul: bf16 products need bf16-prepared activations");
  }
  if (!m.f32_panels.empty()) {
    f32_panels_forward(x.f32_, rows, m.in, m.f32_panels.data(), m.out, bias, y, ctx);
    apply_epilogue(y, rows, m.out, epilogue, ctx);
    return;
  }
  if (m.emulated) {
    if (m.precision == MatmulPrecision::Bf16) {
      m.forward_emulated_bf16(x.f32_, rows, bias, y, ctx);
    } else {
      gemm_bias(false, true, rows, m.out, m.in, x.f32_, m.in, m.plain.data(), m.in, bias, y, m.out, ctx);
    }
    apply_epilogue(y, rows, m.out, epilogue, ctx);
    return;
  }
  m.run_product(x, bias, y, false, ctx, epilogue);
}

void PackedMatmul::forward(const PackedInput& x, const float* bias, PackedInput& y, const ExecContext& ctx,
                           const Epilogue& epilogue) const {
  const Impl& m = *impl_;
  const bool int8 = m.precision == MatmulPrecision::Int8;
  ROFORMER_CHECK(int8 || (m.precision == MatmulPrecision::Bf16 && !m.emulated),
                 "packed matmul: only native bf16 and int8 products store prepared outputs");
  ROFORMER_CHECK(&x != &y, "packed matmul: the output cannot overwrite the prepared input");
  ROFORMER_CHECK(epilogue.residual == nullptr, "packed matmul: a prepared output takes no residual");
  const auto form = int8 ? PackedInput::Form::Int8Codes : PackedInput::Form::Bf16Values;
  ROFORMER_CHECK(x.features_ == m.in && x.form_ == form,
                 std::string("packed matmul: this product needs ") + (int8 ? "int8" : "bf16") +
                     "-prepared activations of " + std::to_string(m.in) + " features");
  y.form_ = form;
  y.rows_ = x.rows_;
  y.features_ = m.out;
  y.f32_ = nullptr;
  const auto n = static_cast<std::size_t>(x.rows_ * m.out);
  if (int8) {
    if (y.codes_.size() < n) y.codes_.resize(n);
    if (y.params_.size() < static_cast<std::size_t>(y.rows_)) y.params_.resize(static_cast<std::size_t>(y.rows_));
    if (x.rows_ > 0) m.forward_int8(x, bias, nullptr, &y, ctx, epilogue);
    return;
  }
  if (y.bf16_.size() < n) y.bf16_.resize(n);
  if (x.rows_ > 0) m.run_product(x, bias, y.bf16_.data(), true, ctx, epilogue);
}

void PackedMatmul::Impl::run_product(const PackedInput& x, const float* bias, void* dst_data, bool bf16_out,
                                     const ExecContext& ctx, const Epilogue& epilogue) const {
  if (panels) {
    panels->forward(x.bf16_.data(), x.rows_, bias, epilogue, bf16_out ? nullptr : static_cast<float*>(dst_data),
                    bf16_out ? static_cast<uint16_t*>(dst_data) : nullptr, ctx);
    return;
  }
  if (streams(x, ctx)) {
    thread_local std::vector<float> wide;  // the fp32 output on its way to bf16
    const std::size_t n = static_cast<std::size_t>(x.rows_ * out);
    if (bf16_out && wide.size() < n) wide.resize(n);
    float* y = bf16_out ? wide.data() : static_cast<float*>(dst_data);
    const void* src = precision == MatmulPrecision::Bf16 ? static_cast<const void*>(x.bf16_.data())
                                                         : static_cast<const void*>(x.f32_);
    blocked_gemv(*gemv, src, x.rows_, bias, y, ctx);
    apply_epilogue(y, x.rows_, out, epilogue, ctx);
    if (bf16_out) convert_to_bf16(y, x.rows_ * out, static_cast<uint16_t*>(dst_data), ctx);
    return;
  }
  try {
    const auto s = shape(x.rows_, bias != nullptr, epilogue, ctx, bf16_out);
    dnnl::stream stream(engine);
    const void* src_data = precision == MatmulPrecision::Bf16 ? static_cast<const void*>(x.bf16_.data())
                                                              : static_cast<const void*>(x.f32_);
    memory src(s->src, engine, const_cast<void*>(src_data));
    memory dst(s->dst, engine, dst_data);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed}, {DNNL_ARG_DST, dst}};
    if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, memory(s->bias, engine, const_cast<float*>(bias)));
    if (epilogue.residual != nullptr) {
      const int index = epilogue.activation ? 1 : 0;  // the binary add follows the eltwise post-op
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1,
                   memory(s->residual, engine, const_cast<float*>(epilogue.residual)));
    }
    s->product.execute(stream, args);
    stream.wait();
  } catch (const dnnl::error& e) {
    throw Error(std::string("packed matmul: oneDNN failed: ") + e.what());
  }
}

void PackedMatmul::unpack(float* weight) const {
  const Impl& m = *impl_;
  if (m.precision == MatmulPrecision::Int8) {
    std::vector<int8_t> q(static_cast<std::size_t>(m.out * m.in));
    if (m.emulated) {
      unpack_int8_panels(m.int8_panels.data(), m.out, m.in, q.data());
    } else {
      memory target(memory::desc({m.in, m.out}, Dt::s8, Tag::ba), m.engine, q.data());
      dnnl::stream stream(m.engine);
      dnnl::reorder(m.packed, target).execute(stream, const_cast<memory&>(m.packed), target);
      stream.wait();
    }
    for (int64_t o = 0; o < m.out; ++o)
      for (int64_t i = 0; i < m.in; ++i) weight[o * m.in + i] = static_cast<float>(q[o * m.in + i]) * m.w_scale[o];
    return;
  }
  if (m.emulated) {
    if (m.precision == MatmulPrecision::Bf16) unpack_bf16_weight_panels(m.plain_bf16.data(), m.out, m.in, weight);
    else std::copy(m.plain.begin(), m.plain.end(), weight);
    return;
  }
  if (m.panels) {
    m.panels->unpack(weight);
    return;
  }
  if (!m.f32_panels.empty()) {
    unpack_f32_panels(m.f32_panels.data(), m.out, m.in, weight);
    return;
  }
  const memory::desc plain({m.in, m.out}, Dt::f32, Tag::ba);
  memory target(plain, m.engine, weight);
  dnnl::stream stream(m.engine);
  dnnl::reorder(m.packed, target).execute(stream, const_cast<memory&>(m.packed), target);
  stream.wait();
}

void apply_epilogue(float* y, int64_t rows, int64_t out, const Epilogue& epilogue, const ExecContext& ctx) {
  if (epilogue.activation) activation_forward(*epilogue.activation, y, rows * out, ctx);
  if (epilogue.residual != nullptr) add_inplace(y, epilogue.residual, rows * out, ctx);
}

void gemm_bf16_ref(const float* x, int64_t rows, const float* weight, int64_t out, int64_t in, const float* bias,
                   float* y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias != nullptr ? bias[o] : 0.0;
      for (int64_t i = 0; i < in; ++i)
        acc += static_cast<double>(round_bf16(x[r * in + i])) * static_cast<double>(round_bf16(weight[o * in + i]));
      y[r * out + o] = static_cast<float>(acc);
    }
}

}  // namespace roformer::kernels

#pragma once
// Inference products with weights packed once: y = act(x · W^T + b) + residual.
// The weights are reordered (and, for bf16, rounded) into oneDNN's blocked
// layout when the model is loaded, so a forward skips the per-call packing a
// plain sgemm does, and the bias, activation and residual add run on the
// product's output tile while it is in cache instead of in passes of their own.
// fp32 on CPUs without AVX-512 packs into our own AVX2 panels instead
// (kernels/f32_panels.h; the epilogue there runs in passes after the product).
// bf16 products accumulate in fp32 on AVX512-BF16 dot products or AMX tiles
// when the CPU has them (oneDNN picks at run time). int8 products quantize the
// weights per output row once and the activations per row on every call
// (kernels/quantize.h), multiply u8 by s8 into exact int32 sums (AVX512-VNNI
// or AVX-VNNI dot products), and rescale to fp32 before the epilogue.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/epilogue.h"
#include "kernels/quantize.h"
#include "roformer/cpu.h"

namespace roformer::kernels {

enum class MatmulPrecision { F32, Bf16, Int8 };

// The code behind a native bf16 product: oneDNN's matmul (Library), or our
// AVX512-BF16 panels (kernels/bf16_panels.h; even input widths on CPUs with
// the dot product). Auto is oneDNN: on a Zen 5 core the panels ran whole
// forwards of the base model at 0.93-1.05x oneDNN's speed
// (docs/bench_infer.md), and oneDNN also has AMX tiles where the CPU does.
enum class Bf16Kernel { Auto, Library, Panels };
// "auto", "onednn" (Library) or "panels"; throws Error otherwise.
Bf16Kernel parse_bf16_kernel(std::string_view name);

// Activations in the form a product reads them: bf16 values for native Bf16
// products, quantized codes and their rows' parameters for Int8, the caller's
// fp32 rows in place otherwise. Preparing once lets products of the same input
// (Q, K and V) share the conversion, and a product can store its output
// straight into one for the next product (PackedMatmul::feeds). The buffers
// are kept between uses, so a warm PackedInput allocates nothing.
class PackedInput {
 public:
  int64_t rows() const { return rows_; }
  int64_t features() const { return features_; }

 private:
  friend class PackedMatmul;
  enum class Form { None, F32Rows, Bf16Values, Int8Codes };
  Form form_ = Form::None;
  int64_t rows_ = 0, features_ = 0;
  const float* f32_ = nullptr;  // F32 and emulated products: the caller's rows
  std::vector<uint16_t> bf16_;  // native Bf16: (rows, features)
  std::vector<uint8_t> codes_;  // Int8: (rows, features)
  std::vector<RowQuant> params_;
};

class PackedMatmul {
 public:
  // weight: (out, in) row-major fp32; with Bf16 rounded to nearest-even here,
  // with Int8 quantized here (in must not exceed kMaxInt8Depth).
  // emulate: take the fallback path even where oneDNN has the product (tests).
  // bf16_kernel: see Bf16Kernel; Panels on a CPU or shape without them is an error.
  PackedMatmul(const float* weight, int64_t out, int64_t in, MatmulPrecision precision, bool emulate = false,
               Bf16Kernel bf16_kernel = Bf16Kernel::Auto);
  ~PackedMatmul();
  PackedMatmul(const PackedMatmul&) = delete;
  PackedMatmul& operator=(const PackedMatmul&) = delete;

  int64_t out_features() const;
  int64_t in_features() const;
  MatmulPrecision precision() const;
  // y (rows, out) = epilogue(x (rows, in) W^T + bias); bias may be null. Safe
  // to call from several threads; a product shape is set up once and reused.
  void forward(const float* x, int64_t rows, const float* bias, float* y, const ExecContext& ctx,
               const Epilogue& epilogue = {}) const;
  // x (rows, in) prepared for this product, or any other of the same
  // precision, kind (native or emulated) and input width.
  void prepare(const float* x, int64_t rows, PackedInput& input, const ExecContext& ctx) const;
  // For a caller that rounds x to bf16 itself as it writes x (LayerNorm does,
  // while each row is in cache): where this product reads native bf16 values,
  // sets `input` up as prepare(x, rows, input) would and returns its
  // (rows, in) buffer, to be filled with x's values as convert_to_bf16 rounds
  // them; otherwise returns nullptr, and prepare() is the way.
  uint16_t* bf16_destination(const float* x, int64_t rows, PackedInput& input) const;
  // forward() on prepared activations.
  void forward(const PackedInput& x, const float* bias, float* y, const ExecContext& ctx,
               const Epilogue& epilogue = {}) const;
  // Whether forward() can store this product's output already prepared for
  // `next` (whose input width must be out_features()): a native Bf16 product
  // for a native Bf16 one, as bf16 values; an Int8 product for an Int8 one,
  // quantized row by row while the rows are rescaled. The fp32 output is then
  // never written.
  bool feeds(const PackedMatmul& next) const;
  // The output stored prepared (see feeds()) into y. No residual in the epilogue.
  void forward(const PackedInput& x, const float* bias, PackedInput& y, const ExecContext& ctx,
               const Epilogue& epilogue = {}) const;

  // Several products of the same prepared activations, each into its own
  // fp32 rows with its bias and no epilogue (a layer's Q, K and V): the same
  // bits as one forward after another. Where every one streams its weights
  // (1 to kGemvMaxRows rows, a decoding step's), they share one parallel
  // region: one fork and join instead of one per product. At most 8.
  struct Target {
    const PackedMatmul* matmul;
    const float* bias;  // may be null
    float* y;           // (rows, matmul->out_features())
  };
  static void forward_together(const PackedInput& x, std::span<const Target> targets, const ExecContext& ctx);
  // The weights as used (bf16 values widened back to fp32, int8 values times
  // their row's scale), (out, in).
  void unpack(float* weight) const;

  // Whether fp32 weights are packed into our own AVX2 panels
  // (kernels/f32_panels.h): on CPUs with AVX2 and FMA but no AVX-512, where
  // oneDNN has no packed fp32 kernels and OpenBLAS repacks the weights on
  // every call. Elsewhere fp32 packs into oneDNN's blocked layout.
  static bool own_f32_panels();
  // Whether this product's fp32 weights are in our panels.
  bool uses_f32_panels() const;
  // Whether this CPU has native bf16 products (AVX512-BF16 or AMX). Without
  // them bf16 is emulated (kernels/f32_panels.h): the weights kept as bf16
  // in our panels, widened to fp32 as products read them, the activations
  // rounded to bf16; the same numbers up to accumulation order, in half of
  // fp32's memory, a decoding step 1.5-2x fp32's speed, longer inputs at
  // fp32's.
  static bool native_bf16();
  // Whether this CPU has native int8 dot products (AVX512-VNNI or AVX-VNNI).
  // Without them int8 is emulated: the same int32 sums on our own panels
  // (kernels/int8_panels.h; AVX2 16-bit pair products where the CPU has
  // them), so the same numbers: 2-3x fp32's speed for a decoding step on an
  // AVX2 core, about 1.5x for longer inputs.
  static bool native_int8();
  // Whether the fallback path runs: the weights kept plain and multiplied by
  // kernels::gemm (bf16: kept as bf16 in our panels and multiplied there;
  // int8: in our int8 panels, kernels/int8_panels.h), the epilogue applied after.
  bool emulated() const;
  // Whether a native bf16 product runs on our AVX512-BF16 panels.
  bool bf16_panels() const;
  // Whether products of up to kGemvMaxRows rows (kernels/blocked_gemv.h)
  // stream the packed weights through our own loop instead of oneDNN's under
  // ctx: where oneDNN packed them in a layout that loop reads, and ctx's isa
  // has a vector loop for it (or is Scalar, which asks for the plain loops).
  bool streams_few_rows(const ExecContext& ctx) const;
  // The kernel's name: oneDNN's choice (e.g. "brg:avx512_core_bf16"), or ours.
  std::string kernel_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The epilogue as separate passes over y (rows, out): what the fused product
// computes, for paths without one.
void apply_epilogue(float* y, int64_t rows, int64_t out, const Epilogue& epilogue, const ExecContext& ctx);

// Reference: the product on bf16-rounded inputs, accumulated in double.
void gemm_bf16_ref(const float* x, int64_t rows, const float* weight, int64_t out, int64_t in, const float* bias,
                   float* y);

}  // namespace roformer::kernels

#include "kernels/packed_matmul.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/gemm.h"
#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {

namespace {

using dnnl::memory;
using Dt = memory::data_type;
using Tag = memory::format_tag;

// bf16 activations live here between the conversion and the product; one
// buffer per thread, grown as needed, so a forward does not allocate.
std::vector<uint16_t>& bf16_scratch(std::size_t n) {
  thread_local std::vector<uint16_t> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

dnnl::algorithm eltwise_of(Activation act) {
  switch (act) {
    case Activation::Gelu: return dnnl::algorithm::eltwise_gelu_erf;
    case Activation::GeluNew: return dnnl::algorithm::eltwise_gelu_tanh;
    case Activation::Relu: return dnnl::algorithm::eltwise_relu;
  }
  throw Error("packed matmul: unknown activation");
}

}  // namespace

struct PackedMatmul::Impl {
  int64_t out = 0, in = 0;
  MatmulPrecision precision = MatmulPrecision::F32;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  memory::desc packed_desc;  // the layout oneDNN chose for the weights
  memory packed;
  std::string kernel;
  // The fallback: the weights (bf16-rounded for Bf16) kept plain, multiplied
  // by kernels::gemm after rounding the activations the same way.
  bool emulated = false;
  std::vector<float> plain;  // (out, in)

  Dt src_type() const { return precision == MatmulPrecision::Bf16 ? Dt::bf16 : Dt::f32; }

  // One product set-up per (rows, bias, activation, residual): creating a
  // primitive costs far more than running a small one, and inference repeats
  // a few shapes.
  struct Shape {
    dnnl::matmul product;
    dnnl::reorder to_bf16;  // Bf16 only
    memory::desc src_f32, src, dst, bias, residual;
  };
  using Key = std::tuple<int64_t, bool, int, bool>;
  mutable std::mutex mutex;
  mutable std::map<Key, std::shared_ptr<const Shape>> shapes;

  memory::desc bias_desc() const { return memory::desc({1, out}, Dt::f32, Tag::ab); }

  dnnl::matmul::primitive_desc describe(int64_t rows, const memory::desc& weights, bool bias,
                                        std::optional<Activation> act, bool residual) const {
    const memory::desc src({rows, in}, src_type(), Tag::ab);
    const memory::desc dst({rows, out}, Dt::f32, Tag::ab);
    dnnl::post_ops ops;
    if (act) ops.append_eltwise(1.0f, eltwise_of(*act), 0.0f, 0.0f);
    if (residual) ops.append_binary(dnnl::algorithm::binary_add, dst);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const dnnl::matmul::desc d = bias ? dnnl::matmul::desc(src, weights, bias_desc(), dst)
                                      : dnnl::matmul::desc(src, weights, dst);
    return dnnl::matmul::primitive_desc(d, attr, engine);
  }

  std::shared_ptr<const Shape> shape(int64_t rows, bool bias, const Epilogue& e) const {
    const Key key{rows, bias, e.activation ? static_cast<int>(*e.activation) : -1, e.residual != nullptr};
    std::lock_guard<std::mutex> lock(mutex);
    auto& slot = shapes[key];
    if (!slot) {
      auto s = std::make_shared<Shape>();
      s->product = dnnl::matmul(describe(rows, packed_desc, bias, e.activation, e.residual != nullptr));
      s->src_f32 = memory::desc({rows, in}, Dt::f32, Tag::ab);
      s->src = memory::desc({rows, in}, src_type(), Tag::ab);
      s->dst = memory::desc({rows, out}, Dt::f32, Tag::ab);
      s->bias = bias_desc();
      s->residual = s->dst;
      if (precision == MatmulPrecision::Bf16)
        s->to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(engine, s->src_f32, engine, s->src));
      slot = std::move(s);
    }
    return slot;
  }
};

PackedMatmul::PackedMatmul(const float* weight, int64_t out, int64_t in, MatmulPrecision precision, bool emulate)
    : impl_(std::make_unique<Impl>()) {
  ROFORMER_CHECK(out > 0 && in > 0, "packed matmul: empty weight matrix");
  Impl& m = *impl_;
  m.out = out;
  m.in = in;
  m.precision = precision;
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
  } catch (const dnnl::error&) {
    m.emulated = true;
    m.packed = memory();
    m.kernel = precision == MatmulPrecision::Bf16 ? "emulated: bf16-rounded operands, fp32 GEMM" : "plain fp32 GEMM";
    m.plain.assign(weight, weight + out * in);
    if (precision == MatmulPrecision::Bf16)
      for (float& v : m.plain) v = round_bf16(v);
  }
}

PackedMatmul::~PackedMatmul() = default;

int64_t PackedMatmul::out_features() const { return impl_->out; }
int64_t PackedMatmul::in_features() const { return impl_->in; }
MatmulPrecision PackedMatmul::precision() const { return impl_->precision; }
std::string PackedMatmul::kernel_name() const { return impl_->kernel; }
bool PackedMatmul::emulated() const { return impl_->emulated; }

bool PackedMatmul::native_bf16() {
  const auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

void PackedMatmul::forward(const float* x, int64_t rows, const float* bias, float* y, const ExecContext& ctx,
                           const Epilogue& epilogue) const {
  ROFORMER_CHECK(rows >= 0, "packed matmul: negative row count");
  if (rows == 0) return;
  const Impl& m = *impl_;
  if (m.emulated) {
    const float* a = x;
    if (m.precision == MatmulPrecision::Bf16) {
      thread_local std::vector<float> rounded;
      const std::size_t n = static_cast<std::size_t>(rows * m.in);
      if (rounded.size() < n) rounded.resize(n);
      for (std::size_t i = 0; i < n; ++i) rounded[i] = round_bf16(x[i]);
      a = rounded.data();
    }
    gemm_bias(false, true, rows, m.out, m.in, a, m.in, m.plain.data(), m.in, bias, y, m.out, ctx);
    apply_epilogue(y, rows, m.out, epilogue, ctx);
    return;
  }
  try {
    const auto s = m.shape(rows, bias != nullptr, epilogue);
    use_library_threads(ctx.threads);
    dnnl::stream stream(m.engine);
    memory src;
    if (m.precision == MatmulPrecision::Bf16) {
      auto& scratch = bf16_scratch(static_cast<std::size_t>(rows * m.in));
      memory src_f32(s->src_f32, m.engine, const_cast<float*>(x));
      src = memory(s->src, m.engine, scratch.data());
      s->to_bf16.execute(stream, src_f32, src);
    } else {
      src = memory(s->src, m.engine, const_cast<float*>(x));
    }
    memory dst(s->dst, m.engine, y);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, m.packed}, {DNNL_ARG_DST, dst}};
    if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, memory(s->bias, m.engine, const_cast<float*>(bias)));
    if (epilogue.residual != nullptr) {
      const int index = epilogue.activation ? 1 : 0;  // the binary add follows the eltwise post-op
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1,
                   memory(s->residual, m.engine, const_cast<float*>(epilogue.residual)));
    }
    s->product.execute(stream, args);
    stream.wait();
  } catch (const dnnl::error& e) {
    throw Error(std::string("packed matmul: oneDNN failed: ") + e.what());
  }
}

void PackedMatmul::unpack(float* weight) const {
  const Impl& m = *impl_;
  if (m.emulated) {
    std::copy(m.plain.begin(), m.plain.end(), weight);
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

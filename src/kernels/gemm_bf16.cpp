#include "kernels/gemm_bf16.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
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

// The activations rounded to bf16 live here between the conversion and the
// product; one buffer per thread, grown as needed, so a forward does not allocate.
std::vector<uint16_t>& bf16_scratch(std::size_t n) {
  thread_local std::vector<uint16_t> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

}  // namespace

struct Bf16Matmul::Impl {
  int64_t out = 0, in = 0;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  memory::desc packed_desc;  // the layout oneDNN chose for the weights
  memory packed;
  std::string kernel;
  // Where oneDNN has no bf16 product for this CPU (no AVX-512): the
  // bf16-rounded weights widened to fp32, multiplied by an fp32 GEMM after
  // rounding the activations the same way. Same numbers, fp32 speed.
  bool emulated = false;
  std::vector<float> rounded;  // (out, in)

  // One product set-up per (rows, has bias): creating a primitive costs far
  // more than running a small one, and inference repeats a few shapes.
  struct Shape {
    dnnl::matmul product;
    dnnl::reorder to_bf16;
    memory::desc src_f32, src_bf16, dst, bias;
  };
  mutable std::mutex mutex;
  mutable std::map<std::pair<int64_t, bool>, std::shared_ptr<const Shape>> shapes;

  memory::desc bias_desc() const { return memory::desc({1, out}, Dt::f32, Tag::ab); }

  dnnl::matmul::primitive_desc describe(int64_t rows, const memory::desc& weights, bool bias) const {
    const memory::desc src({rows, in}, Dt::bf16, Tag::ab);
    const memory::desc dst({rows, out}, Dt::f32, Tag::ab);
    const dnnl::matmul::desc d = bias ? dnnl::matmul::desc(src, weights, bias_desc(), dst)
                                      : dnnl::matmul::desc(src, weights, dst);
    return dnnl::matmul::primitive_desc(d, engine);
  }

  std::shared_ptr<const Shape> shape(int64_t rows, bool bias) const {
    std::lock_guard<std::mutex> lock(mutex);
    auto& slot = shapes[{rows, bias}];
    if (!slot) {
      auto s = std::make_shared<Shape>();
      s->product = dnnl::matmul(describe(rows, packed_desc, bias));
      s->src_f32 = memory::desc({rows, in}, Dt::f32, Tag::ab);
      s->src_bf16 = memory::desc({rows, in}, Dt::bf16, Tag::ab);
      s->dst = memory::desc({rows, out}, Dt::f32, Tag::ab);
      s->bias = bias_desc();
      s->to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(engine, s->src_f32, engine, s->src_bf16));
      slot = std::move(s);
    }
    return slot;
  }
};

Bf16Matmul::Bf16Matmul(const float* weight, int64_t out, int64_t in, bool emulate) : impl_(std::make_unique<Impl>()) {
  ROFORMER_CHECK(out > 0 && in > 0, "bf16 matmul: empty weight matrix");
  impl_->out = out;
  impl_->in = in;
  try {
    if (emulate || !native()) throw dnnl::error(dnnl_unimplemented, "no native bf16 products on this CPU");
    // W (out, in) row-major is the (in, out) matrix W^T in column-major ("ba").
    const memory::desc plain({in, out}, Dt::f32, Tag::ba);
    const memory::desc any({in, out}, Dt::bf16, Tag::any);
    const auto pd = impl_->describe(128, any, true);
    impl_->packed_desc = pd.weights_desc();
    impl_->kernel = pd.impl_info_str();
    impl_->packed = memory(impl_->packed_desc, impl_->engine);
    memory source(plain, impl_->engine, const_cast<float*>(weight));
    dnnl::stream stream(impl_->engine);
    dnnl::reorder(source, impl_->packed).execute(stream, source, impl_->packed);
    stream.wait();
  } catch (const dnnl::error&) {
    impl_->emulated = true;
    impl_->kernel = "emulated: bf16-rounded operands, fp32 GEMM";
    impl_->rounded.resize(static_cast<std::size_t>(out * in));
    for (std::size_t i = 0; i < impl_->rounded.size(); ++i) impl_->rounded[i] = bf16_to_f32(f32_to_bf16(weight[i]));
  }
}

Bf16Matmul::~Bf16Matmul() = default;

int64_t Bf16Matmul::out_features() const { return impl_->out; }
int64_t Bf16Matmul::in_features() const { return impl_->in; }
std::string Bf16Matmul::kernel_name() const { return impl_->kernel; }
bool Bf16Matmul::emulated() const { return impl_->emulated; }

bool Bf16Matmul::native() {
  const auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

void Bf16Matmul::forward(const float* x, int64_t rows, const float* bias, float* y, const ExecContext& ctx) const {
  ROFORMER_CHECK(rows >= 0, "bf16 matmul: negative row count");
  if (rows == 0) return;
  const Impl& m = *impl_;
  if (m.emulated) {
    thread_local std::vector<float> xr;
    const std::size_t n = static_cast<std::size_t>(rows * m.in);
    if (xr.size() < n) xr.resize(n);
    for (std::size_t i = 0; i < n; ++i) xr[i] = bf16_to_f32(f32_to_bf16(x[i]));
    gemm_bias(false, true, rows, m.out, m.in, xr.data(), m.in, m.rounded.data(), m.in, bias, y, m.out, ctx);
    return;
  }
  try {
    const auto s = m.shape(rows, bias != nullptr);
    use_library_threads(ctx.threads);
    auto& scratch = bf16_scratch(static_cast<std::size_t>(rows * m.in));
    memory src_f32(s->src_f32, m.engine, const_cast<float*>(x));
    memory src(s->src_bf16, m.engine, scratch.data());
    memory dst(s->dst, m.engine, y);
    dnnl::stream stream(m.engine);
    s->to_bf16.execute(stream, src_f32, src);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, m.packed}, {DNNL_ARG_DST, dst}};
    if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, memory(s->bias, m.engine, const_cast<float*>(bias)));
    s->product.execute(stream, args);
    stream.wait();
  } catch (const dnnl::error& e) {
    throw Error(std::string("bf16 matmul: oneDNN failed: ") + e.what());
  }
}

void Bf16Matmul::unpack(float* weight) const {
  const Impl& m = *impl_;
  if (m.emulated) {
    std::copy(m.rounded.begin(), m.rounded.end(), weight);
    return;
  }
  const memory::desc plain({m.in, m.out}, Dt::f32, Tag::ba);
  memory target(plain, m.engine, weight);
  dnnl::stream stream(m.engine);
  dnnl::reorder(m.packed, target).execute(stream, const_cast<memory&>(m.packed), target);
  stream.wait();
}

void gemm_bf16_ref(const float* x, int64_t rows, const float* weight, int64_t out, int64_t in, const float* bias,
                   float* y) {
  auto round = [](float v) { return bf16_to_f32(f32_to_bf16(v)); };
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias != nullptr ? bias[o] : 0.0;
      for (int64_t i = 0; i < in; ++i)
        acc += static_cast<double>(round(x[r * in + i])) * static_cast<double>(round(weight[o * in + i]));
      y[r * out + o] = static_cast<float>(acc);
    }
}

}  // namespace roformer::kernels

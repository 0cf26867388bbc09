// RoPE driver: argument checks, angle rows, the walk over tokens, and the
// choice of kernel for the requested instruction set.
#include <omp.h>
#include <xmmintrin.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "kernels/rope_kernels.h"
#include "roformer/error.h"
#include "roformer/rope.h"

namespace roformer {

void RopeSpec::validate() const {
  ROFORMER_CHECK(head_dim > 0 && head_dim % 2 == 0, "rope: head_dim must be positive and even, got " + std::to_string(head_dim));
  ROFORMER_CHECK(rotary_dim >= 0, "rope: rotary_dim must not be negative, got " + std::to_string(rotary_dim));
  ROFORMER_CHECK(rotary() % 2 == 0, "rope: rotary_dim must be even, got " + std::to_string(rotary_dim));
  ROFORMER_CHECK(rotary() <= head_dim, "rope: rotary_dim " + std::to_string(rotary_dim) + " exceeds head_dim " +
                                  std::to_string(head_dim));
  ROFORMER_CHECK(std::isfinite(base) && base > 1.0, "rope: base must be a finite number > 1, got " + std::to_string(base));
  ROFORMER_CHECK(std::isfinite(position_scale) && position_scale > 0,
        "rope: position_scale must be a finite positive number, got " + std::to_string(position_scale));
}

void rope_angles(const RopeSpec& spec, int64_t position, float* cos_out, float* sin_out) {
  const int64_t r = spec.rotary();
  const double m = static_cast<double>(position) * spec.position_scale;
  for (int64_t i = 0; i < r / 2; ++i) {
    // The same expression HF uses for its table: m / base^(2i/r), in double.
    const double angle = m / std::pow(spec.base, static_cast<double>(2 * i) / static_cast<double>(r));
    cos_out[i] = static_cast<float>(std::cos(angle));
    sin_out[i] = static_cast<float>(std::sin(angle));
  }
}

RopeTable::RopeTable(const RopeSpec& spec, int64_t cache_limit) : spec_(spec), cache_limit_(cache_limit) {
  spec_.validate();
  ROFORMER_CHECK(cache_limit >= 0, "rope: cache_limit must not be negative");
}

void RopeTable::ensure(int64_t max_position) {
  const int64_t want = std::min(max_position + 1, cache_limit_);
  if (want <= rows_) return;
  // Grow geometrically so that decoding one token at a time stays linear overall.
  const int64_t grown = std::min(cache_limit_, std::max(want, 2 * rows_));
  const int64_t p = spec_.pairs();
  table_.resize(static_cast<std::size_t>(grown * 2 * p));
  for (int64_t pos = rows_; pos < grown; ++pos) {
    float* row = table_.data() + pos * 2 * p;
    rope_angles(spec_, pos, row, row + p);
  }
  rows_ = grown;
}

namespace {

template <typename T>
using TokenFn = void (*)(const T*, T*, const float*, const float*, const kernels::RopeTokenArgs&);

template <typename T>
TokenFn<T> pick_kernel(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa), "rope: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  switch (isa) {
    case Isa::Avx512: return kernels::rope_token_avx512;
    case Isa::Avx2: return kernels::rope_token_avx2;
    case Isa::Scalar: break;
  }
  return kernels::rope_token_ref;
}

struct Axes {
  int64_t batch, seq, heads, head_dim;
  int64_t sb, ss, sh;
};

Axes axes_of(const Tensor& t, QkvLayout layout) {
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  if (layout == QkvLayout::BSHD) return {s[0], s[1], s[2], s[3], st[0], st[1], st[2]};
  return {s[0], s[2], s[1], s[3], st[0], st[2], st[1]};
}

// Byte range [lo, hi) a strided tensor can touch.
std::pair<const char*, const char*> span_of(const Tensor& t) {
  int64_t last = 0;
  for (int64_t d = 0; d < t.dim(); ++d) last += (t.shape()[d] - 1) * t.strides()[d];
  const char* base = static_cast<const char*>(t.raw());
  return {base, base + (last + 1) * static_cast<int64_t>(dtype_size(t.dtype()))};
}

void check_args(const RopeSpec& spec, const Tensor& x, const Tensor& out, const Tensor& positions,
                QkvLayout layout) {
  ROFORMER_CHECK(x.dim() == 4, "rope: expected a 4-D query/key tensor, got shape " + shape_str(x.shape()));
  ROFORMER_CHECK(out.shape() == x.shape(), "rope: output shape " + shape_str(out.shape()) + " differs from input shape " +
                                      shape_str(x.shape()));
  ROFORMER_CHECK(x.dtype() == out.dtype(), "rope: input and output dtypes differ");
  ROFORMER_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::BF16, "rope: tensors must be F32 or BF16");
  ROFORMER_CHECK(x.strides()[3] == 1 && out.strides()[3] == 1, "rope: the head dimension must be contiguous");
  const Axes a = axes_of(x, layout);
  ROFORMER_CHECK(a.head_dim == spec.head_dim, "rope: tensor head size " + std::to_string(a.head_dim) +
                                         " differs from the table's head_dim " + std::to_string(spec.head_dim));
  ROFORMER_CHECK(positions.dtype() == DType::I64, "rope: positions must be I64");
  ROFORMER_CHECK(positions.is_contiguous(), "rope: positions must be contiguous");
  const bool shared = positions.dim() == 1 && positions.size(0) == a.seq;
  const bool per_row = positions.dim() == 2 && positions.size(0) == a.batch && positions.size(1) == a.seq;
  ROFORMER_CHECK(shared || per_row, "rope: positions of shape " + shape_str(positions.shape()) + " do not match [seq] = [" +
                               std::to_string(a.seq) + "] or [batch, seq] = [" + std::to_string(a.batch) + ", " +
                               std::to_string(a.seq) + "]");
  if (x.raw() != out.raw() && x.numel() > 0) {
    auto [xl, xh] = span_of(x);
    auto [ol, oh] = span_of(out);
    ROFORMER_CHECK(oh <= xl || xh <= ol, "rope: output partially overlaps input (use the same tensor for in-place)");
  } else if (x.numel() > 0) {
    ROFORMER_CHECK(x.strides() == out.strides(), "rope: in-place output must have the input's strides");
  }
}

// x and y as raw buffers with their axes; positions: seq values, or
// batch * seq when per_row. Checked by the caller.
template <typename T>
void run(RopeTable& table, const T* xp, T* yp, const Axes& ax, const Axes& ay, const int64_t* pos, bool per_row,
         RopeDirection direction, const ExecContext& ctx) {
  const RopeSpec& spec = table.spec();
  const int64_t pos_row_stride = per_row ? ax.seq : 0;
  const int64_t tokens = ax.batch * ax.seq;
  if (tokens == 0 || ax.heads == 0) return;
  const int64_t numel = tokens * ax.heads * ax.head_dim;

  // Cache the positions under the limit; rarer far positions are computed per token.
  int64_t max_cached = -1;
  for (int64_t i = 0; i < (per_row ? tokens : ax.seq); ++i)
    if (pos[i] < table.cache_limit()) max_cached = std::max(max_cached, pos[i]);
  if (max_cached >= 0) table.ensure(max_cached);

  kernels::RopeTokenArgs args;
  args.heads = ax.heads;
  args.head_dim = ax.head_dim;
  args.pairs = spec.pairs();
  args.x_head_stride = ax.sh;
  args.y_head_stride = ay.sh;
  args.layout = spec.layout;
  args.inverse = direction == RopeDirection::Backward;
  // Outputs far larger than a core's L2 are written past the cache: it saves
  // the read-for-ownership of every output line (a third of the traffic).
  constexpr std::size_t kStreamBytes = std::size_t{16} << 20;
  const bool aligned = reinterpret_cast<uintptr_t>(yp) % 64 == 0 && ay.sb % 16 == 0 && ay.ss % 16 == 0 &&
                       ay.sh % 16 == 0;
  args.stream = (ctx.isa == Isa::Avx512 || ctx.isa == Isa::Avx2) && std::is_same_v<T, float> &&
                static_cast<const void*>(xp) != static_cast<const void*>(yp) &&
                static_cast<std::size_t>(numel) * sizeof(T) >= kStreamBytes && aligned &&
                spec.layout == RopeLayout::Interleaved && spec.rotary() == spec.head_dim && spec.head_dim % 16 == 0;
  const TokenFn<T> kernel = pick_kernel<T>(ctx.isa);
  const int64_t pairs = spec.pairs();
  const RopeTable& cached = table;
  // The kernel stalls on loads of x (measured: ~15% faster in L3-sized
  // cases when the next token's rows are requested one token ahead).
  const int64_t row_bytes = ax.head_dim * static_cast<int64_t>(sizeof(T));
  auto prefetch_token = [&](int64_t t) {
    const char* token = reinterpret_cast<const char*>(xp + (t / ax.seq) * ax.sb + (t % ax.seq) * ax.ss);
    for (int64_t h = 0; h < ax.heads; ++h)
      for (int64_t off = 0; off < row_bytes; off += 64)
        _mm_prefetch(token + h * ax.sh * static_cast<int64_t>(sizeof(T)) + off, _MM_HINT_T0);
  };
  auto rotate_tokens = [&](int64_t begin, int64_t end, float* scratch) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / ax.seq, s = t % ax.seq;
      const int64_t p = pos[b * pos_row_stride + s];
      const float* row = cached.row(p);
      if (!row) {
        rope_angles(spec, p, scratch, scratch + pairs);
        row = scratch;
      }
      if (t + 1 < end) prefetch_token(t + 1);
      kernel(xp + b * ax.sb + s * ax.ss, yp + b * ay.sb + s * ay.ss, row, row + pairs, args);
    }
  };
  // Threads pay off only when there is more than a few microseconds of work;
  // below that even entering a one-thread OpenMP region costs more than RoPE.
  if (ctx.threads == 1 || numel < (int64_t{1} << 15)) {
    // Angles of uncached positions: on the stack for usual head sizes (no allocation per call).
    float stack[512];
    std::vector<float> heap(2 * pairs > 512 ? static_cast<std::size_t>(2 * pairs) : 0);
    rotate_tokens(0, tokens, heap.empty() ? stack : heap.data());
    if (args.stream) _mm_sfence();
    return;
  }
#pragma omp parallel num_threads(ctx.threads)
  {
    float stack[512];
    std::vector<float> heap(2 * pairs > 512 ? static_cast<std::size_t>(2 * pairs) : 0);
    const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
    rotate_tokens(tokens * id / nt, tokens * (id + 1) / nt, heap.empty() ? stack : heap.data());
    if (args.stream) _mm_sfence();
  }
}

}  // namespace

void rope_apply(RopeTable& table, const Tensor& x, const Tensor& out, const Tensor& positions, QkvLayout layout,
                RopeDirection direction, const ExecContext& ctx) {
  ROFORMER_CHECK(ctx.threads >= 1, "rope: thread count must be at least 1");
  check_args(table.spec(), x, out, positions, layout);
  const Axes ax = axes_of(x, layout), ay = axes_of(out, layout);
  const bool per_row = positions.dim() == 2;
  if (x.dtype() == DType::F32)
    run<float>(table, x.data<float>(), out.data<float>(), ax, ay, positions.data<int64_t>(), per_row, direction, ctx);
  else
    run<bf16>(table, static_cast<const bf16*>(x.raw()), static_cast<bf16*>(out.raw()), ax, ay,
              positions.data<int64_t>(), per_row, direction, ctx);
}

void rope_apply_inplace(RopeTable& table, float* x, int64_t batch, int64_t seq, int64_t heads,
                        const int64_t* positions, bool per_row, RopeDirection direction, const ExecContext& ctx) {
  ROFORMER_CHECK(ctx.threads >= 1, "rope: thread count must be at least 1");
  ROFORMER_CHECK(batch >= 0 && seq >= 0 && heads >= 0, "rope: negative dimension");
  ROFORMER_CHECK(positions != nullptr || batch * seq == 0, "rope: positions are missing");
  const int64_t d = table.spec().head_dim;
  const Axes a{batch, seq, heads, d, seq * heads * d, heads * d, d};
  run<float>(table, x, x, a, a, positions, per_row, direction, ctx);
}

}  // namespace roformer

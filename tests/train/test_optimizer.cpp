// AdamW against (1) the README's algorithm evaluated in double, (2) torch 1.13's
// op-by-op fp32 sequence (one pass per tensor op, as torch runs it), bit for
// bit, on every instruction set and thread count; plus groups, state
// save/load/resume and argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "roformer/error.h"
#include "roformer/optim.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"
#include "train/train_test_util.h"

namespace roformer {
namespace {

using testing::bit_equal;
using testing::ParamStore;
using testing::random_floats;

struct Hyper {
  double b1 = 0.9, b2 = 0.999, eps = 1e-8;
};

// The README's seven steps in double: the exact algorithm, no fp32 rounding.
struct RefAdamW {
  std::vector<double> p, m, v;
  int64_t t = 0;
  explicit RefAdamW(const std::vector<float>& init) : p(init.begin(), init.end()), m(init.size()), v(init.size()) {}
  void step(const std::vector<float>& g, double lr, double wd, const Hyper& h) {
    ++t;
    const double bc1 = 1 - std::pow(h.b1, static_cast<double>(t));
    const double bc2 = 1 - std::pow(h.b2, static_cast<double>(t));
    for (std::size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1 - lr * wd;
      m[i] = h.b1 * m[i] + (1 - h.b1) * g[i];
      v[i] = h.b2 * v[i] + (1 - h.b2) * double(g[i]) * g[i];
      const double denom = std::sqrt(v[i]) / std::sqrt(bc2) + h.eps;
      p[i] -= lr / bc1 * m[i] / denom;
    }
  }
};

// torch 1.13 _single_tensor_adamw as torch executes it on CPU: every tensor op
// is a separate pass that rounds to fp32, with its Python-double scalar cast to
// fp32. add_(alpha) is vec::fmadd, addcmul_ is contracted to an FMA (see
// src/train/optimizer.cpp).
struct TorchLikeAdamW {
  std::vector<float> p, m, v;
  int64_t t = 0;
  explicit TorchLikeAdamW(const std::vector<float>& init) : p(init), m(init.size()), v(init.size()) {}
  void step(const std::vector<float>& g, double lr, double wd, const Hyper& h) {
    const std::size_t n = p.size();
    t += 1;
    for (float& x : p) x *= static_cast<float>(1 - lr * wd);  // param.mul_(1 - lr * weight_decay)
    for (float& x : m) x *= static_cast<float>(h.b1);         // exp_avg.mul_(beta1)
    for (std::size_t i = 0; i < n; ++i)                        // .add_(grad, alpha=1 - beta1)
      m[i] = std::fma(g[i], static_cast<float>(1 - h.b1), m[i]);
    for (float& x : v) x *= static_cast<float>(h.b2);  // exp_avg_sq.mul_(beta2)
    for (std::size_t i = 0; i < n; ++i)                 // .addcmul_(grad, grad, value=1 - beta2)
      v[i] = std::fma(static_cast<float>(1 - h.b2) * g[i], g[i], v[i]);
    const double step = static_cast<double>(t);
    const double bias_correction1 = 1 - std::pow(h.b1, step);
    const double bias_correction2 = 1 - std::pow(h.b2, step);
    const double step_size = lr / bias_correction1;
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    std::vector<float> denom(n);
    for (std::size_t i = 0; i < n; ++i) denom[i] = std::sqrt(v[i]);  // exp_avg_sq.sqrt()
    for (float& x : denom) x = x / static_cast<float>(bias_correction2_sqrt);
    for (float& x : denom) x = x + static_cast<float>(h.eps);  // .add_(eps)
    for (std::size_t i = 0; i < n; ++i)                          // param.addcdiv_(exp_avg, denom, value=-step_size)
      p[i] = p[i] + static_cast<float>(-step_size) * m[i] / denom[i];
  }
};

// Gradients spanning the scales that matter: O(1), small, and within a few eps
// of zero (where the update is most sensitive to how eps is applied), plus exact
// zeros. Each element keeps its scale across steps; signs and sizes vary.
constexpr float kScales[] = {1.0f, 1e-3f, 3e-8f, 1e-8f, 3e-9f, 0.0f};

std::vector<float> make_grad(std::size_t n, uint32_t seed) {
  std::vector<float> g = random_floats(n, seed, -1.0f, 1.0f);
  for (std::size_t i = 0; i < n; ++i) g[i] *= kScales[i % 6];
  return g;
}

struct Config {
  const char* label;
  double lr, wd;
};

// fp32 vs the exact algorithm. Per step each parameter takes two fp32 roundings
// (decay, then adding the update: ≤ 2^-24·|p| each, 2^-23 together) and an
// update of size O(lr) computed by ~8 fp32 ops, plus the error carried in m and
// v from earlier steps (m can cancel, so its error is absolute: ≤ k·2^-22 of
// the gradient's scale after k steps). Bound used: after K steps
// |p32 − p64| ≤ K·(2^-22·|p| + 2^-19·lr); the measured worst is printed (about
// a third of it). A misplaced eps (inside the sqrt or before the bias
// correction), the decay applied after the update or to the update, or a wrong
// bias correction moves the 1e-8-scale entries by O(lr), 10^4 times more.
TEST(AdamW, MatchesDoublePrecisionAlgorithm) {
  const Config configs[] = {{"torch defaults", 1e-3, 0.01}, {"no decay", 1e-3, 0.0}, {"large lr and decay", 0.05, 0.2}};
  const Hyper h;
  const std::size_t n = 1203;
  for (const Config& cfg : configs) {
    SCOPED_TRACE(cfg.label);
    ParamStore store;
    store.add("w", random_floats(n, 7, -2.0f, 2.0f));
    AdamWOptions opt;
    opt.weight_decay = cfg.wd;
    AdamW adam(store.params(), opt);
    RefAdamW ref(store.value(0));
    const int kSteps = 8;
    double worst_ratio = 0;
    for (int s = 0; s < kSteps; ++s) {
      store.set_grad(0, make_grad(n, 100 + static_cast<uint32_t>(s)));
      const double lr = cfg.lr * (s % 3 == 2 ? 0.5 : 1.0);  // the rate may change between steps
      adam.step(lr);
      ref.step(store.grad(0), lr, cfg.wd, h);
      for (std::size_t i = 0; i < n; ++i) {
        const double tol = (s + 1) * (std::ldexp(std::fabs(ref.p[i]), -22) + std::ldexp(cfg.lr, -19));
        const double d = std::fabs(store.value(0)[i] - ref.p[i]);
        ASSERT_LE(d, tol) << "step " << s + 1 << " element " << i << " grad " << store.grad(0)[i];
        worst_ratio = std::max(worst_ratio, d / tol);
      }
    }
    EXPECT_EQ(adam.step_count(), kSteps);
    // The moments: m may cancel, so its error is bounded by the gradient's
    // scale (two roundings a step); v sums positive terms, so relative.
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_NEAR(adam.exp_avg(0)[i], ref.m[i], kSteps * std::ldexp(kScales[i % 6], -22)) << i;
      ASSERT_NEAR(adam.exp_avg_sq(0)[i], ref.v[i], kSteps * std::ldexp(ref.v[i], -22)) << i;
    }
    std::printf("[%s] worst |p32 - p64| / tolerance = %.3f\n", cfg.label, worst_ratio);
  }
}

// The fused loop rounds exactly like torch's sequence of tensor ops, on every
// instruction set this CPU has and with threads (which split big tensors).
TEST(AdamW, BitIdenticalToTorchOpSequence) {
  const Hyper h;
  const std::vector<std::size_t> sizes = {1, 7, 8, 37, 1000, 70001};  // 70001: the parallel path
  for (Isa isa : supported_isas()) {
    for (int threads : {1, 3}) {
      SCOPED_TRACE(std::string(isa_name(isa)) + ", threads " + std::to_string(threads));
      ParamStore store;
      for (std::size_t k = 0; k < sizes.size(); ++k)
        store.add(std::string("p") + std::to_string(k), random_floats(sizes[k], 11 + static_cast<uint32_t>(k), -3.0f, 3.0f));
      std::vector<TorchLikeAdamW> ref;
      for (std::size_t k = 0; k < sizes.size(); ++k) ref.emplace_back(store.value(k));
      AdamWOptions opt;
      opt.exec.isa = isa;
      opt.exec.threads = threads;
      // Two groups with different decay and lr scale.
      std::vector<ParamGroup> groups(2);
      groups[0] = ParamGroup{{0, 2, 4}, 0.05, 1.0};
      groups[1] = ParamGroup{{1, 3, 5}, 0.0, 0.25};
      AdamW adam(store.params(), groups, opt);
      for (int s = 0; s < 6; ++s) {
        const double lr = 2e-3 / (1 + s);
        for (std::size_t k = 0; k < sizes.size(); ++k) {
          store.set_grad(k, make_grad(sizes[k], 1000 * static_cast<uint32_t>(s) + static_cast<uint32_t>(k)));
          const ParamGroup& g = groups[k % 2 == 0 ? 0 : 1];
          ref[k].step(store.grad(k), lr * g.lr_scale, g.weight_decay, h);
        }
        adam.step(lr);
        for (std::size_t k = 0; k < sizes.size(); ++k) {
          ASSERT_TRUE(bit_equal(store.value(k), ref[k].p)) << "param " << k << " step " << s + 1;
          ASSERT_TRUE(bit_equal(std::vector<float>(adam.exp_avg(k), adam.exp_avg(k) + sizes[k]), ref[k].m));
          ASSERT_TRUE(bit_equal(std::vector<float>(adam.exp_avg_sq(k), adam.exp_avg_sq(k) + sizes[k]), ref[k].v));
        }
      }
    }
  }
}

TEST(AdamW, FirstStepIsSignOfGradientTimesLr) {
  // t = 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + eps) after the decay.
  ParamStore store;
  store.add("w", {1.0f, -2.0f, 0.5f, 3.0f, 0.25f});
  store.set_grad(0, {0.3f, -4.0f, 1e-8f, 0.0f, -2e-8f});
  AdamWOptions opt;
  opt.lr = 0.01;
  opt.weight_decay = 0.1;
  AdamW adam(store.params(), opt);
  adam.step();
  const double decay = 1 - 0.01 * 0.1;
  const double init[] = {1.0, -2.0, 0.5, 3.0, 0.25};
  for (int i = 0; i < 5; ++i) {
    const double g = store.grad(0)[i];
    const double expected = init[i] * decay - 0.01 * g / (std::fabs(g) + 1e-8);
    EXPECT_NEAR(store.value(0)[i], expected, 4e-7) << i;
  }
  EXPECT_NEAR(store.value(0)[2], 0.5 * decay - 0.005, 4e-7);  // |g| = eps: half a step
}

TEST(AdamW, SkipsParametersWithoutGradient) {
  ParamStore store;
  store.add("table", random_floats(64, 3), /*trainable=*/false);
  store.add("w", random_floats(10, 4));
  const std::vector<float> table = store.value(0);
  store.set_grad(1, random_floats(10, 5));
  AdamWOptions opt;
  opt.weight_decay = 0.5;  // would visibly shrink the table if it were decayed
  AdamW adam(store.params(), opt);
  for (int s = 0; s < 3; ++s) adam.step(0.1);
  EXPECT_TRUE(bit_equal(store.value(0), table));
  EXPECT_EQ(adam.exp_avg(0), nullptr);
  EXPECT_NE(store.value(1), random_floats(10, 4));
  for (const auto& [name, t] : adam.state()) EXPECT_EQ(name.find("table"), std::string::npos) << name;
}

TEST(AdamW, ZeroGradClearsTrainableGradients) {
  ParamStore store;
  store.add("a", random_floats(20, 1));
  store.add("b", random_floats(3, 2));
  store.set_grad(0, random_floats(20, 3));
  store.set_grad(1, random_floats(3, 4));
  AdamW adam(store.params());
  adam.zero_grad();
  EXPECT_EQ(store.grad(0), std::vector<float>(20, 0.0f));
  EXPECT_EQ(store.grad(1), std::vector<float>(3, 0.0f));
}

TEST(AdamW, ZeroLearningRateChangesOnlyTheMoments) {
  ParamStore store;
  store.add("w", random_floats(16, 1));
  const std::vector<float> init = store.value(0);
  store.set_grad(0, random_floats(16, 2));
  AdamW adam(store.params());
  adam.step(0.0);
  EXPECT_TRUE(bit_equal(store.value(0), init));
  EXPECT_EQ(adam.step_count(), 1);
  EXPECT_NE(adam.exp_avg(0)[0], 0.0f);
}

TEST(BertStyleGroups, SplitsByName) {
  ParamStore store;
  store.add("encoder.layer.0.attention.self.query.weight", {1});
  store.add("encoder.layer.0.attention.self.query.bias", {1});
  store.add("encoder.layer.0.output.LayerNorm.weight", {1});
  store.add("encoder.layer.0.output.LayerNorm.bias", {1});
  store.add("embeddings.word_embeddings.weight", {1});
  store.add("cls.predictions.bias", {1});
  store.add("encoder.embed_positions.weight", {1}, /*trainable=*/false);
  store.add("layernorm.weight", {1});  // lower case: not the BERT rule's substring, so it decays
  const auto groups = bert_style_groups(store.params(), 0.01);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].weight_decay, 0.01);
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  EXPECT_EQ(groups[0].params, (std::vector<std::size_t>{0, 4, 7}));
  EXPECT_EQ(groups[1].params, (std::vector<std::size_t>{1, 2, 3, 5}));
  EXPECT_NO_THROW(AdamW(store.params(), groups));
}

// Run A: 6 steps. Run B: 3 steps, save state and parameters to a file, rebuild
// everything from the file, 3 more steps. Both must agree bit for bit.
TEST(AdamW, StateRoundTripAndResumeAreBitIdentical) {
  auto build = [](ParamStore& store) {
    store.add("embeddings.weight", random_floats(300, 21), true, {30, 10});
    store.add("dense.bias", random_floats(10, 22));
    store.add("table", random_floats(8, 23), /*trainable=*/false);
    store.add("empty", {});
  };
  auto set_grads = [](ParamStore& store, int step) {
    for (std::size_t k = 0; k < store.size(); ++k)
      if (store.trainable(k))
        store.set_grad(k, make_grad(store.value(k).size(), 500 + 10 * static_cast<uint32_t>(step) + static_cast<uint32_t>(k)));
  };
  auto run_steps = [&](ParamStore& store, AdamW& adam, int from, int to) {
    for (int s = from; s < to; ++s) {
      set_grads(store, s);
      adam.step(1e-2 / (1 + s));
    }
  };

  ParamStore a;
  build(a);
  auto groups_a = bert_style_groups(a.params(), 0.01);
  AdamW adam_a(a.params(), groups_a);
  run_steps(a, adam_a, 0, 6);

  ParamStore b;
  build(b);
  testing::TempDir dir;
  const std::string path = dir.file("resume.safetensors");
  {
    AdamW adam_b(b.params(), bert_style_groups(b.params(), 0.01));
    run_steps(b, adam_b, 0, 3);
    auto tensors = adam_b.state();
    for (std::size_t k = 0; k < b.size(); ++k)
      tensors.emplace_back("model." + b.name(k), Tensor::from_vector({static_cast<int64_t>(b.value(k).size())}, b.value(k)));
    save_safetensors(path, tensors);
  }
  // Fresh parameters and optimizer, restored from the file only.
  ParamStore c;
  build(c);
  SafeTensors file = SafeTensors::open(path);
  std::vector<std::pair<std::string, Tensor>> loaded;
  for (const std::string& name : file.names()) loaded.emplace_back(name, file.get(name));
  for (std::size_t k = 0; k < c.size(); ++k) c.set_value(k, file.get("model." + c.name(k)).to_vector());
  AdamW adam_c(c.params(), bert_style_groups(c.params(), 0.01));
  adam_c.load_state(loaded);  // model.* entries are ignored
  EXPECT_EQ(adam_c.step_count(), 3);
  EXPECT_EQ(file.info("adamw.m.embeddings.weight").shape, (Shape{30, 10}));

  // The round trip is exact: saving again gives the same tensors.
  for (const auto& [name, t] : adam_c.state()) {
    const Tensor saved = file.get(name);
    ASSERT_EQ(saved.shape(), t.shape()) << name;
    if (t.dtype() == DType::F32) {
      EXPECT_TRUE(bit_equal(saved.to_vector(), t.to_vector())) << name;
    }
  }

  run_steps(c, adam_c, 3, 6);
  EXPECT_EQ(adam_c.step_count(), adam_a.step_count());
  for (std::size_t k = 0; k < a.size(); ++k) {
    EXPECT_TRUE(bit_equal(a.value(k), c.value(k))) << a.name(k);
    if (!a.trainable(k)) continue;
    const std::size_t n = a.value(k).size();
    EXPECT_TRUE(bit_equal(std::vector<float>(adam_a.exp_avg(k), adam_a.exp_avg(k) + n),
                          std::vector<float>(adam_c.exp_avg(k), adam_c.exp_avg(k) + n)));
    EXPECT_TRUE(bit_equal(std::vector<float>(adam_a.exp_avg_sq(k), adam_a.exp_avg_sq(k) + n),
                          std::vector<float>(adam_c.exp_avg_sq(k), adam_c.exp_avg_sq(k) + n)));
  }
}

template <typename F>
std::string adamw_error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(AdamW, RejectsBadOptions) {
  ParamStore store;
  store.add("w", {1, 2, 3});
  auto with = [&](auto edit) {
    AdamWOptions o;
    edit(o);
    return adamw_error_of([&] { AdamW adam(store.params(), o); });
  };
  EXPECT_NE(with([](AdamWOptions& o) { o.lr = -1e-3; }).find("learning rate"), std::string::npos);
  EXPECT_NE(with([](AdamWOptions& o) { o.lr = std::nan(""); }).find("learning rate"), std::string::npos);
  EXPECT_NE(with([](AdamWOptions& o) { o.beta1 = 1.0; }).find("beta1"), std::string::npos);
  EXPECT_NE(with([](AdamWOptions& o) { o.beta1 = -0.1; }).find("beta1"), std::string::npos);
  EXPECT_NE(with([](AdamWOptions& o) { o.beta2 = 1.5; }).find("beta2"), std::string::npos);
  EXPECT_NE(with([](AdamWOptions& o) { o.eps = -1e-8; }).find("eps"), std::string::npos);
  EXPECT_NE(with([](AdamWOptions& o) { o.weight_decay = -0.01; }).find("weight_decay"), std::string::npos);
  EXPECT_NE(with([](AdamWOptions& o) { o.exec.threads = 0; }).find("thread"), std::string::npos);
  EXPECT_EQ(with([](AdamWOptions& o) { o.beta1 = 0.0; o.beta2 = 0.0; o.eps = 0.0; }), "<no error>");

  store.set_grad(0, {1, 1, 1});
  AdamW adam(store.params());
  EXPECT_THROW(adam.step(-0.1), Error);
  EXPECT_THROW(adam.step(std::numeric_limits<double>::infinity()), Error);
  EXPECT_EQ(adam.step_count(), 0);
}

TEST(AdamW, RejectsBadParametersAndGroups) {
  ParamStore store;
  store.add("a", {1, 2});
  store.add("b", {3});
  auto params = store.params();

  auto dup = params;
  dup[1].name = "a";
  EXPECT_NE(adamw_error_of([&] { AdamW x(dup); }).find("'a' appears twice"), std::string::npos);
  auto no_grad = params;
  no_grad[1].grad = nullptr;
  EXPECT_NE(adamw_error_of([&] { AdamW x(no_grad); }).find("'b' has no gradient"), std::string::npos);
  auto bad_shape = params;
  bad_shape[0].shape = {3};
  EXPECT_NE(adamw_error_of([&] { AdamW x(bad_shape); }).find("'a' has shape [3]"), std::string::npos);

  EXPECT_NE(adamw_error_of([&] { AdamW x(params, {ParamGroup{{0}, 0.0}}); }).find("'b' is in no parameter group"),
            std::string::npos);
  EXPECT_NE(adamw_error_of([&] { AdamW x(params, {ParamGroup{{0, 1}, 0.0}, ParamGroup{{1}, 0.1}}); }).find("more than one"),
            std::string::npos);
  EXPECT_NE(adamw_error_of([&] { AdamW x(params, {ParamGroup{{0, 1, 2}, 0.0}}); }).find("index 2"), std::string::npos);
  EXPECT_NE(adamw_error_of([&] { AdamW x(params, {ParamGroup{{0, 1}, -0.1}}); }).find("weight_decay"), std::string::npos);
  EXPECT_NE(adamw_error_of([&] { AdamW x(params, {ParamGroup{{0, 1}, 0.0, -1.0}}); }).find("lr_scale"), std::string::npos);
}

TEST(AdamW, RejectsMismatchedState) {
  ParamStore store;
  store.add("enc.weight", random_floats(6, 1));
  store.add("enc.bias", random_floats(2, 2));
  store.set_grad(0, random_floats(6, 3));
  store.set_grad(1, random_floats(2, 4));
  AdamW adam(store.params());
  adam.step(1e-3);
  // Snapshot (state() aliases the live buffers).
  std::vector<std::pair<std::string, Tensor>> good;
  for (const auto& [name, t] : adam.state()) good.emplace_back(name, t.clone());

  auto edited = [&](const std::string& key, const Tensor* replacement) {
    std::vector<std::pair<std::string, Tensor>> out;
    for (const auto& [name, t] : good) {
      if (name != key) out.emplace_back(name, t);
      else if (replacement) out.emplace_back(name, *replacement);
    }
    return out;
  };
  auto load_error = [&](const std::vector<std::pair<std::string, Tensor>>& s) {
    AdamW fresh(store.params());
    const std::string e = adamw_error_of([&] { fresh.load_state(s); });
    EXPECT_EQ(fresh.step_count(), 0) << "a failed load must change nothing";
    EXPECT_EQ(fresh.exp_avg(0)[0], 0.0f);
    return e;
  };

  EXPECT_NE(load_error(edited("adamw.m.enc.bias", nullptr)).find("missing 'adamw.m.enc.bias'"), std::string::npos);
  const Tensor wrong_size = Tensor::zeros({3});
  EXPECT_NE(load_error(edited("adamw.v.enc.weight", &wrong_size)).find("parameter 'enc.weight' has 6 elements"),
            std::string::npos);
  const Tensor wrong_dtype = Tensor::zeros({2}, DType::BF16);
  EXPECT_NE(load_error(edited("adamw.m.enc.bias", &wrong_dtype)).find("dtype BF16"), std::string::npos);
  EXPECT_NE(load_error(edited("adamw.step", nullptr)).find("missing 'adamw.step'"), std::string::npos);
  Tensor negative_step = Tensor::zeros({1}, DType::I64);
  negative_step.data<int64_t>()[0] = -4;
  EXPECT_NE(load_error(edited("adamw.step", &negative_step)).find("negative"), std::string::npos);
  const Tensor negative_v = Tensor::from_vector({2}, {1.0f, -1.0f});
  EXPECT_NE(load_error(edited("adamw.v.enc.bias", &negative_v)).find("invalid value at element 1"), std::string::npos);

  auto extra = good;
  extra.emplace_back("adamw.m.enc.gamma", Tensor::zeros({2}));
  EXPECT_NE(load_error(extra).find("unexpected entry 'adamw.m.enc.gamma'"), std::string::npos);
  auto twice = good;
  twice.push_back(good.front());
  EXPECT_NE(load_error(twice).find("appears twice"), std::string::npos);

  AdamW fresh(store.params());
  EXPECT_NO_THROW(fresh.load_state(good));
  EXPECT_EQ(fresh.step_count(), 1);
}

}  // namespace
}  // namespace roformer

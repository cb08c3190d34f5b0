// The fp64 host reference (sigattn/reference.hpp) against hand-computed values, against central
// finite differences of its own forward, and across layouts; plus the host bf16/fp16 rounding of
// tests/support/tolerances.hpp against the CUDA toolkit's host conversions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <random>
#include <vector>

#include "sigattn/reference.hpp"
#include "support/tolerances.hpp"

namespace {

namespace ref = sigattn::reference;
using ref::ProblemDesc;
using ref::Side;
using sigattn::BiasMode;
using sigattn::Causal;
using sigattn::Strides;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// A fixed seed, or Catch's --rng-seed when one is given; printed by INFO on failure.
uint32_t test_seed(uint32_t base) { return Catch::rngSeed() != 0 ? Catch::rngSeed() : base; }

/// The logistic function as a test writes it by hand.
double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// A small problem with contiguous [B, S, H, D] tensors everywhere (forward and backward).
ProblemDesc make_desc(int32_t batch, int32_t hq, int32_t hkv, int32_t dim, int32_t sq,
                      int32_t skv) {
  ProblemDesc d;
  d.batch = batch;
  d.num_heads = hq;
  d.num_kv_heads = hkv;
  d.head_dim = dim;
  d.max_q_len = sq;
  d.max_kv_len = skv;
  d.q_stride = d.o_stride = d.dout_stride = d.dq_stride = ref::bshd_strides(sq, hq, dim);
  d.k_stride = d.v_stride = d.dk_stride = d.dv_stride = ref::bshd_strides(skv, hkv, dim);
  return d;
}

int64_t size_of(ProblemDesc const& d, Side side, Strides const& s) {
  return side == Side::kQuery
             ? ref::required_elements(s, d.batch, d.max_q_len, d.num_heads, d.head_dim)
             : ref::required_elements(s, d.batch, d.max_kv_len, d.num_kv_heads, d.head_dim);
}

/// A host buffer for one tensor, NaN everywhere (padding and stride gaps included).
std::vector<double> nan_buffer(ProblemDesc const& d, Side side, Strides const& s) {
  return std::vector<double>(static_cast<size_t>(size_of(d, side, s)), kNaN);
}

/// Reads element c of row (b, i, h).
double at(std::vector<double> const& buf, Strides const& s, int b, int i, int h, int c) {
  return buf[static_cast<size_t>(ref::offset(s, b, i, h) + c)];
}

/// A buffer with N(0,1) in the real rows of `side` (every row when `all_rows`), NaN elsewhere.
std::vector<double> random_buffer(ProblemDesc const& d, Side side, Strides const& s,
                                  std::mt19937& rng, bool all_rows = false) {
  std::vector<double> buf = nan_buffer(d, side, s);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (ref::Row r : ref::real_rows(d, side))
    for (int c = 0; c < d.head_dim; ++c) buf[ref::offset(s, r.b, r.i, r.h) + c] = normal(rng);
  if (all_rows)
    for (ref::Row r : ref::padded_rows(d, side))
      for (int c = 0; c < d.head_dim; ++c) buf[ref::offset(s, r.b, r.i, r.h) + c] = normal(rng);
  return buf;
}

/// The forward as a test checks it: every row written, NaN stays in stride gaps only.
std::vector<double> run_forward(ProblemDesc const& d, std::vector<double> const& q,
                                std::vector<double> const& k, std::vector<double> const& v) {
  std::vector<double> o = nan_buffer(d, Side::kQuery, d.o_stride);
  REQUIRE(ref::forward(d, q.data(), k.data(), v.data(), o.data()));
  return o;
}

struct Grads {
  std::vector<double> dq, dk, dv;
};

Grads run_backward(ProblemDesc const& d, std::vector<double> const& q, std::vector<double> const& k,
                   std::vector<double> const& v, std::vector<double> const& dout) {
  Grads g{nan_buffer(d, Side::kQuery, d.dq_stride), nan_buffer(d, Side::kKeyValue, d.dk_stride),
          nan_buffer(d, Side::kKeyValue, d.dv_stride)};
  REQUIRE(ref::backward(d, q.data(), k.data(), v.data(), dout.data(), g.dq.data(), g.dk.data(),
                        g.dv.data()));
  return g;
}

/// sum of O * dO over the real query rows (dO at padded rows is never read).
double loss(ProblemDesc const& d, std::vector<double> const& q, std::vector<double> const& k,
            std::vector<double> const& v, std::vector<double> const& dout) {
  std::vector<double> o = run_forward(d, q, k, v);
  double sum = 0.0;
  for (ref::Row r : ref::real_rows(d, Side::kQuery))
    for (int c = 0; c < d.head_dim; ++c)
      sum += at(o, d.o_stride, r.b, r.i, r.h, c) * at(dout, d.dout_stride, r.b, r.i, r.h, c);
  return sum;
}

/// Central differences of loss() with respect to every element of every row (real and padded)
/// of `x`, laid out like `grad_stride`. Padded elements hold NaN; perturbing them must not change
/// the loss, so their gradient comes out exactly 0.
std::vector<double> numeric_grad(ProblemDesc const& d, Side side, std::vector<double>& x,
                                 Strides const& x_stride, Strides const& grad_stride,
                                 std::vector<double> const& q, std::vector<double> const& k,
                                 std::vector<double> const& v, std::vector<double> const& dout) {
  constexpr double kStep = 1e-5;
  std::vector<double> grad = nan_buffer(d, side, grad_stride);
  for (bool real : {true, false})
    for (ref::Row r : ref::rows(d, side, real))
      for (int c = 0; c < d.head_dim; ++c) {
        double& xe = x[ref::offset(x_stride, r.b, r.i, r.h) + c];
        double const saved = xe;
        xe = saved + kStep;
        double const up = loss(d, q, k, v, dout);
        xe = saved - kStep;
        double const down = loss(d, q, k, v, dout);
        xe = saved;
        grad[ref::offset(grad_stride, r.b, r.i, r.h) + c] = (up - down) / (2 * kStep);
      }
  return grad;
}

/// Relative L2 error over every row of one side (real and padded).
double all_rows_error(ProblemDesc const& d, Side side, std::vector<double> const& x,
                      std::vector<double> const& want, Strides const& s) {
  std::vector<ref::Row> all = ref::real_rows(d, side);
  std::vector<ref::Row> padded = ref::padded_rows(d, side);
  all.insert(all.end(), padded.begin(), padded.end());
  return ref::relative_l2(all, d.head_dim, x.data(), want.data(), s);
}

/// The analytic backward of the reference against finite differences of its forward.
void check_backward_against_finite_differences(ProblemDesc const& d, uint32_t seed) {
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::vector<double> q = random_buffer(d, Side::kQuery, d.q_stride, rng);
  std::vector<double> k = random_buffer(d, Side::kKeyValue, d.k_stride, rng);
  std::vector<double> v = random_buffer(d, Side::kKeyValue, d.v_stride, rng);
  std::vector<double> dout = random_buffer(d, Side::kQuery, d.dout_stride, rng);
  Grads g = run_backward(d, q, k, v, dout);

  std::vector<double> num_dq =
      numeric_grad(d, Side::kQuery, q, d.q_stride, d.dq_stride, q, k, v, dout);
  std::vector<double> num_dk =
      numeric_grad(d, Side::kKeyValue, k, d.k_stride, d.dk_stride, q, k, v, dout);
  std::vector<double> num_dv =
      numeric_grad(d, Side::kKeyValue, v, d.v_stride, d.dv_stride, q, k, v, dout);
  double const err_dq = all_rows_error(d, Side::kQuery, g.dq, num_dq, d.dq_stride);
  double const err_dk = all_rows_error(d, Side::kKeyValue, g.dk, num_dk, d.dk_stride);
  double const err_dv = all_rows_error(d, Side::kKeyValue, g.dv, num_dv, d.dv_stride);
  CHECK(err_dq < 1e-6);
  CHECK(err_dk < 1e-6);
  CHECK(err_dv < 1e-6);
  // Padded rows: exact zeros in the reference, whatever NaN sits in the inputs' padding.
  CHECK(
      ref::rows_are_zero(ref::padded_rows(d, Side::kQuery), d.head_dim, g.dq.data(), d.dq_stride));
  CHECK(ref::rows_are_zero(ref::padded_rows(d, Side::kKeyValue), d.head_dim, g.dk.data(),
                           d.dk_stride));
  CHECK(ref::rows_are_zero(ref::padded_rows(d, Side::kKeyValue), d.head_dim, g.dv.data(),
                           d.dv_stride));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Forward, hand-computed (head_dim 2; the reference accepts any head_dim).

TEST_CASE("reference forward: one query, two keys, scalar bias", "[reference]") {
  ProblemDesc d = make_desc(1, 1, 1, 2, 1, 2);
  d.scale = 0.5;
  d.bias_mode = BiasMode::kScalar;
  d.bias = 0.25;
  std::vector<double> q{1, 2};
  std::vector<double> k{0.5, -1, 2, 1};
  std::vector<double> v{1, 3, -2, 0.5};
  std::vector<double> o = run_forward(d, q, k, v);
  double const p0 = sig(0.5 * (0.5 * 1 + -1 * 2) + 0.25);  // s0 = -0.5
  double const p1 = sig(0.5 * (2 * 1 + 1 * 2) + 0.25);     // s1 = 2.25
  CHECK(o[0] == Approx(p0 * 1 + p1 * -2).epsilon(1e-14));
  CHECK(o[1] == Approx(p0 * 3 + p1 * 0.5).epsilon(1e-14));

  double row[2];
  REQUIRE(ref::forward_row(d, q.data(), k.data(), v.data(), 0, 0, 0, row));
  CHECK(row[0] == o[0]);
  CHECK(row[1] == o[1]);
}

TEST_CASE("reference forward: per-batch bias", "[reference]") {
  ProblemDesc d = make_desc(2, 1, 1, 2, 1, 2);
  d.scale = 1.0;
  d.bias_mode = BiasMode::kPerBatch;
  d.bias_per_batch = {0.5f, -1.5f};
  std::vector<double> q{1, -1, 0.5, 2};
  std::vector<double> k{1, 0, 0, 1, -1, 1, 2, 0.5};
  std::vector<double> v{1, 2, 3, 4, -1, -2, 0.5, 0.25};
  std::vector<double> o = run_forward(d, q, k, v);
  // b = 0: s = <(1,-1), (1,0)> + 0.5 = 1.5 and <(1,-1), (0,1)> + 0.5 = -0.5.
  CHECK(o[0] == Approx(sig(1.5) * 1 + sig(-0.5) * 3).epsilon(1e-14));
  CHECK(o[1] == Approx(sig(1.5) * 2 + sig(-0.5) * 4).epsilon(1e-14));
  // b = 1: s = <(0.5,2), (-1,1)> - 1.5 = 0 and <(0.5,2), (2,0.5)> - 1.5 = 0.5.
  CHECK(o[2] == Approx(sig(0.0) * -1 + sig(0.5) * 0.5).epsilon(1e-14));
  CHECK(o[3] == Approx(sig(0.0) * -2 + sig(0.5) * 0.25).epsilon(1e-14));
}

TEST_CASE("reference forward: bias -log(kv_len) uses each sequence's real length", "[reference]") {
  ProblemDesc d = make_desc(2, 1, 1, 2, 1, 3);
  d.scale = 1.0;
  d.kv_lens = {3, 2};
  std::vector<double> q{1, 0, 0, 1};
  std::vector<double> k{0.5, 9, 1, 9, -1, 9, 7, 0.25, 7, -0.5, kNaN, kNaN};  // b1 key 2 padded
  std::vector<double> v{1, 0, 0, 1, 1, 1, 2, 3, -1, 4, kNaN, kNaN};
  std::vector<double> o = run_forward(d, q, k, v);
  double const b0 = -std::log(3.0);
  double const b1 = -std::log(2.0);
  CHECK(o[0] == Approx(sig(0.5 + b0) * 1 + sig(1 + b0) * 0 + sig(-1 + b0) * 1).epsilon(1e-14));
  CHECK(o[1] == Approx(sig(0.5 + b0) * 0 + sig(1 + b0) * 1 + sig(-1 + b0) * 1).epsilon(1e-14));
  CHECK(o[2] == Approx(sig(0.25 + b1) * 2 + sig(-0.5 + b1) * -1).epsilon(1e-14));
  CHECK(o[3] == Approx(sig(0.25 + b1) * 3 + sig(-0.5 + b1) * 4).epsilon(1e-14));
  CHECK(ref::bias(d, 0) == -std::log(3.0));
  CHECK(ref::bias(d, 1) == -std::log(2.0));
}

namespace {

/// O for one query row by the definition, with the mask and bias written out by the test.
std::vector<double> by_hand(std::vector<double> const& q_row, std::vector<double> const& k,
                            std::vector<double> const& v, std::initializer_list<int> mask,
                            double scale, double bias) {
  std::vector<double> out(2, 0.0);
  int j = 0;
  for (int keep : mask) {
    if (keep) {
      double const p = sig(scale * (q_row[0] * k[2 * j] + q_row[1] * k[2 * j + 1]) + bias);
      out[0] += p * v[2 * j];
      out[1] += p * v[2 * j + 1];
    }
    ++j;
  }
  return out;
}

void check_row(std::vector<double> const& o, int row, std::vector<double> const& want) {
  INFO("query row " << row);
  CHECK(o[2 * row] == Approx(want[0]).epsilon(1e-14).margin(1e-300));
  CHECK(o[2 * row + 1] == Approx(want[1]).epsilon(1e-14).margin(1e-300));
}

std::vector<double> row_of(std::vector<double> const& q, int i) { return {q[2 * i], q[2 * i + 1]}; }

}  // namespace

TEST_CASE("reference forward: causal masks", "[reference]") {
  std::vector<double> q{0.3, -1, 1, 0.5, -0.25, 2, 1.5, 1};
  std::vector<double> k{1, 2, -0.5, 1, 0.75, -1, 2, 0.5};
  std::vector<double> v{1, -1, 2, 0.5, -3, 1, 0.25, 4};
  double const scale = 0.7;
  double const bias = -0.3;

  SECTION("top-left, square: j <= i") {
    ProblemDesc d = make_desc(1, 1, 1, 2, 3, 3);
    d.scale = scale;
    d.bias_mode = BiasMode::kScalar;
    d.bias = bias;
    d.causal = Causal::kTopLeft;
    std::vector<double> o = run_forward(d, q, k, v);
    check_row(o, 0, by_hand(row_of(q, 0), k, v, {1, 0, 0}, scale, bias));
    check_row(o, 1, by_hand(row_of(q, 1), k, v, {1, 1, 0}, scale, bias));
    check_row(o, 2, by_hand(row_of(q, 2), k, v, {1, 1, 1}, scale, bias));
  }
  SECTION("bottom-right, fewer queries than keys: j <= i + 1") {
    ProblemDesc d = make_desc(1, 1, 1, 2, 2, 3);
    d.scale = scale;
    d.bias_mode = BiasMode::kScalar;
    d.bias = bias;
    d.causal = Causal::kBottomRight;
    std::vector<double> o = run_forward(d, q, k, v);
    check_row(o, 0, by_hand(row_of(q, 0), k, v, {1, 1, 0}, scale, bias));
    check_row(o, 1, by_hand(row_of(q, 1), k, v, {1, 1, 1}, scale, bias));
  }
  SECTION("bottom-right, more queries than keys: row 0 sees nothing") {
    ProblemDesc d = make_desc(1, 1, 1, 2, 3, 2);
    d.scale = scale;
    d.bias_mode = BiasMode::kScalar;
    d.bias = bias;
    d.causal = Causal::kBottomRight;
    std::vector<double> o = run_forward(d, q, k, v);
    CHECK(o[0] == 0.0);
    CHECK(o[1] == 0.0);
    check_row(o, 1, by_hand(row_of(q, 1), k, v, {1, 0}, scale, bias));
    check_row(o, 2, by_hand(row_of(q, 2), k, v, {1, 1}, scale, bias));
  }
  SECTION("bottom-right aligns on the real lengths, not the padded ones") {
    // max lengths 4 and 4, real lengths q 2 and kv 3: j <= i + 1, keys past 3 never seen.
    ProblemDesc d = make_desc(1, 1, 1, 2, 4, 4);
    d.scale = scale;
    d.bias_mode = BiasMode::kScalar;
    d.bias = bias;
    d.causal = Causal::kBottomRight;
    d.q_lens = {2};
    d.kv_lens = {3};
    std::vector<double> o = run_forward(d, q, k, v);
    check_row(o, 0, by_hand(row_of(q, 0), k, v, {1, 1, 0, 0}, scale, bias));
    check_row(o, 1, by_hand(row_of(q, 1), k, v, {1, 1, 1, 0}, scale, bias));
    for (int c = 4; c < 8; ++c) CHECK(o[c] == 0.0);
  }
}

TEST_CASE("reference forward: GQA maps query head h to kv head h / (Hq / Hkv)", "[reference]") {
  ProblemDesc d = make_desc(1, 4, 2, 2, 1, 2);
  d.scale = 1.0;
  d.bias_mode = BiasMode::kScalar;
  d.bias = 0.0;
  // One token; Q heads 0..3 all (1, 0.5). K/V layout [S=2, Hkv=2, D=2].
  std::vector<double> q{1, 0.5, 1, 0.5, 1, 0.5, 1, 0.5};
  std::vector<double> k{1, 0, -1, 2, 0, 1, 3, 1};
  std::vector<double> v{1, 2, 10, 20, 3, 4, 30, 40};
  std::vector<double> o = run_forward(d, q, k, v);
  // kv head 0: keys (1,0) and (0,1) -> s = 1, 0.5; values (1,2), (3,4).
  double const g0x = sig(1.0) * 1 + sig(0.5) * 3;
  double const g0y = sig(1.0) * 2 + sig(0.5) * 4;
  // kv head 1: keys (-1,2) and (3,1) -> s = 0, 3.5; values (10,20), (30,40).
  double const g1x = sig(0.0) * 10 + sig(3.5) * 30;
  double const g1y = sig(0.0) * 20 + sig(3.5) * 40;
  for (int h = 0; h < 4; ++h) {
    INFO("query head " << h);
    CHECK(o[2 * h] == Approx(h < 2 ? g0x : g1x).epsilon(1e-14));
    CHECK(o[2 * h + 1] == Approx(h < 2 ? g0y : g1y).epsilon(1e-14));
  }
}

TEST_CASE("reference forward: padded rows are exact zeros and padding is never read",
          "[reference]") {
  ProblemDesc d = make_desc(1, 1, 1, 2, 3, 3);
  d.scale = 1.0;
  d.bias_mode = BiasMode::kScalar;
  d.bias = 0.5;
  d.q_lens = {1};
  d.kv_lens = {2};
  std::vector<double> q{2, -1, kNaN, kNaN, kNaN, kNaN};
  std::vector<double> k{0.5, 0.5, 1, -1, kNaN, std::numeric_limits<double>::infinity()};
  std::vector<double> v{1, 1, -2, 3, kNaN, kNaN};
  std::vector<double> o = run_forward(d, q, k, v);
  // s = 2*0.5 - 0.5 + 0.5 = 1 and 2 + 1 + 0.5 = 3.5.
  CHECK(o[0] == Approx(sig(1.0) * 1 + sig(3.5) * -2).epsilon(1e-14));
  CHECK(o[1] == Approx(sig(1.0) * 1 + sig(3.5) * 3).epsilon(1e-14));
  for (int c = 2; c < 6; ++c) CHECK(o[c] == 0.0);
  CHECK(ref::rows_are_zero(ref::padded_rows(d, Side::kQuery), 2, o.data(), d.o_stride));
}

TEST_CASE("reference: kv_len == 0 gives all-zero outputs and gradients", "[reference]") {
  std::mt19937 rng(test_seed(7));
  for (int32_t max_kv : {0, 3}) {
    INFO("max_kv_len " << max_kv);
    ProblemDesc d = make_desc(2, 2, 1, 4, 3, max_kv);
    if (max_kv > 0) d.kv_lens = {0, 0};
    std::vector<double> q = random_buffer(d, Side::kQuery, d.q_stride, rng);
    std::vector<double> k = random_buffer(d, Side::kKeyValue, d.k_stride, rng, true);
    std::vector<double> v = random_buffer(d, Side::kKeyValue, d.v_stride, rng, true);
    std::vector<double> dout = random_buffer(d, Side::kQuery, d.dout_stride, rng);
    std::vector<double> o = run_forward(d, q, k, v);
    for (double x : o) CHECK(x == 0.0);
    Grads g = run_backward(d, q, k, v, dout);
    for (double x : g.dq) CHECK(x == 0.0);
    for (double x : g.dk) CHECK(x == 0.0);
    for (double x : g.dv) CHECK(x == 0.0);
  }
}

TEST_CASE("reference: lengths are clamped to [0, max_len] as the kernels clamp them",
          "[reference]") {
  uint32_t const seed = test_seed(11);
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  ProblemDesc wild = make_desc(3, 2, 2, 4, 3, 4);
  wild.q_lens = {5, -1, 2};
  wild.kv_lens = {100, 4, -7};
  ProblemDesc tame = wild;
  tame.q_lens = {3, 0, 2};
  tame.kv_lens = {4, 4, 0};
  CHECK(ref::q_len(wild, 0) == 3);
  CHECK(ref::q_len(wild, 1) == 0);
  CHECK(ref::kv_len(wild, 0) == 4);
  CHECK(ref::kv_len(wild, 2) == 0);
  CHECK(ref::bias(wild, 0) == -std::log(4.0));  // the clamped length, not 100
  std::vector<double> q = random_buffer(tame, Side::kQuery, tame.q_stride, rng);
  std::vector<double> k = random_buffer(tame, Side::kKeyValue, tame.k_stride, rng);
  std::vector<double> v = random_buffer(tame, Side::kKeyValue, tame.v_stride, rng);
  std::vector<double> dout = random_buffer(tame, Side::kQuery, tame.dout_stride, rng);
  std::vector<double> o_wild = run_forward(wild, q, k, v);
  std::vector<double> o_tame = run_forward(tame, q, k, v);
  CHECK(o_wild == o_tame);
  Grads g_wild = run_backward(wild, q, k, v, dout);
  Grads g_tame = run_backward(tame, q, k, v, dout);
  CHECK(g_wild.dq == g_tame.dq);
  CHECK(g_wild.dk == g_tame.dk);
  CHECK(g_wild.dv == g_tame.dv);
  CHECK(o_tame[0] != 0.0);  // not vacuous: batch entry 0 has real queries and keys
}

TEST_CASE("reference: scale 0 means 1/sqrt(head_dim)", "[reference]") {
  uint32_t const seed = test_seed(13);
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  ProblemDesc d = make_desc(1, 1, 1, 4, 2, 3);
  std::vector<double> q = random_buffer(d, Side::kQuery, d.q_stride, rng);
  std::vector<double> k = random_buffer(d, Side::kKeyValue, d.k_stride, rng);
  std::vector<double> v = random_buffer(d, Side::kKeyValue, d.v_stride, rng);
  d.scale = 0.0;
  CHECK(ref::effective_scale(d) == 0.5);
  std::vector<double> o_default = run_forward(d, q, k, v);
  d.scale = 0.5;
  CHECK(run_forward(d, q, k, v) == o_default);
}

TEST_CASE("reference: inconsistent descriptions are refused without writing", "[reference]") {
  ProblemDesc d = make_desc(2, 3, 2, 2, 1, 1);  // 3 % 2 != 0
  std::vector<double> in(64, 1.0);
  std::vector<double> out(64, -1.0);
  CHECK_FALSE(ref::is_consistent(d));
  CHECK_FALSE(ref::forward(d, in.data(), in.data(), in.data(), out.data()));
  d = make_desc(2, 2, 2, 2, 1, 1);
  CHECK(ref::is_consistent(d));
  d.q_lens = {1};  // not one per batch entry
  CHECK_FALSE(ref::forward(d, in.data(), in.data(), in.data(), out.data()));
  d.q_lens.clear();
  d.bias_mode = BiasMode::kPerBatch;  // without bias_per_batch
  CHECK_FALSE(ref::backward(d, in.data(), in.data(), in.data(), in.data(), out.data(), out.data(),
                            out.data()));
  for (double x : out) CHECK(x == -1.0);
}

// ---------------------------------------------------------------------------------------------
// Backward.

TEST_CASE("reference backward: one query, one key, by hand", "[reference]") {
  ProblemDesc d = make_desc(1, 1, 1, 2, 1, 1);
  d.scale = 0.5;
  d.bias_mode = BiasMode::kScalar;
  d.bias = -0.2;
  std::vector<double> q{1, -2};
  std::vector<double> k{0.5, 1.5};
  std::vector<double> v{2, -1};
  std::vector<double> dout{0.3, 0.7};
  Grads g = run_backward(d, q, k, v, dout);
  double const p = sig(0.5 * (0.5 - 3.0) - 0.2);
  double const ds = p * (1 - p) * (0.3 * 2 + 0.7 * -1);
  CHECK(g.dq[0] == Approx(0.5 * ds * 0.5).epsilon(1e-14));
  CHECK(g.dq[1] == Approx(0.5 * ds * 1.5).epsilon(1e-14));
  CHECK(g.dk[0] == Approx(0.5 * ds * 1).epsilon(1e-14));
  CHECK(g.dk[1] == Approx(0.5 * ds * -2).epsilon(1e-14));
  CHECK(g.dv[0] == Approx(p * 0.3).epsilon(1e-14));
  CHECK(g.dv[1] == Approx(p * 0.7).epsilon(1e-14));
}

TEST_CASE("reference backward: GQA sums dK and dV over the group's query heads", "[reference]") {
  ProblemDesc d = make_desc(1, 2, 1, 2, 1, 1);
  d.scale = 1.0;
  d.bias_mode = BiasMode::kScalar;
  d.bias = 0.1;
  std::vector<double> q{1, 0, 0, -1};
  std::vector<double> k{0.5, 2};
  std::vector<double> v{1, 1};
  std::vector<double> dout{1, 0, 0, 2};
  Grads g = run_backward(d, q, k, v, dout);
  double const p0 = sig(0.5 + 0.1);   // head 0
  double const p1 = sig(-2.0 + 0.1);  // head 1
  double const ds0 = p0 * (1 - p0) * 1.0;
  double const ds1 = p1 * (1 - p1) * 2.0;
  CHECK(g.dk[0] == Approx(ds0 * 1 + ds1 * 0).epsilon(1e-14));
  CHECK(g.dk[1] == Approx(ds0 * 0 + ds1 * -1).epsilon(1e-14));
  CHECK(g.dv[0] == Approx(p0 * 1 + p1 * 0).epsilon(1e-14));
  CHECK(g.dv[1] == Approx(p0 * 0 + p1 * 2).epsilon(1e-14));
  CHECK(g.dq[0] == Approx(ds0 * 0.5).epsilon(1e-14));
  CHECK(g.dq[3] == Approx(ds1 * 2).epsilon(1e-14));
}

TEST_CASE("reference backward matches finite differences of the forward", "[reference]") {
  SECTION("MHA, ragged lengths, bias -log(kv_len)") {
    ProblemDesc d = make_desc(2, 2, 2, 4, 4, 5);
    d.q_lens = {3, 4};
    d.kv_lens = {5, 2};
    check_backward_against_finite_differences(d, test_seed(101));
  }
  SECTION("GQA 4:2, top-left causal, scalar bias, explicit scale") {
    ProblemDesc d = make_desc(2, 4, 2, 3, 5, 5);
    d.q_lens = {5, 3};
    d.kv_lens = {4, 5};
    d.causal = Causal::kTopLeft;
    d.bias_mode = BiasMode::kScalar;
    d.bias = -0.7;
    d.scale = 0.4;
    check_backward_against_finite_differences(d, test_seed(102));
  }
  SECTION("MQA 3:1, bottom-right causal with q_len != kv_len, per-batch bias") {
    ProblemDesc d = make_desc(3, 3, 1, 4, 4, 5);
    d.q_lens = {2, 4, 3};
    d.kv_lens = {5, 3, 3};
    d.causal = Causal::kBottomRight;
    d.bias_mode = BiasMode::kPerBatch;
    d.bias_per_batch = {0.3f, -1.2f, 0.0f};
    check_backward_against_finite_differences(d, test_seed(103));
  }
  SECTION("[B, H, S, D] layouts with gaps, gradients in their own layouts") {
    ProblemDesc d = make_desc(2, 2, 1, 4, 3, 4);
    d.q_lens = {2, 3};
    d.kv_lens = {4, 1};
    d.q_stride = ref::bhsd_strides(3, 2, 4);
    d.k_stride = {40, 8, 32};  // token stride 8 > D: gaps between rows
    d.v_stride = ref::bhsd_strides(4, 1, 4);
    d.dout_stride = {48, 16, 4};
    d.dq_stride = ref::bhsd_strides(3, 2, 4);
    d.dk_stride = {20, 4, 16};
    d.dv_stride = {16, 4, 0};  // one kv head: any head stride
    check_backward_against_finite_differences(d, test_seed(104));
  }
}

TEST_CASE("reference: [B,S,H,D], [B,H,S,D] and gapped layouts give identical results",
          "[reference]") {
  uint32_t const seed = test_seed(202);
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  ProblemDesc bshd = make_desc(2, 4, 2, 8, 5, 6);
  bshd.q_lens = {5, 2};
  bshd.kv_lens = {3, 6};
  bshd.causal = Causal::kBottomRight;
  std::vector<double> q = random_buffer(bshd, Side::kQuery, bshd.q_stride, rng);
  std::vector<double> k = random_buffer(bshd, Side::kKeyValue, bshd.k_stride, rng);
  std::vector<double> v = random_buffer(bshd, Side::kKeyValue, bshd.v_stride, rng);
  std::vector<double> dout = random_buffer(bshd, Side::kQuery, bshd.dout_stride, rng);
  std::vector<double> o = run_forward(bshd, q, k, v);
  Grads g = run_backward(bshd, q, k, v, dout);

  auto relayout = [](ProblemDesc const& from, ProblemDesc const& to, Side side,
                     Strides const& s_from, Strides const& s_to, std::vector<double> const& x) {
    std::vector<double> y = nan_buffer(to, side, s_to);
    for (bool real : {true, false})
      for (ref::Row r : ref::rows(from, side, real))
        for (int c = 0; c < from.head_dim; ++c)
          y[ref::offset(s_to, r.b, r.i, r.h) + c] = x[ref::offset(s_from, r.b, r.i, r.h) + c];
    return y;
  };
  for (int layout = 0; layout < 2; ++layout) {
    INFO("layout " << (layout == 0 ? "[B,H,S,D]" : "gapped"));
    ProblemDesc d = bshd;
    if (layout == 0) {
      d.q_stride = d.o_stride = d.dout_stride = d.dq_stride = ref::bhsd_strides(5, 4, 8);
      d.k_stride = d.v_stride = d.dk_stride = d.dv_stride = ref::bhsd_strides(6, 2, 8);
    } else {
      d.q_stride = {1000, 40, 10};
      d.o_stride = {0 + 7 * 4 * 8, 4 * 8, 8};  // batch stride with two unused tokens
      d.dout_stride = ref::bhsd_strides(5, 4, 8);
      d.dq_stride = {400, 80, 16};
      d.k_stride = {300, 16, 8};
      d.v_stride = ref::bhsd_strides(6, 2, 8);
      d.dk_stride = {200, 24, 12};
      d.dv_stride = {100, 16, 8};
    }
    std::vector<double> q2 = relayout(bshd, d, Side::kQuery, bshd.q_stride, d.q_stride, q);
    std::vector<double> k2 = relayout(bshd, d, Side::kKeyValue, bshd.k_stride, d.k_stride, k);
    std::vector<double> v2 = relayout(bshd, d, Side::kKeyValue, bshd.v_stride, d.v_stride, v);
    std::vector<double> dout2 =
        relayout(bshd, d, Side::kQuery, bshd.dout_stride, d.dout_stride, dout);
    std::vector<double> o2 = run_forward(d, q2, k2, v2);
    Grads g2 = run_backward(d, q2, k2, v2, dout2);
    CHECK(relayout(d, bshd, Side::kQuery, d.o_stride, bshd.o_stride, o2) == o);
    CHECK(relayout(d, bshd, Side::kQuery, d.dq_stride, bshd.dq_stride, g2.dq) == g.dq);
    CHECK(relayout(d, bshd, Side::kKeyValue, d.dk_stride, bshd.dk_stride, g2.dk) == g.dk);
    CHECK(relayout(d, bshd, Side::kKeyValue, d.dv_stride, bshd.dv_stride, g2.dv) == g.dv);
  }
  // forward_row agrees with forward on every row.
  for (bool real : {true, false})
    for (ref::Row r : ref::rows(bshd, Side::kQuery, real)) {
      double row[8];
      REQUIRE(ref::forward_row(bshd, q.data(), k.data(), v.data(), r.b, r.i, r.h, row));
      for (int c = 0; c < 8; ++c) CHECK(row[c] == at(o, bshd.o_stride, r.b, r.i, r.h, c));
    }
}

TEST_CASE("reference: float inputs give the same result as the same values in double",
          "[reference]") {
  uint32_t const seed = test_seed(303);
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  ProblemDesc d = make_desc(2, 2, 1, 8, 4, 5);
  d.kv_lens = {5, 3};
  std::vector<double> q = random_buffer(d, Side::kQuery, d.q_stride, rng);
  std::vector<double> k = random_buffer(d, Side::kKeyValue, d.k_stride, rng);
  std::vector<double> v = random_buffer(d, Side::kKeyValue, d.v_stride, rng);
  auto to_bf16 = [](std::vector<double>& x) {
    std::vector<float> f(x.size());
    for (size_t n = 0; n < x.size(); ++n) {
      f[n] = sigattn::test::round_bf16(static_cast<float>(x[n]));
      x[n] = f[n];
    }
    return f;
  };
  std::vector<float> qf = to_bf16(q);
  std::vector<float> kf = to_bf16(k);
  std::vector<float> vf = to_bf16(v);
  std::vector<double> o = run_forward(d, q, k, v);
  std::vector<double> of = nan_buffer(d, Side::kQuery, d.o_stride);
  REQUIRE(ref::forward(d, qf.data(), kf.data(), vf.data(), of.data()));
  CHECK(of == o);
}

// ---------------------------------------------------------------------------------------------
// Helpers: rows, relative L2, layouts.

TEST_CASE("reference helpers: rows, offsets, relative L2", "[reference]") {
  ProblemDesc d = make_desc(2, 3, 1, 2, 4, 2);
  d.q_lens = {1, 3};
  d.kv_lens = {2, 0};
  CHECK(ref::real_rows(d, Side::kQuery).size() == 3 * (1 + 3));
  CHECK(ref::padded_rows(d, Side::kQuery).size() == 3 * (3 + 1));
  CHECK(ref::real_rows(d, Side::kKeyValue).size() == 2);
  CHECK(ref::padded_rows(d, Side::kKeyValue).size() == 2);
  ref::Row const first_padded = ref::padded_rows(d, Side::kQuery).front();
  CHECK((first_padded.b == 0 && first_padded.i == 1 && first_padded.h == 0));

  CHECK(ref::required_elements(ref::bshd_strides(4, 3, 2), 2, 4, 3, 2) == 48);
  CHECK(ref::required_elements(ref::bhsd_strides(4, 3, 2), 2, 4, 3, 2) == 48);
  CHECK(ref::required_elements({100, 10, 4}, 2, 3, 2, 4) == 100 + 20 + 4 + 4);
  CHECK(ref::required_elements({100, 10, 4}, 0, 3, 2, 4) == 0);

  ProblemDesc one = make_desc(1, 1, 1, 2, 2, 1);
  one.q_lens = {1};  // row 1 is padded and not measured
  std::vector<double> want{3, 4, 100, 100};
  std::vector<float> got{3, 4.5f, -7, 7};
  CHECK(ref::relative_l2(ref::real_rows(one, Side::kQuery), 2, got.data(), want.data(),
                         one.q_stride) == Approx(0.1).epsilon(1e-12));
  std::vector<double> zeros(4, 0.0);
  CHECK(ref::relative_l2(ref::real_rows(one, Side::kQuery), 2, zeros.data(), zeros.data(),
                         one.q_stride) == 0.0);
  CHECK(std::isinf(ref::relative_l2(ref::real_rows(one, Side::kQuery), 2, want.data(), zeros.data(),
                                    one.q_stride)));
  std::vector<double> nan_row{kNaN, 4, 0, 0};
  CHECK(std::isnan(ref::relative_l2(ref::real_rows(one, Side::kQuery), 2, nan_row.data(),
                                    want.data(), one.q_stride)));
  CHECK_FALSE(
      ref::rows_are_zero(ref::real_rows(one, Side::kQuery), 2, nan_row.data(), one.q_stride));
}

TEST_CASE("reference: describe() copies FwdParams and BwdParams", "[reference]") {
  sigattn::BwdParams p{};
  p.fwd.batch = 2;
  p.fwd.num_heads = 4;
  p.fwd.num_kv_heads = 2;
  p.fwd.head_dim = 64;
  p.fwd.max_q_len = 7;
  p.fwd.max_kv_len = 9;
  p.fwd.q_stride = ref::bshd_strides(7, 4, 64);
  p.fwd.k_stride = ref::bhsd_strides(9, 2, 64);
  p.fwd.scale = 0.25f;
  p.fwd.bias_mode = BiasMode::kPerBatch;
  p.fwd.causal = Causal::kBottomRight;
  p.dk_stride = {8, 16, 24};
  ProblemDesc d = ref::describe(p, {7, 3}, {}, {0.5f, 1.5f});
  CHECK(ref::is_consistent(d));
  CHECK(d.batch == 2);
  CHECK(d.num_kv_heads == 2);
  CHECK(d.max_kv_len == 9);
  CHECK(d.q_lens == std::vector<int32_t>{7, 3});
  CHECK(d.kv_lens.empty());
  CHECK(d.k_stride.head == 9 * 64);
  CHECK(d.dk_stride.token == 16);
  CHECK(d.scale == 0.25);
  CHECK(d.bias_per_batch == std::vector<float>{0.5f, 1.5f});
  CHECK(d.causal == Causal::kBottomRight);
}

// ---------------------------------------------------------------------------------------------
// Host rounding (tests/support/tolerances.hpp) against the CUDA toolkit's host conversions.

TEST_CASE("tolerances: bars and host bf16/fp16 rounding", "[tolerances]") {
  namespace t = sigattn::test;
  CHECK(t::rel_l2_tolerance(sigattn::DType::kBF16) == 3e-3);
  CHECK(t::rel_l2_tolerance(sigattn::DType::kFP16) == 1e-3);

  float const inf = std::numeric_limits<float>::infinity();
  CHECK(t::round_bf16(1.0f) == 1.0f);
  CHECK(t::round_bf16(1.0f + 1.0f / 256) == 1.0f);               // tie -> even (down)
  CHECK(t::round_bf16(1.0f + 3.0f / 256) == 1.0f + 4.0f / 256);  // tie -> even (up)
  CHECK(t::round_fp16(1.0f + 1.0f / 2048) == 1.0f);
  CHECK(t::round_fp16(65504.0f) == 65504.0f);
  CHECK(t::round_fp16(65519.0f) == 65504.0f);
  CHECK(t::round_fp16(65520.0f) == inf);
  CHECK(t::round_fp16(-1e6f) == -inf);
  CHECK(t::round_fp16(std::ldexp(1.0f, -24)) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(t::round_fp16(std::ldexp(1.0f, -25)) == 0.0f);                   // tie -> even (0)
  CHECK(t::round_fp16(std::ldexp(3.0f, -25)) == std::ldexp(1.0f, -23));  // tie -> even (2)
  CHECK(std::isnan(t::round_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(t::round_fp16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(t::round_fp16(-std::numeric_limits<float>::signaling_NaN())));
  CHECK(t::round_bf16(-inf) == -inf);
  CHECK(std::signbit(t::round_fp16(-0.0f)));
  CHECK(std::signbit(t::round_bf16(-0.0f)));

  // Random bit patterns (every exponent, NaN and Inf included) against the CUDA host functions.
  uint32_t const seed = test_seed(404);
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  int bf16_mismatches = 0;
  int fp16_mismatches = 0;
  int round_trip_mismatches = 0;
  for (int n = 0; n < 1 << 20; ++n) {
    float const f = t::bits_float(static_cast<uint32_t>(rng()));
    float const cuda_bf16 = __bfloat162float(__float2bfloat16_rn(f));
    float const cuda_fp16 = __half2float(__float2half_rn(f));
    float const mine_bf16 = t::round_bf16(f);
    float const mine_fp16 = t::round_fp16(f);
    bool const nan_in = std::isnan(f);
    if (nan_in ? !std::isnan(mine_bf16) : t::float_bits(mine_bf16) != t::float_bits(cuda_bf16))
      ++bf16_mismatches;
    if (nan_in ? !std::isnan(mine_fp16) : t::float_bits(mine_fp16) != t::float_bits(cuda_fp16))
      ++fp16_mismatches;
    // A rounded value is representable: rounding it again changes nothing.
    if (!nan_in && (t::float_bits(t::round_fp16(mine_fp16)) != t::float_bits(mine_fp16) ||
                    t::float_bits(t::round_bf16(mine_bf16)) != t::float_bits(mine_bf16)))
      ++round_trip_mismatches;
  }
  CHECK(bf16_mismatches == 0);
  CHECK(fp16_mismatches == 0);
  CHECK(round_trip_mismatches == 0);
  // And every fp16 value decodes as CUDA decodes it.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    __half_raw raw;
    raw.x = static_cast<unsigned short>(h);
    float const cuda = __half2float(__half(raw));
    float const mine = t::fp16_bits_to_float(static_cast<uint16_t>(h));
    if (std::isnan(cuda)) {
      CHECK(std::isnan(mine));
    } else if (t::float_bits(mine) != t::float_bits(cuda)) {
      FAIL_CHECK("fp16 pattern " << h << " decodes to " << mine << ", CUDA says " << cuda);
    }
  }
}

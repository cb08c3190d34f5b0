// The forward GPU matrix: every registered forward config that runs on this device, against the
// fp64 CPU reference (small shapes, tag [small]) and the naive fp32 GPU reference (long ones).
#include <catch2/catch.hpp>

#include <sigattn/api.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "../support/gpu_problem.cuh"
#include "../support/naive_reference.cuh"

using namespace sigattn;
using namespace sigattn::test;
using reference::Side;

namespace {

uint64_t next_seed() {
  static uint64_t seed = 0x5157a77e0000ull + static_cast<uint64_t>(Catch::rngSeed());
  return ++seed;
}

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { SIGATTN_TEST_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(s); }
};

/// Runs the forward and returns O as floats (the whole buffer, gaps included).
std::vector<float> run_forward(DeviceProblem& prob) {
  Stream stream;
  Result r = forward(prob.params(), stream.s);
  INFO("forward: " << to_string(r));
  REQUIRE(r);
  SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
  return prob.o().download(prob.spec().dtype);
}

/// Forward against the fp64 reference: relative L2 over real rows within `tol`, padded rows of O
/// exactly zero (they were NaN before the call).
void check_against_fp64(ProblemSpec spec, double tol) {
  spec.seed = next_seed();
  INFO(spec.describe());
  DeviceProblem prob(spec);
  std::vector<float> o = run_forward(prob);
  reference::ProblemDesc d = prob.desc();
  std::vector<double> ref(o.size(), 0.0);
  REQUIRE(reference::forward(d, prob.q().host.data(), prob.k().host.data(), prob.v().host.data(),
                             ref.data()));
  auto real = reference::real_rows(d, Side::kQuery);
  auto padded = reference::padded_rows(d, Side::kQuery);
  double err = reference::relative_l2(real, d.head_dim, o.data(), ref.data(), prob.o().stride);
  INFO("relative L2 error " << err << " (bar " << tol << ")");
  CHECK(err <= tol);
  CHECK(reference::rows_are_zero(padded, d.head_dim, o.data(), prob.o().stride));
}

ProblemSpec base_spec(KernelConfig const& c) {
  ProblemSpec s;
  s.dtype = c.dtype;
  s.head_dim = c.head_dim;
  s.path = c.path;
  return s;
}

double bar(KernelConfig const& c) { return rel_l2_tolerance(c.dtype); }

}  // namespace

TEST_CASE("forward: lengths full, ragged, zero, one, not a tile multiple", "[forward][small]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 2;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 192;  // full, no length arrays
    check_against_fp64(s, bar(c));

    s.batch = 3;
    s.max_q_len = s.max_kv_len = 300;
    s.q_lens = s.kv_lens = {300, 173, 1};  // ragged, one of length 1
    check_against_fp64(s, bar(c));

    s.batch = 2;
    s.max_q_len = s.max_kv_len = 130;
    s.q_lens = {0, 130};  // no queries; queries but no keys
    s.kv_lens = {77, 0};
    check_against_fp64(s, bar(c));

    s.max_q_len = s.max_kv_len = 1;  // a single token everywhere
    s.q_lens = s.kv_lens = {};
    check_against_fp64(s, bar(c));

    s.max_q_len = 130;  // Sq != Skv, neither a tile multiple
    s.max_kv_len = 257;
    s.q_lens = {100, 130};
    s.kv_lens = {257, 31};
    check_against_fp64(s, bar(c));

    s.batch = 3;  // lengths at and around the tile sizes (64 and 128)
    s.max_q_len = s.max_kv_len = 300;
    s.q_lens = {128, 129, 127};
    s.kv_lens = {128, 64, 65};
    check_against_fp64(s, bar(c));

    s.batch = 2;
    s.max_q_len = s.max_kv_len = 100;  // device lengths out of range are clamped to [0, S]
    s.q_lens = {-5, 1000};
    s.kv_lens = {1000, -7};
    check_against_fp64(s, bar(c));
  }
}

TEST_CASE("forward: causal, top-left and bottom-right", "[forward][small][causal]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 2;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 200;
    s.q_lens = s.kv_lens = {200, 137};
    s.causal = Causal::kTopLeft;
    check_against_fp64(s, bar(c));

    s.max_q_len = 70;  // decoding-like: the last q_len positions of a longer key range
    s.max_kv_len = 200;
    s.q_lens = {70, 33};
    s.kv_lens = {200, 150};
    s.causal = Causal::kBottomRight;
    check_against_fp64(s, bar(c));

    s.q_lens = {70, 50};  // q_len > kv_len: the first rows see no key at all
    s.kv_lens = {20, 1};
    check_against_fp64(s, bar(c));

    s.causal = Causal::kTopLeft;  // top-left with Sq != Skv
    check_against_fp64(s, bar(c));
  }
}

TEST_CASE("forward: GQA, MQA and strided layouts", "[forward][small][layout]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 2;
    s.max_q_len = s.max_kv_len = 150;
    s.q_lens = s.kv_lens = {150, 91};
    s.num_heads = 4;
    s.num_kv_heads = 2;
    check_against_fp64(s, bar(c));

    s.num_heads = 3;
    s.num_kv_heads = 1;
    s.causal = Causal::kTopLeft;
    check_against_fp64(s, bar(c));

    s.causal = Causal::kNone;
    s.num_heads = 2;
    s.num_kv_heads = 2;
    for (Layout l : {Layout::kBHSD, Layout::kPaddedRows}) {
      s.layout = l;
      check_against_fp64(s, bar(c));
    }
  }
}

TEST_CASE("forward: bias modes, scale and the fast sigmoid", "[forward][small][bias]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 3;
    s.num_heads = s.num_kv_heads = 1;
    s.max_q_len = s.max_kv_len = 140;
    s.q_lens = s.kv_lens = {140, 64, 9};
    s.bias_mode = BiasMode::kScalar;
    s.bias = -2.5f;
    check_against_fp64(s, bar(c));

    s.bias_mode = BiasMode::kPerBatch;
    s.bias_per_batch = {-1.0f, -6.0f, 0.5f};
    s.scale = 0.05f;
    check_against_fp64(s, bar(c));

    // tanh.approx is about 1% off where bias -log(n) puts most scores; an opt-in with its own
    // (documented) looser bar.
    s.bias_mode = BiasMode::kNegLogKvLen;
    s.scale = 0.0f;
    s.sigmoid = SigmoidMode::kFast;
    check_against_fp64(s, 2e-2);
  }
}

TEST_CASE("forward: batch x heads beyond 65,535", "[forward]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 70000;
    s.num_heads = s.num_kv_heads = 1;
    s.max_q_len = s.max_kv_len = 8;
    check_against_fp64(s, bar(c));
  }
}

// Element offsets beyond 2^31: the second batch entry starts 2^31 + 4096 elements in. Only the
// real rows are uploaded; the rest of each buffer is NaN (0xFFFF in both 16-bit types).
TEST_CASE("forward: 64-bit offsets", "[forward][large]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    size_t free_bytes = 0;
    size_t total_bytes = 0;
    SIGATTN_TEST_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    int64_t const batch_stride = (int64_t{1} << 31) + 4096;
    int const seq = 100;
    int const dim = c.head_dim;
    int64_t const elements = batch_stride + int64_t{seq} * dim;
    if (free_bytes < 4 * static_cast<size_t>(elements) * 2 + (size_t{1} << 30)) {
      WARN("not enough device memory for the 64-bit offset test");
      continue;
    }
    DeviceBuffer q(elements * 2), k(elements * 2), v(elements * 2), o(elements * 2);
    for (DeviceBuffer* t : {&q, &k, &v, &o}) SIGATTN_TEST_CUDA(cudaMemset(t->get(), 0xFF, t->bytes()));

    // Compact host copies [2, seq, 1, dim], uploaded at batch offsets 0 and batch_stride.
    std::mt19937_64 rng(next_seed());
    std::normal_distribution<float> normal(0.0f, 1.0f);
    int64_t const per_batch = int64_t{seq} * dim;
    std::vector<float> hq(2 * per_batch), hk(2 * per_batch), hv(2 * per_batch);
    for (auto pair : {std::make_pair(&hq, &q), std::make_pair(&hk, &k), std::make_pair(&hv, &v)}) {
      std::vector<uint16_t> bits(pair.first->size());
      for (size_t i = 0; i < bits.size(); ++i) {
        bits[i] = to_bits(c.dtype, normal(rng));
        (*pair.first)[i] = from_bits(c.dtype, bits[i]);
      }
      for (int b = 0; b < 2; ++b)
        SIGATTN_TEST_CUDA(cudaMemcpy(static_cast<uint16_t*>(pair.second->get()) + b * batch_stride,
                                     bits.data() + b * per_batch, per_batch * 2,
                                     cudaMemcpyHostToDevice));
    }
    FwdParams p{};
    p.q = q.get();
    p.k = k.get();
    p.v = v.get();
    p.o = o.get();
    p.dtype = c.dtype;
    p.batch = 2;
    p.num_heads = p.num_kv_heads = 1;
    p.head_dim = dim;
    p.max_q_len = p.max_kv_len = seq;
    p.q_stride = p.k_stride = p.v_stride = p.o_stride = Strides{batch_stride, dim, dim};
    p.path = c.path;
    INFO(to_string(c.dtype) << " D=" << dim);
    Result r = forward(p, nullptr);
    REQUIRE(r);
    SIGATTN_TEST_CUDA(cudaDeviceSynchronize());
    std::vector<uint16_t> out_bits(2 * per_batch);
    for (int b = 0; b < 2; ++b)
      SIGATTN_TEST_CUDA(cudaMemcpy(out_bits.data() + b * per_batch,
                                   static_cast<uint16_t*>(o.get()) + b * batch_stride,
                                   per_batch * 2, cudaMemcpyDeviceToHost));
    std::vector<float> out(out_bits.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = from_bits(c.dtype, out_bits[i]);

    reference::ProblemDesc d;
    d.batch = 2;
    d.num_heads = d.num_kv_heads = 1;
    d.head_dim = dim;
    d.max_q_len = d.max_kv_len = seq;
    Strides compact{per_batch, dim, dim};
    d.q_stride = d.k_stride = d.v_stride = d.o_stride = compact;
    std::vector<double> ref(out.size());
    REQUIRE(reference::forward(d, hq.data(), hk.data(), hv.data(), ref.data()));
    double err = reference::relative_l2(reference::real_rows(d, Side::kQuery), dim, out.data(),
                                        ref.data(), compact);
    INFO("relative L2 error " << err);
    CHECK(err <= bar(c));
  }
}

// The naive fp32 GPU reference is itself checked against fp64 before it judges long sequences.
TEST_CASE("naive fp32 GPU reference matches fp64", "[reference][small]") {
  ProblemSpec s;
  s.dtype = DType::kBF16;
  s.head_dim = 128;
  s.batch = 2;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.max_q_len = 90;
  s.max_kv_len = 150;
  s.q_lens = {90, 41};
  s.kv_lens = {150, 77};
  s.causal = Causal::kBottomRight;
  s.seed = next_seed();
  INFO(s.describe());
  DeviceProblem prob(s);
  reference::ProblemDesc d = prob.desc();
  DeviceBuffer o32(static_cast<size_t>(s.batch) * s.max_q_len * s.num_heads * s.head_dim * 4);
  SIGATTN_TEST_CUDA(naive_forward(prob.params(), static_cast<float*>(o32.get())));
  std::vector<float> o(o32.bytes() / 4);
  SIGATTN_TEST_CUDA(cudaMemcpy(o.data(), o32.get(), o32.bytes(), cudaMemcpyDeviceToHost));
  std::vector<double> ref(static_cast<size_t>(prob.o().elements), 0.0);
  REQUIRE(reference::forward(d, prob.q().host.data(), prob.k().host.data(), prob.v().host.data(),
                             ref.data()));
  Strides dense = reference::bshd_strides(s.max_q_len, s.num_heads, s.head_dim);
  double err = reference::relative_l2(reference::real_rows(d, Side::kQuery), s.head_dim, o.data(),
                                      dense, ref.data(), prob.o().stride);
  INFO("relative L2 error " << err);
  CHECK(err <= 1e-5);
}

TEST_CASE("forward: long sequences against the naive fp32 reference", "[forward][long]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    struct Case {
      int seq;
      std::vector<int32_t> lens;
      Causal causal;
    };
    for (Case const& k : {Case{16384, {16384, 9001}, Causal::kNone},
                          Case{4096, {4096, 2500}, Causal::kTopLeft}}) {
      ProblemSpec s = base_spec(c);
      s.batch = 2;
      s.num_heads = 2;
      s.num_kv_heads = 1;
      s.max_q_len = s.max_kv_len = k.seq;
      s.q_lens = s.kv_lens = k.lens;
      s.causal = k.causal;
      s.seed = next_seed();
      INFO(s.describe());
      DeviceProblem prob(s);
      std::vector<float> o = run_forward(prob);
      DeviceBuffer o32(static_cast<size_t>(s.batch) * s.max_q_len * s.num_heads * s.head_dim * 4);
      SIGATTN_TEST_CUDA(naive_forward(prob.params(), static_cast<float*>(o32.get())));
      std::vector<float> ref(o32.bytes() / 4);
      SIGATTN_TEST_CUDA(cudaMemcpy(ref.data(), o32.get(), o32.bytes(), cudaMemcpyDeviceToHost));
      reference::ProblemDesc d = prob.desc();
      Strides dense = reference::bshd_strides(s.max_q_len, s.num_heads, s.head_dim);
      double err = reference::relative_l2(reference::real_rows(d, Side::kQuery), s.head_dim,
                                          o.data(), prob.o().stride, ref.data(), dense);
      INFO("relative L2 error " << err << " (bar " << bar(c) << ")");
      CHECK(err <= bar(c));
      CHECK(reference::rows_are_zero(reference::padded_rows(d, Side::kQuery), s.head_dim,
                                     o.data(), prob.o().stride));
    }
  }
}

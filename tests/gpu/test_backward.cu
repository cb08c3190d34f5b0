// The backward GPU matrix: dQ, dK, dV of every registered backward config that runs on this
// device, in the atomic (default) and deterministic modes, against the fp64 CPU reference (small
// shapes, tag [small]) and the naive fp32 GPU reference (long ones). NaN sits in every padded row
// of Q, K, V and dO; the gradients are NaN before each call.
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
  static uint64_t seed = 0xbacc0000ull + static_cast<uint64_t>(Catch::rngSeed());
  return ++seed;
}

struct Grads {
  std::vector<float> dq, dk, dv;
};

/// Runs the backward (with a fresh NaN poisoning of the gradients) and downloads them.
Grads run_backward(DeviceProblem& prob, bool deterministic) {
  DType const dt = prob.spec().dtype;
  prob.dq().poison(dt);
  prob.dk().poison(dt);
  prob.dv().poison(dt);
  BwdParams& bp = prob.bwd_params();
  bp.deterministic = deterministic;
  size_t ws_bytes = workspace_bytes(bp);
  DeviceBuffer ws(ws_bytes);
  // The workspace need not be zeroed by the caller: fill it with garbage to prove it.
  // (cudaMemset runs on the legacy stream, which a non-blocking stream does not wait for.)
  if (ws_bytes > 0) SIGATTN_TEST_CUDA(cudaMemset(ws.get(), 0x7F, ws_bytes));
  SIGATTN_TEST_CUDA(cudaDeviceSynchronize());
  cudaStream_t stream;
  SIGATTN_TEST_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  Result r = backward(bp, ws.get(), stream);
  cudaError_t sync = cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  INFO("backward: " << to_string(r));
  REQUIRE(r);
  SIGATTN_TEST_CUDA(sync);
  return Grads{prob.dq().download(dt), prob.dk().download(dt), prob.dv().download(dt)};
}

void check_gradient(char const* name, std::vector<float> const& got, std::vector<double> const& ref,
                    Strides const& stride, reference::ProblemDesc const& d, Side side,
                    double tol) {
  auto real = reference::real_rows(d, side);
  double err = reference::relative_l2(real, d.head_dim, got.data(), ref.data(), stride);
  INFO(name << ": relative L2 error " << err << " (bar " << tol << ")");
  CHECK(err <= tol);
  INFO(name << ": padded rows must be exact zeros");
  CHECK(reference::rows_are_zero(reference::padded_rows(d, side), d.head_dim, got.data(), stride));
}

/// Both modes against the fp64 reference.
void check_against_fp64(ProblemSpec spec, double tol) {
  spec.seed = next_seed();
  spec.backward = true;
  INFO(spec.describe());
  DeviceProblem prob(spec);
  reference::ProblemDesc d = prob.desc();
  std::vector<double> dq(static_cast<size_t>(prob.dq().elements), 0.0);
  std::vector<double> dk(static_cast<size_t>(prob.dk().elements), 0.0);
  std::vector<double> dv(static_cast<size_t>(prob.dv().elements), 0.0);
  REQUIRE(reference::backward(d, prob.q().host.data(), prob.k().host.data(), prob.v().host.data(),
                              prob.dout().host.data(), dq.data(), dk.data(), dv.data()));
  for (bool deterministic : {false, true}) {
    INFO("deterministic=" << deterministic);
    Grads g = run_backward(prob, deterministic);
    check_gradient("dQ", g.dq, dq, prob.dq().stride, d, Side::kQuery, tol);
    check_gradient("dK", g.dk, dk, prob.dk().stride, d, Side::kKeyValue, tol);
    check_gradient("dV", g.dv, dv, prob.dv().stride, d, Side::kKeyValue, tol);
  }
}

ProblemSpec base_spec(KernelConfig const& c) {
  ProblemSpec s;
  s.dtype = c.dtype;
  s.head_dim = c.head_dim;
  s.path = c.path;
  return s;
}

double bar(KernelConfig const& c) { return rel_l2_tolerance(c.dtype); }

bool same_bits(std::vector<float> const& a, std::vector<float> const& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("backward: lengths full, ragged, zero, one, not a tile multiple", "[backward][small]") {
  for (KernelConfig const& c : runnable_configs(Direction::kBackward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 2;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 192;
    check_against_fp64(s, bar(c));

    s.batch = 3;
    s.max_q_len = s.max_kv_len = 300;
    s.q_lens = s.kv_lens = {300, 173, 1};
    check_against_fp64(s, bar(c));

    s.batch = 2;
    s.max_q_len = s.max_kv_len = 130;
    s.q_lens = {0, 130};
    s.kv_lens = {77, 0};
    check_against_fp64(s, bar(c));

    // One key per query: each row of dQ (and of dK, dV) is one product scaled by a single dS
    // (or P) value, so the one rounding of dS to the element type (SPEC section 2) hits all D
    // elements of the row alike instead of averaging out over many keys, and adds to the output's
    // own rounding: about 2 * 2^-9 for bf16. The bar is doubled for this degenerate case only.
    s.max_q_len = s.max_kv_len = 1;
    s.q_lens = s.kv_lens = {};
    check_against_fp64(s, 2 * bar(c));

    s.max_q_len = 130;
    s.max_kv_len = 257;
    s.q_lens = {100, 130};
    s.kv_lens = {257, 31};
    check_against_fp64(s, bar(c));
  }
}

TEST_CASE("backward: causal, GQA, layouts, bias modes", "[backward][small]") {
  for (KernelConfig const& c : runnable_configs(Direction::kBackward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 2;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 200;
    s.q_lens = s.kv_lens = {200, 137};
    s.causal = Causal::kTopLeft;
    check_against_fp64(s, bar(c));

    s.max_q_len = 70;
    s.max_kv_len = 200;
    s.q_lens = {70, 50};
    s.kv_lens = {200, 20};
    s.causal = Causal::kBottomRight;
    check_against_fp64(s, bar(c));

    s.causal = Causal::kNone;
    s.max_q_len = s.max_kv_len = 150;
    s.q_lens = s.kv_lens = {150, 91};
    s.num_heads = 4;  // GQA: dK, dV sum over the two query heads of each group
    s.num_kv_heads = 2;
    check_against_fp64(s, bar(c));
    s.num_heads = 3;  // MQA
    s.num_kv_heads = 1;
    s.causal = Causal::kTopLeft;
    check_against_fp64(s, bar(c));

    s.causal = Causal::kNone;
    s.num_heads = s.num_kv_heads = 2;
    for (Layout l : {Layout::kBHSD, Layout::kPaddedRows}) {
      s.layout = l;
      check_against_fp64(s, bar(c));
    }
    s.layout = Layout::kBSHD;
    s.bias_mode = BiasMode::kPerBatch;
    s.bias_per_batch = {-1.0f, -4.0f};
    check_against_fp64(s, bar(c));

    s.bias_mode = BiasMode::kScalar;  // a user scale and scalar bias reach dS, dQ and dK
    s.bias = -1.5f;
    s.scale = 0.05f;
    s.q_lens = s.kv_lens = {128, 65};  // at and past the 64-row tiles
    check_against_fp64(s, bar(c));

    s.sigmoid = SigmoidMode::kFast;  // the opt-in fast sigmoid, with its own looser bar
    check_against_fp64(s, 2e-2);
  }
}

TEST_CASE("backward: deterministic mode is bitwise reproducible", "[backward][small][deterministic]") {
  for (KernelConfig const& c : runnable_configs(Direction::kBackward)) {
    ProblemSpec s = base_spec(c);
    s.backward = true;
    s.batch = 2;
    s.num_heads = 4;
    s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 333;
    s.q_lens = s.kv_lens = {333, 200};
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);
    Grads first = run_backward(prob, true);
    Grads second = run_backward(prob, true);
    CHECK(same_bits(first.dq, second.dq));
    CHECK(same_bits(first.dk, second.dk));
    CHECK(same_bits(first.dv, second.dv));
  }
}

TEST_CASE("naive fp32 GPU backward matches fp64", "[reference][small]") {
  ProblemSpec s;
  s.dtype = DType::kFP16;
  s.head_dim = 64;
  s.batch = 2;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.max_q_len = 90;
  s.max_kv_len = 150;
  s.q_lens = {90, 41};
  s.kv_lens = {150, 77};
  s.causal = Causal::kBottomRight;
  s.backward = true;
  s.seed = next_seed();
  INFO(s.describe());
  DeviceProblem prob(s);
  reference::ProblemDesc d = prob.desc();
  size_t q_elems = size_t{2} * 90 * 4 * 64;
  size_t kv_elems = size_t{2} * 150 * 2 * 64;
  DeviceBuffer dq32(q_elems * 4), dk32(kv_elems * 4), dv32(kv_elems * 4);
  SIGATTN_TEST_CUDA(naive_backward(prob.bwd_params(), static_cast<float*>(dq32.get()),
                                   static_cast<float*>(dk32.get()),
                                   static_cast<float*>(dv32.get())));
  std::vector<float> dq(q_elems), dk(kv_elems), dv(kv_elems);
  SIGATTN_TEST_CUDA(cudaMemcpy(dq.data(), dq32.get(), q_elems * 4, cudaMemcpyDeviceToHost));
  SIGATTN_TEST_CUDA(cudaMemcpy(dk.data(), dk32.get(), kv_elems * 4, cudaMemcpyDeviceToHost));
  SIGATTN_TEST_CUDA(cudaMemcpy(dv.data(), dv32.get(), kv_elems * 4, cudaMemcpyDeviceToHost));
  std::vector<double> rq(static_cast<size_t>(prob.dq().elements), 0.0);
  std::vector<double> rk(static_cast<size_t>(prob.dk().elements), 0.0);
  std::vector<double> rv(static_cast<size_t>(prob.dv().elements), 0.0);
  REQUIRE(reference::backward(d, prob.q().host.data(), prob.k().host.data(), prob.v().host.data(),
                              prob.dout().host.data(), rq.data(), rk.data(), rv.data()));
  Strides q_dense = reference::bshd_strides(90, 4, 64);
  Strides kv_dense = reference::bshd_strides(150, 2, 64);
  auto qrows = reference::real_rows(d, Side::kQuery);
  auto kvrows = reference::real_rows(d, Side::kKeyValue);
  CHECK(reference::relative_l2(qrows, 64, dq.data(), q_dense, rq.data(), prob.dq().stride) < 1e-5);
  CHECK(reference::relative_l2(kvrows, 64, dk.data(), kv_dense, rk.data(), prob.dk().stride) <
        1e-5);
  CHECK(reference::relative_l2(kvrows, 64, dv.data(), kv_dense, rv.data(), prob.dv().stride) <
        1e-5);
}

TEST_CASE("backward: long sequences against the naive fp32 reference", "[backward][long]") {
  for (KernelConfig const& c : runnable_configs(Direction::kBackward)) {
    ProblemSpec s = base_spec(c);
    s.backward = true;
    s.batch = 2;
    s.num_heads = 2;
    s.num_kv_heads = 1;
    s.max_q_len = s.max_kv_len = 16384;
    s.q_lens = s.kv_lens = {16384, 7001};
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);
    reference::ProblemDesc d = prob.desc();
    size_t q_elems = size_t{2} * 16384 * 2 * c.head_dim;
    size_t kv_elems = size_t{2} * 16384 * 1 * c.head_dim;
    DeviceBuffer dq32(q_elems * 4), dk32(kv_elems * 4), dv32(kv_elems * 4);
    SIGATTN_TEST_CUDA(naive_backward(prob.bwd_params(), static_cast<float*>(dq32.get()),
                                     static_cast<float*>(dk32.get()),
                                     static_cast<float*>(dv32.get())));
    std::vector<float> rq(q_elems), rk(kv_elems), rv(kv_elems);
    SIGATTN_TEST_CUDA(cudaMemcpy(rq.data(), dq32.get(), q_elems * 4, cudaMemcpyDeviceToHost));
    SIGATTN_TEST_CUDA(cudaMemcpy(rk.data(), dk32.get(), kv_elems * 4, cudaMemcpyDeviceToHost));
    SIGATTN_TEST_CUDA(cudaMemcpy(rv.data(), dv32.get(), kv_elems * 4, cudaMemcpyDeviceToHost));
    Strides q_dense = reference::bshd_strides(16384, 2, c.head_dim);
    Strides kv_dense = reference::bshd_strides(16384, 1, c.head_dim);
    Grads g = run_backward(prob, false);
    auto qrows = reference::real_rows(d, Side::kQuery);
    auto kvrows = reference::real_rows(d, Side::kKeyValue);
    double eq = reference::relative_l2(qrows, c.head_dim, g.dq.data(), prob.dq().stride,
                                       rq.data(), q_dense);
    double ek = reference::relative_l2(kvrows, c.head_dim, g.dk.data(), prob.dk().stride,
                                       rk.data(), kv_dense);
    double ev = reference::relative_l2(kvrows, c.head_dim, g.dv.data(), prob.dv().stride,
                                       rv.data(), kv_dense);
    INFO("relative L2 errors dQ " << eq << " dK " << ek << " dV " << ev << " (bar " << bar(c)
                                  << ")");
    CHECK(eq <= bar(c));
    CHECK(ek <= bar(c));
    CHECK(ev <= bar(c));
  }
}

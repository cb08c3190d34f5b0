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
#include "../support/gpu_test.cuh"
#include "../support/naive_reference.cuh"

namespace sigattn::test {
uint64_t const kSeedBase = 0xbacc0000ull;  // this file's seed sequence (gpu_test.cuh)
}  // namespace sigattn::test

using namespace sigattn;
using namespace sigattn::test;
using reference::Side;

namespace {

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
  Stream stream;
  Result r = backward(bp, ws.get(), stream.s);
  cudaError_t sync = cudaStreamSynchronize(stream.s);
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

    // Device lengths out of range are clamped to [0, S] by every kernel, the workspace clear
    // included (an unclamped length would write past the workspace: compute-sanitizer's case).
    s.max_q_len = s.max_kv_len = 100;
    s.q_lens = {-5, 1000};
    s.kv_lens = {1000, -7};
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

    // More queries than keys under a bottom-right mask, over three 128-row query tiles (the
    // Hopper dQ kernel's tile): the first rows see no key, so whole query tiles have none, and
    // key lengths that are whole 64-key tiles below max_kv_len (no boundary tile to zero).
    s.max_q_len = 300;
    s.max_kv_len = 260;
    s.q_lens = {300, 260};
    s.kv_lens = {128, 256};
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

// The cases below draw their seeds after every case above, so adding them left the data of the
// cases above unchanged.

namespace {

/// The fp64 gradients of a problem, each sized by its own tensor.
struct RefGrads {
  std::vector<double> dq, dk, dv;
};

}  // namespace

// A graph captured on a (blocking) user stream replays the backward: the deterministic mode
// bitwise equal to a direct call, twice; the atomic mode (whose captured clear kernel zeroes the
// workspace's real rows, garbage before every replay) within the bar, twice. Global capture mode:
// a capture-unsafe call or legacy-stream work from the library would fail the capture.
TEST_CASE("backward: CUDA graph capture on a user stream, replayed twice",
          "[backward][small][graph]") {
  for (KernelConfig const& c : runnable_configs(Direction::kBackward)) {
    ProblemSpec s = base_spec(c);
    s.backward = true;
    s.batch = 2;
    s.num_heads = 4;
    s.num_kv_heads = 2;
    s.max_q_len = 150;
    s.max_kv_len = 200;
    s.q_lens = {150, 77};
    s.kv_lens = {200, 131};
    s.causal = Causal::kBottomRight;
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);
    reference::ProblemDesc d = prob.desc();
    RefGrads ref{std::vector<double>(static_cast<size_t>(prob.dq().elements), 0.0),
                 std::vector<double>(static_cast<size_t>(prob.dk().elements), 0.0),
                 std::vector<double>(static_cast<size_t>(prob.dv().elements), 0.0)};
    REQUIRE(reference::backward(d, prob.q().host.data(), prob.k().host.data(),
                                prob.v().host.data(), prob.dout().host.data(), ref.dq.data(),
                                ref.dk.data(), ref.dv.data()));
    for (bool deterministic : {true, false}) {
      INFO("deterministic=" << deterministic);
      BwdParams& bp = prob.bwd_params();
      bp.deterministic = deterministic;
      DeviceBuffer ws(workspace_bytes(bp));
      CHECK((ws.bytes() == 0) == deterministic);
      DType const dt = s.dtype;
      for (Tensor* t : {&prob.dq(), &prob.dk(), &prob.dv()}) t->poison(dt);
      Stream stream(cudaStreamDefault);

      Graph graph;
      Result r =
          graph.capture(stream.s, [&](cudaStream_t st) { return backward(bp, ws.get(), st); });
      INFO("backward under capture: " << to_string(r));
      REQUIRE(r);
      CHECK(graph.num_nodes() >= 1);
      INFO("capturing must not run anything: the gradients are still NaN");
      CHECK(all_nan(prob.dq().download(dt)));
      CHECK(all_nan(prob.dk().download(dt)));
      CHECK(all_nan(prob.dv().download(dt)));

      Grads direct = run_backward(prob, deterministic);
      for (int replay = 0; replay < 2; ++replay) {
        INFO("replay " << replay);
        for (Tensor* t : {&prob.dq(), &prob.dk(), &prob.dv()}) t->poison(dt);
        if (ws.bytes() > 0) SIGATTN_TEST_CUDA(cudaMemset(ws.get(), 0x7F, ws.bytes()));
        SIGATTN_TEST_CUDA(cudaDeviceSynchronize());
        graph.launch(stream.s);
        SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
        Grads g{prob.dq().download(dt), prob.dk().download(dt), prob.dv().download(dt)};
        if (deterministic) {
          CHECK(same_bits(g.dq, direct.dq));
          CHECK(same_bits(g.dk, direct.dk));
          CHECK(same_bits(g.dv, direct.dv));
        }
        check_gradient("dQ", g.dq, ref.dq, prob.dq().stride, d, Side::kQuery, bar(c));
        check_gradient("dK", g.dk, ref.dk, prob.dk().stride, d, Side::kKeyValue, bar(c));
        check_gradient("dV", g.dv, ref.dv, prob.dv().stride, d, Side::kKeyValue, bar(c));
      }
    }
  }
}

// SPEC section 3: a backward with nothing to write (batch 0, or neither queries nor keys) is a
// successful no-op: nothing launched, nothing written, null tensors and a null workspace fine;
// an invalid call launches nothing either.
TEST_CASE("backward: empty problems and invalid calls launch nothing", "[backward][small][empty]") {
  for (KernelConfig const& c : runnable_configs(Direction::kBackward)) {
    ProblemSpec s = base_spec(c);
    s.backward = true;
    s.batch = 2;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 64;
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);  // the gradients are NaN: whatever is written shows
    DType const dt = s.dtype;
    Stream stream(cudaStreamDefault);
    int device = 0;
    SIGATTN_TEST_CUDA(cudaGetDevice(&device));

    struct Case {
      char const* name;
      BwdParams p;
      Status expect;
    };
    std::vector<Case> cases;
    BwdParams const base = prob.bwd_params();
    BwdParams p = base;
    p.fwd.batch = 0;
    cases.push_back({"batch 0", p, Status::kSuccess});
    p.fwd.q = p.fwd.k = p.fwd.v = nullptr;
    p.dout = nullptr;
    p.dq = p.dk = p.dv = nullptr;
    cases.push_back({"batch 0, every pointer null", p, Status::kSuccess});
    p = base;
    p.fwd.max_q_len = p.fwd.max_kv_len = 0;
    p.fwd.q = p.fwd.k = p.fwd.v = nullptr;
    p.dout = nullptr;
    p.dq = p.dk = p.dv = nullptr;
    cases.push_back({"max_q_len and max_kv_len 0, every tensor null", p, Status::kSuccess});
    p = base;
    p.dk = static_cast<uint16_t*>(prob.dk().dev.get()) + 4;
    cases.push_back({"misaligned dK", p, Status::kErrorMisalignedPointer});
    p = base;
    p.dq = nullptr;
    cases.push_back({"null dQ", p, Status::kErrorInvalidArgument});
    p = base;
    p.fwd.dtype = static_cast<DType>(7);
    cases.push_back({"unknown dtype", p, Status::kErrorNotSupported});

    for (Case const& k : cases) {
      for (bool deterministic : {false, true}) {
        INFO(k.name << ", deterministic=" << deterministic);
        BwdParams q = k.p;
        q.deterministic = deterministic;
        // A workspace big enough for the full problem, so that only what the case changes decides.
        DeviceBuffer ws(workspace_bytes(base) > 0 ? workspace_bytes(base) : 16);
        for (void* w : {static_cast<void*>(nullptr), ws.get()}) {
          if (w == nullptr && k.expect != Status::kSuccess) continue;
          Graph graph;
          Result r = graph.capture(stream.s, [&](cudaStream_t st) { return backward(q, w, st); });
          CHECK(r.status == k.expect);
          CHECK(r.cuda == cudaSuccess);
          CHECK(graph.num_nodes() == 0);
          r = backward(q, w, stream.s);
          CHECK(r.status == k.expect);
          SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
          CHECK(all_nan(prob.dq().download(dt)));
          CHECK(all_nan(prob.dk().download(dt)));
          CHECK(all_nan(prob.dv().download(dt)));
        }
        CHECK(can_implement(q, device).status == k.expect);
      }
    }
  }
}

// One side empty: no queries (max_q_len 0 or num_heads 0, Q, dO, dQ null) still writes dK and dV,
// as zeros; no keys (max_kv_len 0, K, V, dK, dV null) still writes dQ, as zeros; and lengths of 0
// everywhere zero every gradient, whatever sits in the padding.
TEST_CASE("backward: one side empty gives all-zero gradients", "[backward][small][empty]") {
  for (KernelConfig const& c : runnable_configs(Direction::kBackward)) {
    ProblemSpec s = base_spec(c);
    s.backward = true;
    s.batch = 3;
    s.num_heads = 4;
    s.num_kv_heads = 2;
    s.max_q_len = 0;
    s.max_kv_len = 150;
    s.kv_lens = {150, 1, 0};
    s.seed = next_seed();
    INFO(s.describe());
    DType const dt = s.dtype;
    for (bool deterministic : {false, true}) {
      INFO("deterministic=" << deterministic);
      {
        INFO("max_q_len 0: Q, dO and dQ null");
        DeviceProblem prob(s);
        BwdParams bp = prob.bwd_params();
        bp.fwd.q = nullptr;
        bp.dout = nullptr;
        bp.dq = nullptr;
        bp.deterministic = deterministic;
        CHECK(workspace_bytes(bp) == 0);
        Stream stream;
        Result r = backward(bp, nullptr, stream.s);
        INFO("backward: " << to_string(r));
        REQUIRE(r);
        SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
        CHECK(all_zero(prob.dk().download(dt)));
        CHECK(all_zero(prob.dv().download(dt)));
      }
      {
        INFO("num_heads 0: no query head in any group");
        ProblemSpec t = s;
        t.max_q_len = 90;
        DeviceProblem prob(t);
        BwdParams bp = prob.bwd_params();
        bp.fwd.num_heads = 0;
        bp.deterministic = deterministic;
        CHECK(workspace_bytes(bp) == 0);
        Stream stream;
        Result r = backward(bp, nullptr, stream.s);
        INFO("backward: " << to_string(r));
        REQUIRE(r);
        SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
        CHECK(all_zero(prob.dk().download(dt)));
        CHECK(all_zero(prob.dv().download(dt)));
      }
      {
        INFO("max_kv_len 0: K, V, dK and dV null");
        ProblemSpec t = s;
        t.max_q_len = 150;
        t.max_kv_len = 0;
        t.q_lens = {150, 1, 0};
        t.kv_lens = {};
        DeviceProblem prob(t);
        BwdParams bp = prob.bwd_params();
        bp.fwd.k = bp.fwd.v = nullptr;
        bp.dk = bp.dv = nullptr;
        bp.deterministic = deterministic;
        DeviceBuffer ws(workspace_bytes(bp));
        if (ws.bytes() > 0) SIGATTN_TEST_CUDA(cudaMemset(ws.get(), 0x7F, ws.bytes()));
        SIGATTN_TEST_CUDA(cudaDeviceSynchronize());
        Stream stream;
        Result r = backward(bp, ws.get(), stream.s);
        INFO("backward: " << to_string(r));
        REQUIRE(r);
        SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
        CHECK(all_zero(prob.dq().download(dt)));
      }
      for (bool zero_q : {true, false}) {
        INFO((zero_q ? "q_lens" : "kv_lens") << " all 0");
        ProblemSpec t = s;
        t.max_q_len = 130;
        t.max_kv_len = 150;
        t.q_lens = zero_q ? std::vector<int32_t>{0, 0, 0} : std::vector<int32_t>{};
        t.kv_lens = zero_q ? std::vector<int32_t>{} : std::vector<int32_t>{0, 0, 0};
        t.seed = next_seed();
        DeviceProblem prob(t);
        Grads g = run_backward(prob, deterministic);
        CHECK(all_zero(g.dq));
        CHECK(all_zero(g.dk));
        CHECK(all_zero(g.dv));
      }
    }
  }
}

// Q, K, V as views of one packed [B, S, Hq + 2 Hkv, D] buffer, the gradients written into one
// packed dQKV buffer of the same layout (as autograd hands them back for a fused projection),
// and dO in a layout of its own ([B, H, S, D]). Both modes against the fp64 reference.
TEST_CASE("backward: packed QKV, packed dQKV, dO of its own stride", "[backward][small][layout]") {
  for (KernelConfig const& c : runnable_configs(Direction::kBackward)) {
    struct Heads {
      int32_t q;
      int32_t kv;
    };
    for (Heads heads : {Heads{2, 2}, Heads{4, 2}}) {
      int32_t const batch = 2;
      int32_t const seq = 140;
      int32_t const dim = c.head_dim;
      std::vector<int32_t> const lens = {140, 67};
      uint64_t const seed = next_seed();
      INFO(to_string(c.dtype) << " D=" << dim << " Hq=" << heads.q << " Hkv=" << heads.kv
                              << " seed=" << seed);
      std::mt19937_64 rng(seed);
      PackedQkv qkv = make_packed_qkv(c.dtype, batch, seq, heads.q, heads.kv, dim, lens, &rng);
      Tensor dout = make_tensor(c.dtype, reference::bhsd_strides(seq, heads.q, dim), batch, seq,
                                heads.q, dim, lens, &rng);
      PackedQkv dqkv = make_packed_qkv(c.dtype, batch, seq, heads.q, heads.kv, dim, lens, nullptr);
      DeviceBuffer d_lens = upload_vector(lens);

      BwdParams bp{};
      FwdParams& p = bp.fwd;
      p.q = qkv.q_dev();
      p.k = qkv.k_dev();
      p.v = qkv.v_dev();
      p.dtype = c.dtype;
      p.batch = batch;
      p.num_heads = heads.q;
      p.num_kv_heads = heads.kv;
      p.head_dim = dim;
      p.max_q_len = p.max_kv_len = seq;
      p.q_lens = p.kv_lens = static_cast<int32_t const*>(d_lens.get());
      p.q_stride = p.k_stride = p.v_stride = qkv.t.stride;
      p.path = c.path;
      bp.dout = dout.dev.get();
      bp.dout_stride = dout.stride;
      bp.dq = dqkv.q_dev();
      bp.dk = dqkv.k_dev();
      bp.dv = dqkv.v_dev();
      bp.dq_stride = bp.dk_stride = bp.dv_stride = dqkv.t.stride;

      reference::ProblemDesc d = reference::describe(bp, lens, lens);
      std::vector<double> ref(static_cast<size_t>(dqkv.t.elements), 0.0);
      REQUIRE(reference::backward(d, qkv.q_host(), qkv.k_host(), qkv.v_host(), dout.host.data(),
                                  ref.data(), ref.data() + dqkv.k_offset,
                                  ref.data() + dqkv.v_offset));
      for (bool deterministic : {false, true}) {
        INFO("deterministic=" << deterministic);
        bp.deterministic = deterministic;
        dqkv.t.poison(c.dtype);
        DeviceBuffer ws(workspace_bytes(bp));
        Stream stream;
        Result r = backward(bp, ws.get(), stream.s);
        INFO("backward: " << to_string(r));
        REQUIRE(r);
        SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
        // dK and dV sit at head offsets of the same buffer: compare them from there.
        std::vector<float> const g = dqkv.t.download(c.dtype);
        std::vector<float> const gk(g.begin() + dqkv.k_offset, g.end());
        std::vector<float> const gv(g.begin() + dqkv.v_offset, g.end());
        std::vector<double> const rk(ref.begin() + dqkv.k_offset, ref.end());
        std::vector<double> const rv(ref.begin() + dqkv.v_offset, ref.end());
        check_gradient("dQ", g, ref, dqkv.t.stride, d, Side::kQuery, bar(c));
        check_gradient("dK", gk, rk, dqkv.t.stride, d, Side::kKeyValue, bar(c));
        check_gradient("dV", gv, rv, dqkv.t.stride, d, Side::kKeyValue, bar(c));
      }
    }
  }
}

// More (batch entry, kv head) pairs than a grid's y or z dimension holds (65,535), both modes,
// against the naive fp32 GPU reference (an fp64 one on the host would take long at this size).
TEST_CASE("backward: batch x kv heads beyond 65,535", "[backward]") {
  for (KernelConfig const& c : runnable_configs(Direction::kBackward)) {
    ProblemSpec s = base_spec(c);
    s.backward = true;
    s.batch = 66000;
    s.num_heads = s.num_kv_heads = 1;
    s.max_q_len = s.max_kv_len = 16;
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);
    reference::ProblemDesc d = prob.desc();
    size_t const elems = size_t{66000} * 16 * c.head_dim;
    DeviceBuffer dq32(elems * 4), dk32(elems * 4), dv32(elems * 4);
    SIGATTN_TEST_CUDA(naive_backward(prob.bwd_params(), static_cast<float*>(dq32.get()),
                                     static_cast<float*>(dk32.get()),
                                     static_cast<float*>(dv32.get())));
    std::vector<float> rq(elems), rk(elems), rv(elems);
    SIGATTN_TEST_CUDA(cudaMemcpy(rq.data(), dq32.get(), elems * 4, cudaMemcpyDeviceToHost));
    SIGATTN_TEST_CUDA(cudaMemcpy(rk.data(), dk32.get(), elems * 4, cudaMemcpyDeviceToHost));
    SIGATTN_TEST_CUDA(cudaMemcpy(rv.data(), dv32.get(), elems * 4, cudaMemcpyDeviceToHost));
    Strides const dense = reference::bshd_strides(16, 1, c.head_dim);
    auto const qrows = reference::real_rows(d, Side::kQuery);
    auto const kvrows = reference::real_rows(d, Side::kKeyValue);
    for (bool deterministic : {false, true}) {
      INFO("deterministic=" << deterministic);
      Grads g = run_backward(prob, deterministic);
      double eq = reference::relative_l2(qrows, c.head_dim, g.dq.data(), prob.dq().stride,
                                         rq.data(), dense);
      double ek = reference::relative_l2(kvrows, c.head_dim, g.dk.data(), prob.dk().stride,
                                         rk.data(), dense);
      double ev = reference::relative_l2(kvrows, c.head_dim, g.dv.data(), prob.dv().stride,
                                         rv.data(), dense);
      INFO("relative L2 errors dQ " << eq << " dK " << ek << " dV " << ev << " (bar " << bar(c)
                                    << ")");
      CHECK(eq <= bar(c));
      CHECK(ek <= bar(c));
      CHECK(ev <= bar(c));
    }
  }
}

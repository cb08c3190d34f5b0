// The forward GPU matrix: every registered forward config that runs on this device, against the
// fp64 CPU reference (small shapes, tag [small]) and the naive fp32 GPU reference (long ones).
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sigattn/api.hpp>
#include <sigattn/host/dispatch.cuh>  // detail::find_config (the row that serves a call)
#include <sigattn/kernel/sm90/fwd_scheduler.cuh>  // causal_level_block (a host/device rule)
#include <thread>
#include <utility>
#include <vector>

#include "../support/gpu_problem.cuh"
#include "../support/gpu_test.cuh"
#include "../support/naive_reference.cuh"

namespace sigattn::test {
uint64_t const kSeedBase = 0x5157a77e0000ull;  // this file's seed sequence (gpu_test.cuh)
}  // namespace sigattn::test

using namespace sigattn;
using namespace sigattn::test;
using reference::Side;

namespace {

/// Runs the forward, given workspace_bytes() of workspace (the Hopper path then splits its last
/// waves' tiles along the keys) unless `with_workspace` is false, and returns O as floats (the
/// whole buffer, gaps included).
std::vector<float> run_forward(DeviceProblem& prob, bool with_workspace = true) {
  Stream stream;
  DeviceBuffer workspace(with_workspace ? workspace_bytes(prob.params()) : 0);
  Result r = forward(prob.params(), workspace.get(), stream.s);
  INFO("forward: " << to_string(r));
  REQUIRE(r);
  SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
  return prob.o().download(prob.spec().dtype);
}

/// O of `prob` against the naive fp32 GPU reference (relative L2 over the real rows within the
/// config's bar) and its padded rows exact zeros.
void check_against_naive(DeviceProblem& prob, std::vector<float> const& o, KernelConfig const& c) {
  ProblemSpec const& s = prob.spec();
  DeviceBuffer o32(static_cast<size_t>(s.batch) * s.max_q_len * s.num_heads * s.head_dim * 4);
  SIGATTN_TEST_CUDA(naive_forward(prob.params(), static_cast<float*>(o32.get())));
  std::vector<float> ref(o32.bytes() / 4);
  SIGATTN_TEST_CUDA(cudaMemcpy(ref.data(), o32.get(), o32.bytes(), cudaMemcpyDeviceToHost));
  reference::ProblemDesc d = prob.desc();
  Strides dense = reference::bshd_strides(s.max_q_len, s.num_heads, s.head_dim);
  double err = reference::relative_l2(reference::real_rows(d, Side::kQuery), s.head_dim, o.data(),
                                      prob.o().stride, ref.data(), dense);
  INFO("relative L2 error " << err << " (bar " << bar(c) << ")");
  CHECK(err <= bar(c));
  CHECK(reference::rows_are_zero(reference::padded_rows(d, Side::kQuery), s.head_dim, o.data(),
                                 prob.o().stride));
}

/// Forward against the fp64 reference: relative L2 over real rows within `tol`, padded rows of O
/// exactly zero (they were NaN before the call).
void check_against_fp64(ProblemSpec spec, double tol) {
  check_forward_against_fp64(std::move(spec), tol, [](DeviceProblem& p) { return run_forward(p); });
}

/// The long cases' problem: two sequences of padded length `seq` (real lengths `lens` for queries
/// and keys), two query heads on one kv head, a fresh seed.
ProblemSpec long_spec(KernelConfig const& c, int seq, std::vector<int32_t> const& lens,
                      Causal causal) {
  ProblemSpec s = base_spec(c);
  s.batch = 2;
  s.num_heads = 2;
  s.num_kv_heads = 1;
  s.max_q_len = s.max_kv_len = seq;
  s.q_lens = s.kv_lens = lens;
  s.causal = causal;
  s.seed = next_seed();
  return s;
}

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

    s.batch = 4;  // lengths around 176 and 192 (the 192-query Hopper tile of long D = 64 calls)
    s.max_q_len = s.max_kv_len = 400;
    s.q_lens = {176, 177, 191, 193};
    s.kv_lens = {175, 352, 192, 400};
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
    for (DeviceBuffer* t : {&q, &k, &v, &o})
      SIGATTN_TEST_CUDA(cudaMemset(t->get(), 0xFF, t->bytes()));

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
        copy_to_device(static_cast<uint16_t*>(pair.second->get()) + b * batch_stride,
                       bits.data() + b * per_batch, per_batch * 2);
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
      ProblemSpec const s = long_spec(c, k.seq, k.lens, k.causal);
      INFO(s.describe());
      DeviceProblem prob(s);
      check_against_naive(prob, run_forward(prob), c);
    }
  }
}

// The cases below draw their seeds after every case above, so adding them left the data of the
// cases above unchanged.

namespace {

/// O (downloaded, laid out by `o_stride`) against the fp64 forward of `d` on the host copies q, k,
/// v: relative L2 over the real rows within `tol`, padded rows exact zeros.
void check_o(reference::ProblemDesc const& d, float const* q, float const* k, float const* v,
             std::vector<float> const& o, Strides const& o_stride, double tol) {
  std::vector<double> ref(o.size(), 0.0);
  REQUIRE(reference::forward(d, q, k, v, ref.data()));
  double err = reference::relative_l2(reference::real_rows(d, Side::kQuery), d.head_dim, o.data(),
                                      ref.data(), o_stride);
  INFO("relative L2 error " << err << " (bar " << tol << ")");
  CHECK(err <= tol);
  CHECK(reference::rows_are_zero(reference::padded_rows(d, Side::kQuery), d.head_dim, o.data(),
                                 o_stride));
}

}  // namespace

// A graph captured on a (blocking) user stream replays the same kernels: O bitwise equal to a
// direct call's, on two replays. The capture comes first, so that run alone ("[graph]") it also
// covers the first call of a kernel in the process (its one-time shared-memory opt-in). Global
// capture mode on a blocking stream: a capture-unsafe call from the library, or work on the
// legacy stream, would fail the capture.
TEST_CASE("forward: CUDA graph capture on a user stream, replayed twice",
          "[forward][small][graph]") {
  struct Case {
    Causal causal;
    int batch, heads, kv_heads, max_q, max_kv;
    std::vector<int32_t> q_lens, kv_lens;
    bool cut;  // long enough for the split tail (one sequence of 16 tiles of 16 key tiles)
  };
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    for (Case const& k :
         {Case{Causal::kNone, 2, 4, 2, 150, 200, {150, 77}, {200, 131}, false},
          Case{Causal::kBottomRight, 2, 4, 2, 150, 200, {150, 77}, {200, 131}, false},
          Case{Causal::kNone, 1, 1, 1, 2048, 2048, {}, {}, true}}) {
      ProblemSpec s = base_spec(c);
      s.batch = k.batch;
      s.num_heads = k.heads;
      s.num_kv_heads = k.kv_heads;
      s.max_q_len = k.max_q;
      s.max_kv_len = k.max_kv;
      s.q_lens = k.q_lens;
      s.kv_lens = k.kv_lens;
      s.causal = k.causal;
      s.seed = next_seed();
      INFO(s.describe());
      DeviceProblem prob(s);
      Stream stream(cudaStreamDefault);

      // With a workspace: a non-causal call on the Hopper path that may cut its tail also zeroes
      // its split flags, a memset node that every replay runs again (stale flags from the
      // previous replay would let an owner read partial sums before they are written).
      DeviceBuffer workspace(workspace_bytes(prob.params()));
      Graph graph;
      Result r = graph.capture(
          stream.s, [&](cudaStream_t st) { return forward(prob.params(), workspace.get(), st); });
      INFO("forward under capture: " << to_string(r));
      REQUIRE(r);
      CHECK(graph.num_nodes() >= (k.cut && c.path == Path::kHopper ? 2 : 1));
      SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
      INFO("capturing must not run anything: O is still the NaN it was poisoned with");
      CHECK(all_nan(prob.o().download(s.dtype)));

      std::vector<float> direct = run_forward(prob);
      check_o(prob.desc(), prob.q().host.data(), prob.k().host.data(), prob.v().host.data(),
              direct, prob.o().stride, bar(c));

      for (int replay = 0; replay < 2; ++replay) {
        INFO("replay " << replay);
        prob.o().poison(s.dtype);
        graph.launch(stream.s);
        SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
        CHECK(same_bits(prob.o().download(s.dtype), direct));
      }
    }
  }
}

// forward() is asynchronous on the given stream and ordered after the work already queued there:
// Q's real values arrive by a copy queued behind a 50 ms host callback, and O leaves by a copy
// queued after the call; the device copy of Q is NaN until then, so an unordered read shows.
TEST_CASE("forward: ordered after the work already queued on its stream",
          "[forward][small][stream]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 2;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 160;
    s.q_lens = s.kv_lens = {160, 99};
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);
    Tensor& q = prob.q();
    Tensor& o = prob.o();
    PinnedBuffer q_pinned(q.bits.size() * 2);
    PinnedBuffer o_pinned(static_cast<size_t>(o.elements) * 2);
    std::memcpy(q_pinned.get(), q.bits.data(), q_pinned.bytes());
    std::vector<uint16_t> nan_q(q.bits.size(), to_bits(s.dtype, NAN));
    copy_to_device(q.dev.get(), nan_q.data(), nan_q.size() * 2);

    Stream stream;
    auto sleep_50ms = [](void*) { std::this_thread::sleep_for(std::chrono::milliseconds(50)); };
    SIGATTN_TEST_CUDA(cudaLaunchHostFunc(stream.s, sleep_50ms, nullptr));
    SIGATTN_TEST_CUDA(cudaMemcpyAsync(q.dev.get(), q_pinned.get(), q_pinned.bytes(),
                                      cudaMemcpyHostToDevice, stream.s));
    Result r = forward(prob.params(), stream.s);
    SIGATTN_TEST_CUDA(cudaMemcpyAsync(o_pinned.get(), o.dev.get(), o_pinned.bytes(),
                                      cudaMemcpyDeviceToHost, stream.s));
    SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
    INFO("forward: " << to_string(r));
    REQUIRE(r);
    std::vector<float> out(static_cast<size_t>(o.elements));
    auto const* bits = static_cast<uint16_t const*>(o_pinned.get());
    for (size_t i = 0; i < out.size(); ++i) out[i] = from_bits(s.dtype, bits[i]);
    check_o(prob.desc(), q.host.data(), prob.k().host.data(), prob.v().host.data(), out, o.stride,
            bar(c));
  }
}

// SPEC section 3: a zero-size problem (batch, num_heads or max_q_len 0) is a successful no-op:
// nothing launched (a capture records no node), nothing written, and null tensors are fine; an
// invalid call launches nothing either.
TEST_CASE("forward: empty problems and invalid calls launch nothing", "[forward][small][empty]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 2;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 64;
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);  // O is NaN: whatever is written shows
    Stream stream(cudaStreamDefault);

    struct Case {
      char const* name;
      FwdParams p;
      Status expect;
    };
    std::vector<Case> cases;
    FwdParams const base = prob.params();
    FwdParams p = base;
    p.batch = 0;  // real tensors, but no batch entry
    cases.push_back({"batch 0", p, Status::kSuccess});
    p.q = p.k = p.v = nullptr;
    p.o = nullptr;
    p.q_lens = p.kv_lens = nullptr;
    cases.push_back({"batch 0, every pointer null", p, Status::kSuccess});
    p = base;
    p.max_q_len = 0;
    p.q = nullptr;
    p.o = nullptr;
    cases.push_back({"max_q_len 0, Q and O null", p, Status::kSuccess});
    p = base;
    p.max_q_len = p.max_kv_len = 0;
    p.q = p.k = p.v = nullptr;
    p.o = nullptr;
    cases.push_back({"max_q_len and max_kv_len 0, every tensor null", p, Status::kSuccess});
    p = base;
    p.num_heads = 0;
    cases.push_back({"num_heads 0", p, Status::kSuccess});
    p = base;
    p.o = static_cast<uint16_t*>(prob.o().dev.get()) + 1;
    cases.push_back({"misaligned O", p, Status::kErrorMisalignedPointer});
    p = base;
    p.head_dim = 96;
    cases.push_back({"unsupported head dim", p, Status::kErrorNotSupported});
    p = base;
    p.num_heads = 3;
    cases.push_back({"Hq % Hkv != 0", p, Status::kErrorInvalidArgument});
    p = base;
    p.batch = -1;
    cases.push_back({"negative batch", p, Status::kErrorInvalidArgument});

    for (Case const& k : cases) {
      INFO(k.name);
      Graph graph;
      Result r = graph.capture(stream.s, [&](cudaStream_t st) { return forward(k.p, st); });
      CHECK(r.status == k.expect);
      CHECK(r.cuda == cudaSuccess);
      CHECK(graph.num_nodes() == 0);
      r = forward(k.p, stream.s);  // and directly
      CHECK(r.status == k.expect);
      SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
      CHECK(all_nan(prob.o().download(s.dtype)));
      int device = 0;
      SIGATTN_TEST_CUDA(cudaGetDevice(&device));
      CHECK(can_implement(k.p, device).status == k.expect);
    }
  }
}

// No keys at all: max_kv_len 0 with null K and V (what a framework hands over for empty tensors),
// or every kv_len 0. Not an empty problem: O is written, as exact zeros everywhere.
TEST_CASE("forward: no keys gives an all-zero O", "[forward][small][empty]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    for (Causal causal : {Causal::kNone, Causal::kTopLeft, Causal::kBottomRight}) {
      ProblemSpec s = base_spec(c);
      s.batch = 3;
      s.num_heads = 4;
      s.num_kv_heads = 2;
      s.max_q_len = 150;
      s.max_kv_len = 0;
      s.q_lens = {150, 1, 0};
      s.causal = causal;
      s.seed = next_seed();
      INFO(s.describe());
      {
        DeviceProblem prob(s);
        FwdParams p = prob.params();
        p.k = p.v = nullptr;
        Stream stream;
        Result r = forward(p, stream.s);
        INFO("max_kv_len 0, K and V null: " << to_string(r));
        REQUIRE(r);
        SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
        CHECK(all_zero(prob.o().download(s.dtype)));
      }
      s.max_kv_len = 200;  // K and V hold nothing but NaN: no row of them is real
      s.kv_lens = {0, 0, 0};
      s.q_lens = {};
      for (BiasMode mode : {BiasMode::kNegLogKvLen, BiasMode::kScalar}) {
        s.bias_mode = mode;
        s.bias = 3.0f;
        INFO("kv_lens all 0, bias mode " << static_cast<int>(mode));
        DeviceProblem prob(s);
        std::vector<float> o = run_forward(prob);
        CHECK(all_zero(o));
      }
    }
  }
}

// Q, K, V as views of one packed [B, S, Hq + 2 Hkv, D] buffer (token stride (Hq + 2 Hkv) * D, K
// and V at head offsets), with O in a layout of its own ([B, H, S, D], or [B, S, H, D] with gaps).
TEST_CASE("forward: packed QKV and an O of its own stride", "[forward][small][layout]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    struct Heads {
      int32_t q;
      int32_t kv;
    };
    for (Heads heads : {Heads{2, 2}, Heads{4, 2}, Heads{3, 1}}) {
      for (Layout o_layout : {Layout::kBHSD, Layout::kPaddedRows}) {
        int32_t const batch = 2;
        int32_t const seq = 140;
        int32_t const dim = c.head_dim;
        std::vector<int32_t> const lens = {140, 67};
        uint64_t const seed = next_seed();
        INFO(to_string(c.dtype) << " D=" << dim << " path=" << to_string(c.path) << " Hq="
                                << heads.q << " Hkv=" << heads.kv << " O layout="
                                << to_string(o_layout) << " seed=" << seed);
        std::mt19937_64 rng(seed);
        PackedQkv qkv = make_packed_qkv(c.dtype, batch, seq, heads.q, heads.kv, dim, lens, &rng);
        Tensor o = make_tensor(c.dtype, make_strides(o_layout, seq, heads.q, dim), batch, seq,
                               heads.q, dim, {}, nullptr);
        DeviceBuffer d_lens = upload_vector(lens);

        FwdParams p{};
        p.q = qkv.q_dev();
        p.k = qkv.k_dev();
        p.v = qkv.v_dev();
        p.o = o.dev.get();
        p.dtype = c.dtype;
        p.batch = batch;
        p.num_heads = heads.q;
        p.num_kv_heads = heads.kv;
        p.head_dim = dim;
        p.max_q_len = p.max_kv_len = seq;
        p.q_lens = p.kv_lens = static_cast<int32_t const*>(d_lens.get());
        p.q_stride = p.k_stride = p.v_stride = qkv.t.stride;
        p.o_stride = o.stride;
        p.path = c.path;
        Stream stream;
        Result r = forward(p, stream.s);
        INFO("forward: " << to_string(r));
        REQUIRE(r);
        SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
        std::vector<float> out = o.download(c.dtype);
        check_o(reference::describe(p, lens, lens), qkv.q_host(), qkv.k_host(), qkv.v_host(), out,
                o.stride, bar(c));
        // The gaps of the padded O layout are not O's elements: nothing may write them.
        if (o_layout == Layout::kPaddedRows) {
          reference::ProblemDesc d = reference::describe(p);
          std::vector<float> rows_cleared = out;
          for (bool real : {true, false})
            for (reference::Row row : reference::rows(d, Side::kQuery, real))
              for (int32_t e = 0; e < dim; ++e)
                rows_cleared[reference::offset(o.stride, row.b, row.i, row.h) + e] = NAN;
          CHECK(all_nan(rows_cleared));
        }
      }
    }
  }
}

// K and V shared by every sequence of the batch (a broadcast view: batch stride 0). The Hopper
// path's tensor maps cannot express a zero stride: forced, it refuses (kErrorNotSupported, nothing
// written); the automatic choice then runs the portable path. Every path that accepts it must
// match the reference.
TEST_CASE("forward: K and V broadcast over the batch (zero batch stride)",
          "[forward][small][layout]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 3;
    s.num_heads = 4;
    s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 130;
    s.q_lens = {130, 50, 129};
    s.kv_lens = {130, 130, 130};  // every entry reads batch entry 0's keys, all real
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);
    int device = 0;
    SIGATTN_TEST_CUDA(cudaGetDevice(&device));
    for (Path path : {c.path, Path::kAuto}) {
      INFO("path " << to_string(path));
      FwdParams p = prob.params();
      p.k_stride.batch = 0;
      p.v_stride.batch = 0;
      p.path = path;
      prob.o().poison(s.dtype);
      Stream stream;
      Result r = forward(p, stream.s);
      SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
      CHECK(can_implement(p, device).status == r.status);
      if (path == Path::kHopper) {
        CHECK(r.status == Status::kErrorNotSupported);
        CHECK(all_nan(prob.o().download(s.dtype)));
        continue;
      }
      INFO("forward: " << to_string(r));
      REQUIRE(r);
      check_o(reference::describe(p, s.q_lens, s.kv_lens), prob.q().host.data(),
              prob.k().host.data(), prob.v().host.data(), prob.o().download(s.dtype),
              prob.o().stride, bar(c));
    }
  }
}

// The Hopper forward's tile order under a causal mask (kernel/sm90/fwd_scheduler.cuh) is built by
// every CTA on the device; test_scheduler checks the order's definition on the host, this case the
// device builder's corners, in units of the query tile t of the row that serves the call (192 at
// D = 64, 128 at D = 128): 40 batch entries (warp 0's scans take two entries a lane), L levels (the
// level scan takes two a lane too), the longest entries (1 and 3) L - 2 tiles long, so that no
// entry reaches the top two levels, five entries without queries, equal q_lens (ties go by index),
// and kv_len above, equal to and below q_len, and 0. A tile that the order misses keeps the NaN
// that O was poisoned with. The order goes by levels (in blocks of 4) only when 5 L is at least the
// grid (causal_level_block), here one CTA per SM (there are more tiles than SMs), so L is the
// larger of 35 and a fifth of the SM count: 35 with 132 SMs (H100 SXM, H200), 8 full blocks and one
// of 3 levels. (Sessions 17-18 took 66 levels, for a rule of half the SM count.) Short key ranges
// keep the fp64 reference small; most of the host's time goes to the tensors of (L t - 40) x 40 x 2
// query rows.
TEST_CASE("forward: causal tile order, over 32 entries and over 32 levels", "[forward][causal]") {
  int device = 0, sms = 0;
  SIGATTN_TEST_CUDA(cudaGetDevice(&device));
  SIGATTN_TEST_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  int32_t const levels = std::max(35, (sms + 4) / 5);
  bool hopper = false;
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    if (c.path != Path::kHopper) continue;  // the portable forward has no tile order
    hopper = true;
    // The order is built in the query tiles of the row that serves the call (detail::find_config,
    // as the dispatcher looks it up): the general row's, or a row for long calls whose causal
    // threshold the call reaches (at D = 64 192 x 128 from 3072, which 35 levels of the general
    // row's 256 rows reach). The tile sets max_q_len, so the row is looked up until it keeps it.
    auto serving_tile = [&](int32_t tile_q) {
      bool exists = false;
      int const row = detail::find_config(
          detail::ConfigQuery{Direction::kForward, c.head_dim, c.dtype, levels * tile_q - 40,
                              /*causal=*/true, Path::kHopper},
          90, &exists);
      REQUIRE(row >= 0);
      return kKernelConfigs[row].tile.tile_q;
    };
    int32_t t = c.tile.tile_q;
    for (int i = 0; i < 4 && serving_tile(t) != t; ++i) t = serving_tile(t);
    REQUIRE(serving_tile(t) == t);
    ProblemSpec s = base_spec(c);
    s.batch = 40;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = levels * t - 40;
    s.max_kv_len = 700;
    // The grid as launch_sm90_fwd_traits sizes it: min(work tiles, SMs).
    int64_t const grid = std::min<int64_t>(int64_t{levels} * s.batch * s.num_heads, sms);
    REQUIRE(kernel::sm90::causal_level_block(true, levels, static_cast<int>(grid)) > 0);
    int32_t const long_q = (levels - 2) * t;  // the longest entries (1 and 3)
    s.q_lens = {300, long_q - 50, 0,         long_q - 100, 129,        1,   0,   193, 64,  191,
                77,  0,           256,       128,          20 * t + 7, 12,  192, 383, 420, 1,
                129, 37,          0,         511,          90,         350, 255, 64,  140, 3,
                384, 129,         9 * t - 1, 20,           160,        0,   257, 45,  319, 100};
    s.kv_lens = {300, 40,  77,  1,   700, 700, 0,   193, 200, 17,  77,  64,  1,   128,
                 30,  640, 100, 0,   100, 0,   129, 699, 5,   100, 33,  120, 256, 64,
                 500, 3,   64,  130, 64,  20,  161, 300, 1,   45,  319, 600};
    for (Causal causal : {Causal::kTopLeft, Causal::kBottomRight}) {
      s.causal = causal;
      check_against_fp64(s, bar(c));
    }
  }
  if (!hopper) WARN("no Hopper forward row runs here: the causal tile order is not checked");
}

// A CTA of the Hopper forward alternates two Q buffers over its work tiles, stages O in the Q
// buffer that the tile used and stores it from there by TMA, and takes each tile's plan from a
// two-slot ring that its Q producer fills a tile ahead. This needs more work tiles than CTAs:
// about three per CTA here, consecutive ones of a CTA from different (batch, head) pairs (the
// snake), with different lengths, biases and masks, tiles in which one consumer warpgroup has no
// real row, and sequences with no keys (no Q load at all) between them.
TEST_CASE("forward: consecutive work tiles of a CTA", "[forward][small][tiles]") {
  bool hopper = false;
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    if (c.path != Path::kHopper) continue;
    hopper = true;
    int sms = 0;
    SIGATTN_TEST_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    ProblemSpec s = base_spec(c);
    s.batch = 5;
    s.max_q_len = s.max_kv_len = 200;
    s.q_lens = {200, 150, 100, 70, 180};
    s.kv_lens = {200, 190, 60, 0, 130};
    int const q_tiles = (s.max_q_len + c.tile.tile_q - 1) / c.tile.tile_q;
    s.num_kv_heads = (3 * sms + s.batch * q_tiles * 2 - 1) / (s.batch * q_tiles * 2);
    s.num_heads = 2 * s.num_kv_heads;  // GQA: about 3 work tiles per CTA
    INFO("heads " << s.num_heads << ", work tiles " << s.batch * s.num_heads * q_tiles);
    for (Causal causal : {Causal::kNone, Causal::kBottomRight}) {
      s.causal = causal;
      check_against_fp64(s, bar(c));
    }
  }
  if (!hopper) WARN("no Hopper forward row runs here: consecutive work tiles are not checked");
}

// The Hopper forward's split tail (kernel/sm90/fwd_scheduler.cuh): given a workspace, a non-causal
// call cuts the tiles of its last one or two waves along the keys over all SMs (where split_pays),
// and a tile's owner adds the fp32 partial sums of the CTAs before it. Shapes, each cut on a
// 132-SM H200: one long sequence of few tiles (each tile cut over several CTAs, so that an owner
// waits for several writers), a ragged batch with an entry without keys, and a GQA batch of more
// than two waves (the snake, then the tail). The first case alone is also a [small] test below,
// for the sanitizers (racecheck takes minutes over all three).
// Each against the naive fp32 reference, padded rows zero, two runs bitwise equal (the cut is a
// function of the shape), and the same call without a workspace (no split) within the bar too.
TEST_CASE("forward: the split tail of the Hopper path", "[forward][split]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    struct Case {
      int batch, heads, kv_heads, seq;
      std::vector<int32_t> q_lens, kv_lens;
    };
    Case const cases[] = {Case{1, 1, 1, 2048, {}, {}},
                          Case{3, 2, 1, 2048, {2048, 1000, 37}, {1500, 2048, 0}},
                          Case{3, 9, 3, 2048, {}, {}}};
    int sms = 0;
    SIGATTN_TEST_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    for (Case const& k : cases) {
      ProblemSpec s = base_spec(c);
      s.batch = k.batch;
      s.num_heads = k.heads;
      s.num_kv_heads = k.kv_heads;
      s.max_q_len = s.max_kv_len = k.seq;
      s.q_lens = k.q_lens;
      s.kv_lens = k.kv_lens;
      s.seed = next_seed();
      INFO(s.describe());
      DeviceProblem prob(s);
      CHECK((workspace_bytes(prob.params()) > 0) == (c.path == Path::kHopper));
      std::vector<float> split = run_forward(prob);
      check_against_naive(prob, split, c);
      prob.o().poison(s.dtype);
      CHECK(same_bits(run_forward(prob), split));
      prob.o().poison(s.dtype);
      std::vector<float> const plain = run_forward(prob, /*with_workspace=*/false);
      check_against_naive(prob, plain, c);
      // The cut adds a tile's fp32 partial sums in another order than one accumulator does, which
      // shows in some roundings of O: evidence that the split ran (the portable path has none).
      // Whether the tail pays depends on the SM count: the shapes were chosen for 132 (the
      // first case cuts on any device of 32 SMs or more).
      if (c.path == Path::kHopper && (sms == 132 || &k == &cases[0]))
        CHECK_FALSE(same_bits(plain, split));
    }
  }
}

// The split tail's first case above, under the sanitizers: 16 tiles of 16 key tiles at D = 128
// (8 of 32 at D = 64), each cut over several CTAs.
TEST_CASE("forward: the split tail, one long sequence", "[forward][small][split]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = s.num_heads = s.num_kv_heads = 1;
    s.max_q_len = s.max_kv_len = 2048;
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);
    std::vector<float> split = run_forward(prob);
    check_against_naive(prob, split, c);
    prob.o().poison(s.dtype);
    std::vector<float> const plain = run_forward(prob, /*with_workspace=*/false);
    if (c.path == Path::kHopper) CHECK_FALSE(same_bits(plain, split));  // the cut ran
  }
}

// The workspace overload's own contract: a misaligned workspace is refused before any launch, a
// null one is accepted (the call then runs unsplit), and causal or portable calls need none.
TEST_CASE("forward: the workspace argument", "[forward][small][split]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    ProblemSpec s = base_spec(c);
    s.batch = 2;
    s.max_q_len = s.max_kv_len = 130;
    s.q_lens = s.kv_lens = {130, 61};
    s.seed = next_seed();
    INFO(s.describe());
    DeviceProblem prob(s);
    DeviceBuffer workspace(workspace_bytes(prob.params()) + 16);
    Result r = forward(prob.params(), static_cast<char*>(workspace.get()) + 4, nullptr);
    CHECK(r.status == Status::kErrorMisalignedPointer);
    CHECK(all_nan(prob.o().download(s.dtype)));  // nothing ran
    check_forward_against_fp64(s, bar(c), [](DeviceProblem& p) { return run_forward(p, false); });
    FwdParams causal = prob.params();
    causal.causal = Causal::kTopLeft;
    CHECK(workspace_bytes(causal) == 0);
    FwdParams portable = prob.params();
    portable.path = Path::kPortable;
    CHECK(workspace_bytes(portable) == 0);
  }
}

// A row that serves some calls only (registry.hpp: min_max_q_len, min_max_q_len_causal) is
// reached through the dispatcher from its general row's key: its calls against the naive
// reference (lengths full, ragged, mostly padding; with and without a causal mask, each at its own
// threshold). The workspace is sized for the largest row of the key whatever max_q_len is, so that
// one workspace serves every call of a head dim and dtype (at D = 128 the long row's tiles are
// the larger, at D = 64 the general row's).
TEST_CASE("forward: a row for long calls, through the dispatcher", "[forward][long]") {
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    for (KernelConfig const& l : kKernelConfigs) {
      if (l.direction != c.direction || l.path != c.path || l.head_dim != c.head_dim ||
          l.dtype != c.dtype || !serves_some_calls_only(l) || !is_enabled(l))
        continue;
      struct Case {
        int len;
        std::vector<int32_t> lens;
        Causal causal;
      };
      int const len = l.min_max_q_len;
      int const len_causal = l.min_max_q_len_causal;
      std::vector<Case> cases;
      if (len > 0)
        cases = {Case{len, {len, len - 1001}, Causal::kNone},
                 Case{len, {len - 3, 700}, Causal::kNone}, Case{len, {300, 0}, Causal::kNone}};
      if (len_causal > 0)
        cases.push_back(Case{len_causal, {len_causal - 3, 700}, Causal::kTopLeft});
      for (Case const& k : cases) {
        ProblemSpec const s = long_spec(c, k.len, k.lens, k.causal);
        INFO(s.describe());
        DeviceProblem prob(s);
        if (k.causal == Causal::kNone) {
          FwdParams shorter = prob.params();
          shorter.max_q_len = shorter.max_kv_len = 100;
          CHECK(workspace_bytes(prob.params()) == workspace_bytes(shorter));
          CHECK(workspace_bytes(prob.params()) >=
                size_t{4} * kernel::sm90::kMaxSplitCtas * l.tile.tile_q * l.head_dim);
        }
        check_against_naive(prob, run_forward(prob), c);
      }
    }
  }
}

// Helpers shared by the GPU test files (tests/gpu/test_*.cu): seeds, the per-config starting spec
// and bar, streams, graph capture, bitwise comparison, packed [B, S, Hq + 2 Hkv, D] QKV buffers and
// the forward's fp64 check. Everything here calls the public API or the CUDA runtime; nothing
// instantiates a kernel.
#pragma once

#include <catch2/catch.hpp>

#include <sigattn/api.hpp>
#include <sigattn/host/registry.hpp>
#include <sigattn/reference.hpp>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gpu_problem.cuh"

namespace sigattn::test {

/// Base of the seed sequence of one test executable. Each test file that includes this header
/// defines it once, with its own value, so that different files draw different data:
///   `namespace sigattn::test { uint64_t const kSeedBase = 0x...; }`
extern uint64_t const kSeedBase;

/// Seed of the next random problem: kSeedBase plus Catch2's --rng-seed, then one more per call.
/// A failing case prints its seed (ProblemSpec::describe); running the executable again with the
/// same --rng-seed and test selection draws the same data.
inline uint64_t next_seed() {
  static uint64_t seed = kSeedBase + static_cast<uint64_t>(Catch::rngSeed());
  return ++seed;
}

/// The spec every test of registry row `c` starts from: its dtype, head dim and (forced) path.
inline ProblemSpec base_spec(KernelConfig const& c) {
  ProblemSpec s;
  s.dtype = c.dtype;
  s.head_dim = c.head_dim;
  s.path = c.path;
  return s;
}

/// The relative L2 bar of registry row `c` (SPEC section 2).
inline double bar(KernelConfig const& c) { return rel_l2_tolerance(c.dtype); }

/// True when both vectors hold the same bits (NaN included).
inline bool same_bits(std::vector<float> const& a, std::vector<float> const& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// An owned CUDA stream, never the legacy default one. Non-blocking by default; a blocking one
/// (cudaStreamDefault) synchronises with the legacy stream, which makes any legacy-stream work
/// during a capture on it an error.
struct Stream {
  cudaStream_t s = nullptr;
  explicit Stream(unsigned flags = cudaStreamNonBlocking) {
    SIGATTN_TEST_CUDA(cudaStreamCreateWithFlags(&s, flags));
  }
  ~Stream() { cudaStreamDestroy(s); }
  Stream(Stream const&) = delete;
  Stream& operator=(Stream const&) = delete;
};

/// Owning page-locked host allocation (for copies that are really asynchronous).
class PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t bytes) : bytes_(bytes) {
    SIGATTN_TEST_CUDA(cudaMallocHost(&ptr_, bytes));
  }
  ~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  PinnedBuffer(PinnedBuffer const&) = delete;
  PinnedBuffer& operator=(PinnedBuffer const&) = delete;
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

/// A captured CUDA graph and its executable form.
class Graph {
 public:
  Graph() = default;
  ~Graph() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  Graph(Graph const&) = delete;
  Graph& operator=(Graph const&) = delete;

  /// Captures what `enqueue(stream)` puts on `stream` and returns the Result it returns. The
  /// capture mode is global: a capture-unsafe call (a synchronous copy or allocation, a stream or
  /// device synchronisation) from the library in between invalidates the capture, and ending it
  /// then throws. `enqueue` must not throw.
  template <class Enqueue>
  Result capture(cudaStream_t stream, Enqueue&& enqueue) {
    SIGATTN_TEST_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    Result r = enqueue(stream);
    cudaGraph_t graph = nullptr;
    cudaError_t e = cudaStreamEndCapture(stream, &graph);
    graph_ = graph;
    SIGATTN_TEST_CUDA(e);
    return r;
  }

  /// Nodes in the captured graph (kernels, memsets, ...).
  size_t num_nodes() const {
    size_t n = 0;
    SIGATTN_TEST_CUDA(cudaGraphGetNodes(graph_, nullptr, &n));
    return n;
  }

  /// Launches the graph on `stream` (instantiated on first use); asynchronous.
  void launch(cudaStream_t stream) {
    if (!exec_) SIGATTN_TEST_CUDA(cudaGraphInstantiate(&exec_, graph_, 0));
    SIGATTN_TEST_CUDA(cudaGraphLaunch(exec_, stream));
  }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

/// Q, K and V as views of one packed [B, S, Hq + 2 Hkv, D] buffer, as a fused QKV projection
/// writes it ([B, S, 3, H, D] when Hq == Hkv): the three share the batch and token strides (token
/// stride (Hq + 2 Hkv) * D), K starts Hq * D elements in and V (Hq + Hkv) * D. Real tokens
/// (token < len) of each part hold N(0,1) values rounded to the element type, everything else NaN.
/// Also serves for the packed gradient dQKV (then poisoned with NaN throughout).
struct PackedQkv {
  Tensor t;  ///< the whole packed buffer; t.stride is the shared stride of Q, K and V
  int64_t k_offset = 0;
  int64_t v_offset = 0;

  void const* q_dev() const { return t.dev.get(); }
  void const* k_dev() const { return static_cast<uint16_t const*>(t.dev.get()) + k_offset; }
  void const* v_dev() const { return static_cast<uint16_t const*>(t.dev.get()) + v_offset; }
  void* q_dev() { return t.dev.get(); }
  void* k_dev() { return static_cast<uint16_t*>(t.dev.get()) + k_offset; }
  void* v_dev() { return static_cast<uint16_t*>(t.dev.get()) + v_offset; }
  float const* q_host() const { return t.host.data(); }
  float const* k_host() const { return t.host.data() + k_offset; }
  float const* v_host() const { return t.host.data() + v_offset; }
};

/// A packed buffer for `batch` sequences of `seq` tokens. With `rng`, the real tokens of each part
/// (lens empty: all) get random values; without, the whole buffer is NaN (a poisoned output).
inline PackedQkv make_packed_qkv(DType dtype, int32_t batch, int32_t seq, int32_t num_heads,
                                 int32_t num_kv_heads, int32_t head_dim,
                                 std::vector<int32_t> const& lens, std::mt19937_64* rng) {
  PackedQkv p;
  int64_t const heads = int64_t{num_heads} + 2 * int64_t{num_kv_heads};
  p.t.stride = reference::bshd_strides(seq, heads, head_dim);
  p.t.elements = reference::required_elements(p.t.stride, batch, seq, heads, head_dim);
  p.k_offset = int64_t{num_heads} * head_dim;
  p.v_offset = int64_t{num_heads + num_kv_heads} * head_dim;
  p.t.dev = DeviceBuffer(static_cast<size_t>(p.t.elements) * 2);
  p.t.bits.assign(static_cast<size_t>(p.t.elements), to_bits(dtype, NAN));
  if (rng != nullptr) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    struct Part {
      int64_t offset;
      int32_t heads;
    };
    for (Part part : {Part{0, num_heads}, Part{p.k_offset, num_kv_heads},
                      Part{p.v_offset, num_kv_heads}})
      for (int32_t b = 0; b < batch; ++b)
        for (int32_t i = 0; i < clamped(lens, b, seq); ++i)
          for (int32_t h = 0; h < part.heads; ++h) {
            int64_t base = part.offset + reference::offset(p.t.stride, b, i, h);
            for (int32_t c = 0; c < head_dim; ++c)
              p.t.bits[base + c] = to_bits(dtype, normal(*rng));
          }
  }
  p.t.host.resize(p.t.bits.size());
  for (size_t i = 0; i < p.t.bits.size(); ++i) p.t.host[i] = from_bits(dtype, p.t.bits[i]);
  p.t.upload();
  return p;
}

/// A standalone [B, S, H, D] tensor with strides `stride`: random real rows (with `rng`, lens
/// empty: all) and NaN elsewhere, or NaN throughout (without).
inline Tensor make_tensor(DType dtype, Strides stride, int32_t batch, int32_t seq, int32_t heads,
                          int32_t head_dim, std::vector<int32_t> const& lens,
                          std::mt19937_64* rng) {
  Tensor t;
  t.stride = stride;
  t.elements = reference::required_elements(stride, batch, seq, heads, head_dim);
  t.dev = DeviceBuffer(static_cast<size_t>(t.elements) * 2);
  t.bits.assign(static_cast<size_t>(t.elements), to_bits(dtype, NAN));
  if (rng != nullptr) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int32_t b = 0; b < batch; ++b)
      for (int32_t i = 0; i < clamped(lens, b, seq); ++i)
        for (int32_t h = 0; h < heads; ++h) {
          int64_t base = reference::offset(stride, b, i, h);
          for (int32_t c = 0; c < head_dim; ++c) t.bits[base + c] = to_bits(dtype, normal(*rng));
        }
  }
  t.host.resize(t.bits.size());
  for (size_t i = 0; i < t.bits.size(); ++i) t.host[i] = from_bits(dtype, t.bits[i]);
  t.upload();
  return t;
}

/// True when every element of `x` is +0 or -0 (an all-zero output, padding included).
inline bool all_zero(std::vector<float> const& x) {
  for (float f : x)
    if (f != 0.0f) return false;  // NaN compares unequal too
  return true;
}

/// True when every element of `x` is NaN (an output nobody wrote after poisoning).
inline bool all_nan(std::vector<float> const& x) {
  for (float f : x)
    if (!std::isnan(f)) return false;
  return true;
}

/// The forward of `spec` (computed by `run`, which returns O as floats, the whole buffer) against
/// the fp64 reference: relative L2 over real rows within `tol`, padded rows of O exactly zero
/// (they were NaN before the call). The seed is drawn here and printed on failure.
template <class RunForward>
void check_forward_against_fp64(ProblemSpec spec, double tol, RunForward&& run) {
  spec.seed = next_seed();
  INFO(spec.describe());
  DeviceProblem prob(spec);
  std::vector<float> o = run(prob);
  reference::ProblemDesc d = prob.desc();
  std::vector<double> ref(o.size(), 0.0);
  REQUIRE(reference::forward(d, prob.q().host.data(), prob.k().host.data(), prob.v().host.data(),
                             ref.data()));
  auto real = reference::real_rows(d, reference::Side::kQuery);
  auto padded = reference::padded_rows(d, reference::Side::kQuery);
  double err = reference::relative_l2(real, d.head_dim, o.data(), ref.data(), prob.o().stride);
  INFO("relative L2 error " << err << " (bar " << tol << ")");
  CHECK(err <= tol);
  CHECK(reference::rows_are_zero(padded, d.head_dim, o.data(), prob.o().stride));
}

}  // namespace sigattn::test

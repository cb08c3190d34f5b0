// Test problems on the device: random N(0,1) inputs rounded to the element type in real rows, NaN
// in every padded row and in every gap that a stride skips, outputs poisoned with NaN before each
// call, plus the host copies the references need.
#pragma once

#include <sigattn/api.hpp>
#include <sigattn/host/registry.hpp>
#include <sigattn/reference.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tolerances.hpp"

namespace sigattn::test {

/// Throws (inside a test) when a CUDA call fails, so the failure names the call.
#define SIGATTN_TEST_CUDA(expr)                                                        \
  do {                                                                                 \
    cudaError_t sigattn_test_err_ = (expr);                                            \
    if (sigattn_test_err_ != cudaSuccess)                                              \
      throw std::runtime_error(std::string(#expr) + ": " +                             \
                               cudaGetErrorName(sigattn_test_err_));                   \
  } while (0)

/// Owning device allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) SIGATTN_TEST_CUDA(cudaMalloc(&ptr_, bytes));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  DeviceBuffer(DeviceBuffer const&) = delete;
  DeviceBuffer& operator=(DeviceBuffer const&) = delete;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

/// Copies host memory to the device and waits until the bytes are there. A plain cudaMemcpy from
/// pageable memory may return once the data is staged, with the DMA to the device still in flight
/// on the legacy stream, which the tests' non-blocking streams do not wait for: a NaN poison
/// copied that way has landed on padded rows after a kernel on such a stream had written their
/// zeros (test_backward's packed-layout case, seen once under racecheck).
inline void copy_to_device(void* dst, void const* src, size_t bytes) {
  SIGATTN_TEST_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  SIGATTN_TEST_CUDA(cudaDeviceSynchronize());
}

/// Copies a host vector to a new device array (a null DeviceBuffer for an empty vector).
template <class T>
DeviceBuffer upload_vector(std::vector<T> const& v) {
  DeviceBuffer d(v.size() * sizeof(T));
  if (!v.empty()) copy_to_device(d.get(), v.data(), v.size() * sizeof(T));
  return d;
}

/// How the [B, S, H, D] tensors are laid out in memory.
enum class Layout {
  kBSHD,        ///< contiguous [B, S, H, D]
  kBHSD,        ///< contiguous [B, H, S, D]
  kPaddedRows,  ///< [B, S, H, D] with 8 unused elements after every head row and a batch gap
};

inline char const* to_string(Layout l) {
  return l == Layout::kBSHD ? "BSHD" : l == Layout::kBHSD ? "BHSD" : "padded";
}

inline Strides make_strides(Layout l, int64_t seq, int64_t heads, int64_t dim) {
  switch (l) {
    case Layout::kBHSD:
      return {heads * seq * dim, dim, seq * dim};
    case Layout::kPaddedRows:
      return {seq * heads * (dim + 8) + 64, heads * (dim + 8), dim + 8};
    default:
      return {seq * heads * dim, heads * dim, dim};
  }
}

/// Everything that defines one test problem.
struct ProblemSpec {
  DType dtype = DType::kBF16;
  int32_t batch = 1;
  int32_t num_heads = 1;
  int32_t num_kv_heads = 1;
  int32_t head_dim = 64;
  int32_t max_q_len = 1;
  int32_t max_kv_len = 1;
  std::vector<int32_t> q_lens;   ///< empty = null array (all full)
  std::vector<int32_t> kv_lens;  ///< empty = null array (all full)
  Layout layout = Layout::kBSHD;
  Causal causal = Causal::kNone;
  BiasMode bias_mode = BiasMode::kNegLogKvLen;
  float bias = 0.0f;
  std::vector<float> bias_per_batch;
  SigmoidMode sigmoid = SigmoidMode::kAccurate;
  Path path = Path::kAuto;
  float scale = 0.0f;
  uint64_t seed = 1;
  bool backward = false;  ///< also allocate dO, dQ, dK, dV

  std::string describe() const {
    std::ostringstream s;
    s << sigattn::to_string(dtype) << " D=" << head_dim << " B=" << batch << " Hq=" << num_heads
      << " Hkv=" << num_kv_heads << " Sq=" << max_q_len << " Skv=" << max_kv_len
      << " layout=" << to_string(layout) << " causal=" << static_cast<int>(causal)
      << " bias_mode=" << static_cast<int>(bias_mode)
      << " sigmoid=" << static_cast<int>(sigmoid) << " path=" << sigattn::to_string(path)
      << " seed=" << seed << " q_lens={";
    for (int32_t l : q_lens) s << l << ",";
    s << "} kv_lens={";
    for (int32_t l : kv_lens) s << l << ",";
    s << "}";
    return s.str();
  }
};

/// One device tensor of 16-bit elements plus its rounded host copy (as float, NaN in padding).
struct Tensor {
  DeviceBuffer dev;
  std::vector<float> host;
  std::vector<uint16_t> bits;
  Strides stride;
  int64_t elements = 0;

  void upload() { copy_to_device(dev.get(), bits.data(), bits.size() * 2); }
  /// The device contents, converted to float.
  std::vector<float> download(DType dtype) const {
    std::vector<uint16_t> out(static_cast<size_t>(elements));
    SIGATTN_TEST_CUDA(cudaMemcpy(out.data(), dev.get(), out.size() * 2, cudaMemcpyDeviceToHost));
    std::vector<float> f(out.size());
    for (size_t i = 0; i < out.size(); ++i) f[i] = from_bits(dtype, out[i]);
    return f;
  }
  /// Fills the whole device buffer with NaN (poison before a call writes it).
  void poison(DType dtype) {
    std::vector<uint16_t> nan(static_cast<size_t>(elements), to_bits(dtype, NAN));
    copy_to_device(dev.get(), nan.data(), nan.size() * 2);
  }
};

inline int32_t clamped(std::vector<int32_t> const& lens, int b, int32_t max_len) {
  if (lens.empty()) return max_len;
  return lens[b] < 0 ? 0 : (lens[b] > max_len ? max_len : lens[b]);
}

/// A problem on the device, ready for forward()/backward(), with its host description.
class DeviceProblem {
 public:
  explicit DeviceProblem(ProblemSpec spec) : spec_(std::move(spec)) {
    ProblemSpec const& s = spec_;
    std::mt19937_64 rng(s.seed);
    make_input(q_, s.max_q_len, s.num_heads, s.q_lens, rng);
    make_input(k_, s.max_kv_len, s.num_kv_heads, s.kv_lens, rng);
    make_input(v_, s.max_kv_len, s.num_kv_heads, s.kv_lens, rng);
    make_output(o_, s.max_q_len, s.num_heads);
    if (s.backward) {
      make_input(dout_, s.max_q_len, s.num_heads, s.q_lens, rng);
      make_output(dq_, s.max_q_len, s.num_heads);
      make_output(dk_, s.max_kv_len, s.num_kv_heads);
      make_output(dv_, s.max_kv_len, s.num_kv_heads);
    }
    if (!s.q_lens.empty()) q_lens_ = upload_vector(s.q_lens);
    if (!s.kv_lens.empty()) kv_lens_ = upload_vector(s.kv_lens);
    if (!s.bias_per_batch.empty()) bias_ = upload_vector(s.bias_per_batch);

    FwdParams& p = params_;
    p.q = q_.dev.get();
    p.k = k_.dev.get();
    p.v = v_.dev.get();
    p.o = o_.dev.get();
    p.dtype = s.dtype;
    p.batch = s.batch;
    p.num_heads = s.num_heads;
    p.num_kv_heads = s.num_kv_heads;
    p.head_dim = s.head_dim;
    p.max_q_len = s.max_q_len;
    p.max_kv_len = s.max_kv_len;
    p.q_lens = static_cast<int32_t const*>(q_lens_.get());
    p.kv_lens = static_cast<int32_t const*>(kv_lens_.get());
    p.q_stride = q_.stride;
    p.k_stride = k_.stride;
    p.v_stride = v_.stride;
    p.o_stride = o_.stride;
    p.scale = s.scale;
    p.bias_mode = s.bias_mode;
    p.bias = s.bias;
    p.bias_per_batch = static_cast<float const*>(bias_.get());
    p.causal = s.causal;
    p.sigmoid = s.sigmoid;
    p.path = s.path;
    if (s.backward) {
      bwd_.fwd = p;
      bwd_.dout = dout_.dev.get();
      bwd_.dq = dq_.dev.get();
      bwd_.dk = dk_.dev.get();
      bwd_.dv = dv_.dev.get();
      bwd_.dout_stride = dout_.stride;
      bwd_.dq_stride = dq_.stride;
      bwd_.dk_stride = dk_.stride;
      bwd_.dv_stride = dv_.stride;
    }
  }

  ProblemSpec const& spec() const { return spec_; }
  FwdParams const& params() const { return params_; }
  BwdParams& bwd_params() { return bwd_; }
  Tensor& q() { return q_; }
  Tensor& k() { return k_; }
  Tensor& v() { return v_; }
  Tensor& o() { return o_; }
  Tensor& dout() { return dout_; }
  Tensor& dq() { return dq_; }
  Tensor& dk() { return dk_; }
  Tensor& dv() { return dv_; }

  /// The host description for the fp64 reference.
  reference::ProblemDesc desc() const {
    if (spec_.backward)
      return reference::describe(bwd_, spec_.q_lens, spec_.kv_lens, spec_.bias_per_batch);
    return reference::describe(params_, spec_.q_lens, spec_.kv_lens, spec_.bias_per_batch);
  }

 private:
  Strides strides(int32_t seq, int32_t heads) const {
    return make_strides(spec_.layout, seq, heads, spec_.head_dim);
  }

  void allocate(Tensor& t, int32_t seq, int32_t heads) {
    t.stride = strides(seq, heads);
    t.elements = reference::required_elements(t.stride, spec_.batch, seq, heads, spec_.head_dim);
    // Keep at least one element so every pointer is non-null, as a framework would hand over.
    if (t.elements == 0) t.elements = 8;
    t.dev = DeviceBuffer(static_cast<size_t>(t.elements) * 2);
  }

  void make_input(Tensor& t, int32_t seq, int32_t heads, std::vector<int32_t> const& lens,
                  std::mt19937_64& rng) {
    allocate(t, seq, heads);
    DType const dt = spec_.dtype;
    t.bits.assign(static_cast<size_t>(t.elements), to_bits(dt, NAN));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int32_t b = 0; b < spec_.batch; ++b)
      for (int32_t i = 0; i < clamped(lens, b, seq); ++i)
        for (int32_t h = 0; h < heads; ++h) {
          int64_t base = reference::offset(t.stride, b, i, h);
          for (int32_t c = 0; c < spec_.head_dim; ++c) t.bits[base + c] = to_bits(dt, normal(rng));
        }
    t.host.resize(t.bits.size());
    for (size_t i = 0; i < t.bits.size(); ++i) t.host[i] = from_bits(dt, t.bits[i]);
    t.upload();
  }

  void make_output(Tensor& t, int32_t seq, int32_t heads) {
    allocate(t, seq, heads);
    t.poison(spec_.dtype);
  }

  ProblemSpec spec_;
  Tensor q_, k_, v_, o_, dout_, dq_, dk_, dv_;
  DeviceBuffer q_lens_, kv_lens_, bias_;
  FwdParams params_{};
  BwdParams bwd_{};
};

/// Compute capability (major * 10 + minor) of the current device.
inline int current_device_cc() {
  int device = 0;
  int major = 0;
  int minor = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  return major * 10 + minor;
}

/// The registry rows of one direction that the current device runs (for the test matrix), but for
/// the rows that serve long calls only (serves_some_calls_only): a test's spec names a head dim,
/// dtype and path, not a row, so at short lengths such a row would rerun its general row's cases.
/// They are reached by the dispatcher from the general row's long cases (test_forward's "[long]"),
/// and launched directly at short lengths in test_fwd_shapes.
inline std::vector<KernelConfig> runnable_configs(Direction dir) {
  int const cc = current_device_cc();
  std::vector<KernelConfig> out;
  for (KernelConfig const& c : kKernelConfigs) {
    if (c.direction != dir || !is_enabled(c) || serves_some_calls_only(c)) continue;
    if (runs_on(c, cc)) out.push_back(c);
  }
  return out;
}

}  // namespace sigattn::test

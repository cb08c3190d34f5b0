// sigattn_bench: error checks, device buffers, random inputs, lengths, FLOP counts and the timer.
//
// Part of the benchmark program only (bench/sigattn_bench.cu is its one translation unit); nothing
// here is library code, so failing loudly and exiting is fine.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_options.hpp"
#include "gpu_clock.hpp"
#include "report.hpp"

#define SIGATTN_BENCH_CHECK_CUDA(call)                                                          \
  do {                                                                                          \
    cudaError_t sigattn_bench_err_ = (call);                                                    \
    if (sigattn_bench_err_ != cudaSuccess)                                                      \
      ::sigattn_bench::fail(__FILE__, __LINE__, #call, cudaGetErrorString(sigattn_bench_err_)); \
  } while (0)

#define SIGATTN_BENCH_CHECK_CUBLAS(call)                                                          \
  do {                                                                                            \
    cublasStatus_t sigattn_bench_st_ = (call);                                                    \
    if (sigattn_bench_st_ != CUBLAS_STATUS_SUCCESS)                                               \
      ::sigattn_bench::fail(__FILE__, __LINE__, #call, cublasGetStatusString(sigattn_bench_st_)); \
  } while (0)

namespace sigattn_bench {

/// Prints where a CUDA or cuBLAS call failed and exits with status 1.
[[noreturn]] inline void fail(char const* file, int line, char const* what, char const* why) {
  std::fprintf(stderr, "sigattn_bench: %s:%d: %s failed: %s\n", file, line, what, why);
  std::exit(1);
}

/// Head room left free on the device when deciding whether a large buffer fits.
constexpr size_t kMemoryMarginBytes = size_t{256} << 20;

/// An owning device allocation. try_allocate() reports "does not fit" instead of failing, so that
/// a benchmark row can say OOM and the sweep can go on.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer const&) = delete;
  DeviceBuffer& operator=(DeviceBuffer const&) = delete;
  ~DeviceBuffer() { reset(); }

  /// False when `bytes` (plus a safety margin) exceeds the free device memory or cudaMalloc runs
  /// out of memory; any other CUDA error is fatal.
  bool try_allocate(size_t bytes) {
    reset();
    if (bytes == 0) return true;
    size_t free_bytes = 0;
    size_t total_bytes = 0;
    SIGATTN_BENCH_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (bytes + kMemoryMarginBytes > free_bytes) return false;
    cudaError_t err = cudaMalloc(&ptr_, bytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the (non-sticky) allocation error
      ptr_ = nullptr;
      return false;
    }
    SIGATTN_BENCH_CHECK_CUDA(err);
    bytes_ = bytes;
    return true;
  }

  /// As try_allocate(), but running out of memory is fatal too (for the small buffers).
  void allocate(size_t bytes) {
    if (!try_allocate(bytes)) {
      std::fprintf(stderr, "sigattn_bench: out of device memory allocating %zu bytes\n", bytes);
      std::exit(1);
    }
  }

  void reset() {
    if (ptr_ != nullptr) SIGATTN_BENCH_CHECK_CUDA(cudaFree(ptr_));
    ptr_ = nullptr;
    bytes_ = 0;
  }

  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Element conversions shared by the generator, the baseline kernels and the comparison.

__host__ __device__ inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__host__ __device__ inline float to_float(__half x) { return __half2float(x); }
template <class Element>
__host__ __device__ inline Element from_float(float x);
template <>
__host__ __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}
template <>
__host__ __device__ inline __half from_float<__half>(float x) {
  return __float2half(x);
}

/// splitmix64: a good 64-bit mix of a counter; used on the host (lengths) and the device (inputs).
__host__ __device__ inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Fills out[0, n) with N(0, 1) values: a counter-based hash per element, then Box-Muller.
template <class Element>
__global__ void fill_normal_kernel(Element* out, int64_t n, uint64_t seed) {
  int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    uint64_t h = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(i)));
    // Two 24-bit uniforms; u1 in (0, 1] so that log(u1) is finite.
    float u1 = (static_cast<float>(h >> 40) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = static_cast<float>((h >> 8) & 0xFFFFFF) * (1.0f / 16777216.0f);
    float z = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    out[i] = from_float<Element>(z);
  }
}

template <class Element>
void fill_normal(void* out, int64_t n, uint64_t seed, cudaStream_t stream) {
  if (n == 0) return;
  int64_t blocks = std::min<int64_t>((n + 255) / 256, 4096);
  fill_normal_kernel<Element>
      <<<static_cast<unsigned>(blocks), 256, 0, stream>>>(static_cast<Element*>(out), n, seed);
  SIGATTN_BENCH_CHECK_CUDA(cudaGetLastError());
}

/// Accumulates sum (a - b)^2 and sum b^2 over n elements into sums[0], sums[1].
template <class Element>
__global__ void diff_norms_kernel(Element const* a, Element const* b, int64_t n, double* sums) {
  double diff2 = 0.0;
  double ref2 = 0.0;
  int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    double x = to_float(a[i]);
    double y = to_float(b[i]);
    diff2 += (x - y) * (x - y);
    ref2 += y * y;
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    diff2 += __shfl_down_sync(0xFFFFFFFFu, diff2, offset);
    ref2 += __shfl_down_sync(0xFFFFFFFFu, ref2, offset);
  }
  if (threadIdx.x % 32 == 0) {
    atomicAdd(&sums[0], diff2);
    atomicAdd(&sums[1], ref2);
  }
}

/// Relative L2 difference ||a - b|| / ||b|| of two device arrays of n elements (synchronises).
template <class Element>
double relative_l2_diff(void const* a, void const* b, int64_t n, double* scratch,
                        cudaStream_t stream) {
  SIGATTN_BENCH_CHECK_CUDA(cudaMemsetAsync(scratch, 0, 2 * sizeof(double), stream));
  int64_t blocks = std::min<int64_t>((n + 255) / 256, 2048);
  diff_norms_kernel<Element><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(
      static_cast<Element const*>(a), static_cast<Element const*>(b), n, scratch);
  SIGATTN_BENCH_CHECK_CUDA(cudaGetLastError());
  double sums[2] = {0.0, 0.0};
  SIGATTN_BENCH_CHECK_CUDA(
      cudaMemcpyAsync(sums, scratch, sizeof(sums), cudaMemcpyDeviceToHost, stream));
  SIGATTN_BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));
  return sums[1] > 0.0 ? std::sqrt(sums[0] / sums[1]) : std::sqrt(sums[0]);
}

// ---------------------------------------------------------------------------------------------
// Lengths and FLOP counts.

/// dense: every length is S. uniform: each length drawn uniformly from [S/4, S] with a fixed
/// seed (the same lengths for a given (S, B) on every run and machine). pad25: every length is
/// 0.75 * S rounded to a multiple of 8.
inline std::vector<int32_t> make_lengths(Ragged ragged, int32_t batch, int32_t max_len) {
  std::vector<int32_t> lens(static_cast<size_t>(batch), max_len);
  if (ragged == Ragged::kUniform) {
    int32_t lo = max_len / 4;
    uint64_t span = static_cast<uint64_t>(max_len - lo + 1);
    uint64_t state = 0x5167A77E00000000ull ^ static_cast<uint64_t>(max_len);
    for (int32_t& len : lens) {
      state = splitmix64(state);
      len = lo + static_cast<int32_t>(state % span);
    }
  } else if (ragged == Ragged::kPad25) {
    int32_t len = (3 * max_len / 4 + 4) / 8 * 8;
    std::fill(lens.begin(), lens.end(), std::min(len, max_len));
  }
  return lens;
}

/// Unmasked (query, key) pairs of one sequence. Non-causal: q_len * kv_len. Causal (top-left,
/// key j <= query i): the exact count sum_{i < q_len} min(i + 1, kv_len), which is L(L+1)/2 when
/// q_len == kv_len == L, not the conventional L^2/2 (the two differ by a fraction 1/L).
inline double score_pairs(int64_t q_len, int64_t kv_len, bool causal) {
  if (!causal) return static_cast<double>(q_len) * static_cast<double>(kv_len);
  int64_t diag = std::min(q_len, kv_len);  // rows i < diag see i + 1 keys, later rows all kv_len
  return static_cast<double>(diag) * static_cast<double>(diag + 1) / 2.0 +
         static_cast<double>(q_len - diag) * static_cast<double>(kv_len);
}

/// Forward FLOP (SPEC section 4): 4 * D * Hq per unmasked score (two products of 2 * D each).
/// The backward counts 2.5 times the forward.
inline double forward_flop(std::vector<int32_t> const& lens, int32_t num_heads, int32_t head_dim,
                           bool causal) {
  double pairs = 0.0;
  for (int32_t len : lens) pairs += score_pairs(len, len, causal);
  return 4.0 * head_dim * num_heads * pairs;
}
constexpr double kBackwardFlopFactor = 2.5;

// ---------------------------------------------------------------------------------------------
// Timing.

/// Times an operation with CUDA events on one stream: after `cooldown_ms` of an idle GPU (when
/// given), `warmup` untimed runs, then more untimed runs until about `warmup_ms` of GPU time has
/// passed, then `iters` timed ones, all enqueued back to back. Before each run after the first
/// `warmup` (outside the events) a buffer of twice the L2 size is overwritten, so that no timed run
/// finds its inputs in L2 from the previous one and the time-based warm-up draws the power the
/// timed runs will. The time-based warm-up brings each row to its own steady clock under the
/// board's power limit, whatever ran before it. With a GpuClock, the SM clock and board power are
/// read about every 0.3 ms (a 0.25 ms pause and the reading) from the first timed run's start to
/// the last one's end (the flushes between them included).
class Timer {
 public:
  Timer(cudaStream_t stream, size_t l2_bytes, GpuClock const* clock = nullptr)
      : stream_(stream), clock_(clock) {
    flush_.allocate(std::max<size_t>(2 * l2_bytes, size_t{1} << 20));
  }

  template <class Op>
  Timing run(Op&& op, int warmup, int iters, double warmup_ms = 0.0, double cooldown_ms = 0.0) {
    if (iters < 1) fail(__FILE__, __LINE__, "Timer::run", "needs at least one timed run");
    std::vector<cudaEvent_t> events(2 * static_cast<size_t>(iters));
    for (cudaEvent_t& e : events) SIGATTN_BENCH_CHECK_CUDA(cudaEventCreate(&e));
    Timing t;
    if (cooldown_ms > 0.0) {  // the GPU idle for a while: the row starts from the idle clock
      SIGATTN_BENCH_CHECK_CUDA(cudaStreamSynchronize(stream_));
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(cooldown_ms));
    }
    for (int i = 0; i < warmup; ++i) op();
    t.warmup_runs = warmup;
    if (warmup_ms > 0.0) {
      // One flushed run, the flush included, timed alone says how many fill warmup_ms (at most
      // 100,000).
      SIGATTN_BENCH_CHECK_CUDA(cudaEventRecord(events[0], stream_));
      flush(0);
      op();
      SIGATTN_BENCH_CHECK_CUDA(cudaEventRecord(events[1], stream_));
      SIGATTN_BENCH_CHECK_CUDA(cudaEventSynchronize(events[1]));
      float one = 0.0f;
      SIGATTN_BENCH_CHECK_CUDA(cudaEventElapsedTime(&one, events[0], events[1]));
      int const more =
          static_cast<int>(std::min(std::ceil(warmup_ms / std::max(double{one}, 1e-3)) - 1.0, 1e5));
      for (int i = 0; i < more; ++i) {
        flush(i);
        op();
      }
      t.warmup_runs += 1 + std::max(more, 0);
    }
    for (int i = 0; i < iters; ++i) {
      flush(i);
      SIGATTN_BENCH_CHECK_CUDA(cudaEventRecord(events[2 * i], stream_));
      op();
      SIGATTN_BENCH_CHECK_CUDA(cudaEventRecord(events[2 * i + 1], stream_));
    }
    sample_clock(events.front(), events.back(), t);
    SIGATTN_BENCH_CHECK_CUDA(cudaStreamSynchronize(stream_));
    std::vector<double> ms(static_cast<size_t>(iters));
    for (int i = 0; i < iters; ++i) {
      float e = 0.0f;
      SIGATTN_BENCH_CHECK_CUDA(cudaEventElapsedTime(&e, events[2 * i], events[2 * i + 1]));
      ms[i] = e;
    }
    for (cudaEvent_t e : events) SIGATTN_BENCH_CHECK_CUDA(cudaEventDestroy(e));
    std::sort(ms.begin(), ms.end());
    size_t n = ms.size();
    t.median_ms = n % 2 == 1 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
    t.min_ms = ms.front();
    t.max_ms = ms.back();
    return t;
  }

 private:
  void flush(int i) {
    SIGATTN_BENCH_CHECK_CUDA(cudaMemsetAsync(flush_.get(), i & 0xFF, flush_.bytes(), stream_));
  }

  /// Waits for `first` (the warm-up still runs until then), then reads the clock, pausing 0.25 ms
  /// between readings, until `last` has completed.
  void sample_clock(cudaEvent_t first, cudaEvent_t last, Timing& t) const {
    if (clock_ == nullptr || !clock_->available()) return;
    auto pause = [] { std::this_thread::sleep_for(std::chrono::microseconds(250)); };
    while (cudaEventQuery(first) == cudaErrorNotReady) pause();
    double mhz = 0.0, mw = 0.0;
    int power_samples = 0;
    while (cudaEventQuery(last) == cudaErrorNotReady) {
      ClockSample s;
      if (clock_->sample(s)) {
        ++t.clock_samples;
        mhz += s.sm_mhz;
        if (s.power_mw > 0) {
          ++power_samples;
          mw += s.power_mw;
        }
        t.clock_reasons |= s.reasons;
      }
      pause();
    }
    if (t.clock_samples > 0) t.sm_mhz = mhz / t.clock_samples;
    if (power_samples > 0) t.power_w = mw / power_samples / 1000.0;
  }

  cudaStream_t stream_;
  GpuClock const* clock_;
  DeviceBuffer flush_;
};

}  // namespace sigattn_bench

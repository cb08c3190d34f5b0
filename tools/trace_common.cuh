// What tools/fwd_trace.cu and tools/bwd_trace.cu share: error checks, the inputs' values, the
// padded batches' lengths, the outputs' checksum, the median time of a launch and the trace file
// (a header of six int32: D, S, traced CTAs, warpgroup slots per CTA, events per slot, consumers
// per CTA; the median time in ms as a float; then the (SM clock, event | value << 8) pairs, slot
// after slot; tools/fwd_trace.py's load() reads it).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sigattn/api.hpp>
#include <vector>

#include "../bench/bench_util.cuh"

#define TRACE_CHECK(x)                                                                        \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

namespace trace_common {

/// One event of the trace file: (SM clock now, event | value << 8), as the kernels' trace hooks
/// record it and load() in tools/fwd_trace.py reads it.
__device__ __forceinline__ uint2 clock_event(int event, int value) {
  unsigned clk;
  asm volatile("mov.u32 %0, %%clock;" : "=r"(clk)::"memory");
  return make_uint2(clk, static_cast<unsigned>(event) | (static_cast<unsigned>(value) << 8));
}

/// Fills `h` with values uniform in [-1.7, 1.7) from the xorshift state `seed`, which it advances.
inline void fill_uniform(std::vector<__nv_bfloat16>& h, uint64_t& seed) {
  for (auto& e : h) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    e = __float2bfloat16(static_cast<float>((seed >> 11) * (1.0 / 9007199254740992.0)) * 3.4f -
                         1.7f);
  }
}

/// A padded batch: `batch` lengths drawn uniformly from [s/4, s], the benchmark's `--ragged
/// uniform` rows (bench_util.cuh's make_lengths), copied to a new device array (to serve as both
/// q_lens and kv_lens). `pairs` becomes their real (query, key) pairs per head, non-causal.
inline int32_t* uniform_lengths(int batch, int s, double& pairs) {
  std::vector<int32_t> const h_lens =
      sigattn_bench::make_lengths(sigattn_bench::Ragged::kUniform, batch, s);
  pairs = 0;
  for (int32_t len : h_lens) pairs += sigattn_bench::score_pairs(len, len, false);
  int32_t* lens = nullptr;
  TRACE_CHECK(cudaMalloc(&lens, h_lens.size() * sizeof(int32_t)));
  TRACE_CHECK(
      cudaMemcpy(lens, h_lens.data(), h_lens.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  return lens;
}

/// Adds the 16-bit patterns of `h` to an FNV-1a style `hash` (start: 1469598103934665603) and its
/// values to `sum`.
inline void add_checksum(std::vector<__nv_bfloat16> const& h, uint64_t& hash, double& sum) {
  for (auto const& e : h) {
    uint16_t bits;
    std::memcpy(&bits, &e, 2);
    hash = (hash ^ bits) * 1099511628211ull;
    sum += __bfloat162float(e);
  }
}

/// The median time of `reps` calls of `launch` (a callable returning sigattn::Result) on the
/// legacy stream, each timed alone with CUDA events; exits on a failed launch.
template <class Launch>
float median_ms(Launch const& launch, int reps) {
  cudaEvent_t a, b;
  TRACE_CHECK(cudaEventCreate(&a));
  TRACE_CHECK(cudaEventCreate(&b));
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    TRACE_CHECK(cudaEventRecord(a));
    sigattn::Result r = launch();
    if (!r) {
      std::fprintf(stderr, "launch: %s\n", sigattn::to_string(r));
      std::exit(1);
    }
    TRACE_CHECK(cudaEventRecord(b));
    TRACE_CHECK(cudaEventSynchronize(b));
    float t = 0;
    TRACE_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  TRACE_CHECK(cudaEventDestroy(a));
  TRACE_CHECK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

/// Writes the trace file from the device array `trace` (`ctas` x `slots` x `events` pairs); exits
/// when it cannot.
template <class Trace>
void write_trace(char const* path, int d, int s, int ctas, int slots, unsigned events,
                 int consumers, float ms, Trace const& trace) {
  std::vector<uint2> t(size_t{static_cast<unsigned>(ctas * slots)} * events);
  TRACE_CHECK(cudaMemcpyFromSymbol(t.data(), trace, t.size() * sizeof(uint2)));
  int32_t const header[6] = {d, s, ctas, slots, static_cast<int32_t>(events), consumers};
  FILE* f = std::fopen(path, "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot write %s\n", path);
    std::exit(1);
  }
  std::fwrite(header, sizeof header, 1, f);
  std::fwrite(&ms, sizeof ms, 1, f);
  std::fwrite(t.data(), sizeof(uint2), t.size(), f);
  std::fclose(f);
}

}  // namespace trace_common

// What tools/fwd_trace.cu and tools/bwd_trace.cu share: error checks, the median time of a launch
// and the trace file (a header of six int32: D, S, traced CTAs, warpgroup slots per CTA, events
// per slot, consumers per CTA; the median time in ms as a float; then the (SM clock, event |
// value << 8) pairs, slot after slot; tools/fwd_trace.py's load() reads it).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sigattn/api.hpp>
#include <vector>

#define TRACE_CHECK(x)                                                                        \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

namespace trace_common {

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

/// Writes the trace file; exits when it cannot.
inline void write_trace(char const* path, int32_t const (&header)[6], float ms,
                        std::vector<uint2> const& events) {
  FILE* f = std::fopen(path, "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot write %s\n", path);
    std::exit(1);
  }
  std::fwrite(header, sizeof header, 1, f);
  std::fwrite(&ms, sizeof ms, 1, f);
  std::fwrite(events.data(), sizeof(uint2), events.size(), f);
  std::fclose(f);
}

}  // namespace trace_common

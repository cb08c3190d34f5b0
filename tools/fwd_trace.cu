// fwd_trace: a timeline of the Hopper forward's consumer warpgroups, and the forward's speed on
// SPEC section 6's dense shapes without the benchmark's machinery. A diagnostic, not a test.
//
// It compiles one forward shape of head dim D (D=64: 192 x 128 x 3 stages, the row from a max_q_len
// of 3072 on, not the four-consumer 256 x 64 x 4 of shorter calls, which the hook's kMaxConsumers =
// 3 does not cover; D=128: 128 x 128 x 2, not the 192 x 64 row used from 12288), at every S, with
// fwd_mainloop.cuh's SIGATTN_FWD_TRACE hook defined, runs B = 16384 / S, Hq = 2048 / D, bf16,
// non-causal, dense (no workspace, so no split tail; Q, K and V the same uniform values in [-1.7,
// 1.7)), 20 warm-up launches and 21 timed ones (median; burst clock: no long warm-up), prints the
// time, TFLOP/s and a checksum of O (two builds of the same arithmetic must print the same one),
// and writes the events of the last launch to OUTFILE: for thread 0 of every consumer warpgroup of
// the first kTraceCtas CTAs, up to kMaxEvents (SM clock, event, value) pairs. tools/fwd_trace.py
// reads it. Built with FWD_TRACE_OFF the same driver runs the untraced kernel (compare the speeds:
// the hook's stores cost 5-6%).
//
//   cmake -DSIGATTN_BUILD_TOOLS=ON ... (targets fwd_trace and fwd_trace_off), or
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -DSIGATTN_ENABLE_SM90A=1 \
//        -DSIGATTN_ENABLE_FP16=0 -Iinclude tools/fwd_trace.cu -o fwd_trace
//   fwd_trace D S OUTFILE [dense|uniform]
//
// With `uniform` the batch is padded: q_lens = kv_lens drawn uniformly from [S/4, S], the lengths
// of the benchmark's `--ragged uniform` rows (bench/bench_util.cuh's make_lengths), and TFLOP/s
// counts the real tokens' scores, as the benchmark does.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <string>

#include "trace_common.cuh"

namespace fwd_trace {
constexpr int kTraceCtas = 8;
constexpr int kMaxConsumers = 3;
constexpr unsigned kMaxEvents = 16384;
__device__ uint2 g_trace[kTraceCtas * kMaxConsumers * kMaxEvents];
__device__ __forceinline__ unsigned record(unsigned n, int event, int value) {
  if ((threadIdx.x & 127) == 0 && blockIdx.x < kTraceCtas && n < kMaxEvents) {
    unsigned const c = threadIdx.x / 128 - 1;
    g_trace[(blockIdx.x * kMaxConsumers + c) * kMaxEvents + n] =
        trace_common::clock_event(event, value);
  }
  return n + 1;
}
}  // namespace fwd_trace

#ifdef FWD_TRACE_OFF  // (the same driver around the untraced kernel, for its speed)
static char const* const kTraced = "untraced";
#else
static char const* const kTraced = "traced";
#define SIGATTN_FWD_TRACE_STATE unsigned trace_n = 0;
#define SIGATTN_FWD_TRACE(event, value) trace_n = ::fwd_trace::record(trace_n, event, value)
#endif
#include <sigattn/sigattn.cuh>

template <class Traits>
float run(sigattn::FwdParams const& p, int reps) {
  return trace_common::median_ms(
      [&] { return sigattn::detail::launch_sm90_fwd_traits<Traits>(p, nullptr, 0, 0, false); },
      reps);
}

int main(int argc, char** argv) {
  bool const uniform = argc == 5 && std::string(argv[4]) == "uniform";
  if (argc < 4 || argc > 5 || (argc == 5 && !uniform && std::string(argv[4]) != "dense")) {
    std::fprintf(stderr, "usage: fwd_trace D S OUTFILE [dense|uniform]\n");
    return 2;
  }
  int const d = std::atoi(argv[1]), s = std::atoi(argv[2]);
  int const batch = 16384 / s, heads = 2048 / d;
  size_t const n = size_t{16384} * 2048;
  std::vector<__nv_bfloat16> h(n);
  uint64_t seed = 88172645463325252ull;
  trace_common::fill_uniform(h, seed);
  // Q, K and V (and O before its first launch) hold the same values: the measurements of session
  // 22 (docs/performance.md) were taken so.
  void *q, *k, *v, *o;
  for (void** ptr : {&q, &k, &v, &o}) {
    TRACE_CHECK(cudaMalloc(ptr, n * 2));
    TRACE_CHECK(cudaMemcpy(*ptr, h.data(), n * 2, cudaMemcpyHostToDevice));
  }
  sigattn::FwdParams p{};
  p.q = q, p.k = k, p.v = v, p.o = o;
  p.batch = batch, p.num_heads = heads, p.num_kv_heads = heads, p.head_dim = d;
  p.max_q_len = s, p.max_kv_len = s;
  sigattn::Strides const st{int64_t{s} * heads * d, int64_t{heads} * d, d};
  p.q_stride = p.k_stride = p.v_stride = p.o_stride = st;
  double pairs = double(batch) * s * s;  // real (query, key) pairs of one head
  if (uniform) p.q_lens = p.kv_lens = trace_common::uniform_lengths(batch, s, pairs);
  float ms = 0;
  int consumers = 0;
  if (d == 64) {
    using T = sigattn::kernel::sm90::FwdTraits<64, __nv_bfloat16, 192, 128, 3>;
    run<T>(p, 20);
    ms = run<T>(p, 21);
    consumers = T::kConsumers;
  } else {
    using T = sigattn::kernel::sm90::FwdTraits<128, __nv_bfloat16, 128, 128, 2>;
    run<T>(p, 20);
    ms = run<T>(p, 21);
    consumers = T::kConsumers;
  }
  // A checksum of O, so that two builds of the same kernel can be compared bit for bit.
  std::vector<__nv_bfloat16> out(n);
  TRACE_CHECK(cudaMemcpy(out.data(), o, n * 2, cudaMemcpyDeviceToHost));
  uint64_t hash = 1469598103934665603ull;
  double sum = 0;
  trace_common::add_checksum(out, hash, sum);
  std::printf("O checksum %016llx sum %.6e\n", static_cast<unsigned long long>(hash), sum);
  double const flop = 4.0 * heads * pairs * d;
  std::printf("D=%d S=%d %s: %.4f ms, %.1f TFLOP/s real (%s build, burst)\n", d, s,
              uniform ? "uniform" : "dense", ms, flop / ms / 1e9, kTraced);
  trace_common::write_trace(argv[3], d, s, fwd_trace::kTraceCtas, fwd_trace::kMaxConsumers,
                            fwd_trace::kMaxEvents, consumers, ms, fwd_trace::g_trace);
  return 0;
}

// bwd_trace: a timeline of the Hopper backward's key-side consumer warpgroups, and the backward's
// speed on SPEC section 6's dense shapes without the benchmark's machinery. A diagnostic, not a
// test; the backward's counterpart of fwd_trace.cu.
//
// It compiles the registry's bf16 Hopper backward row of head dim D (launch_sm90_bwd: the dQ
// clear, the key side, the dQ conversion) with bwd_mainloop.cuh's SIGATTN_BWD_TRACE hook defined,
// runs B = 16384 / S, Hq = Hkv = 2048 / D, non-causal, dense, the default (atomic) dQ mode; Q, K,
// V and dO uniform in [-1.7, 1.7) from four seeds; 10 warm-up calls and 11 timed ones (median;
// burst clock: no long warm-up), prints the time, TFLOP/s (2.5 times the forward's FLOPs, as the
// benchmark counts), a checksum and the sum of dQ, dK and dV (dQ is summed by reductions in no
// fixed order, so runs differ in its last bits: compare the sums), and writes the events of one
// more call (whose time it also prints) to OUTFILE: for thread 0 of every consumer warpgroup of
// kTraceCtas CTAs from FIRST_CTA on (default 0; the first wave's CTAs all start at once, a later
// wave's start as others end), up to kMaxEvents (SM clock, event, value) pairs, in fwd_trace.cu's
// file format. With sm:K in place of FIRST_CTA it traces instead the first kTraceCtas CTAs that run
// on SM K, in the order they start there (one CTA at a time fits an SM, and one SM's clock is one
// time base: the gaps between consecutive tiles are then measurable; `bwd_trace.py --by-sm`).
// tools/bwd_trace.py reads it. Built with BWD_TRACE_OFF the same driver runs the untraced kernels
// (compare the speeds: the hook's own cost).
//
//   cmake -DSIGATTN_BUILD_TOOLS=ON ... (targets bwd_trace and bwd_trace_off), or
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -DSIGATTN_ENABLE_SM90A=1 \
//        -DSIGATTN_ENABLE_FP16=0 -Iinclude tools/bwd_trace.cu -o bwd_trace
//   bwd_trace D S OUTFILE [FIRST_CTA | sm:K] [dense|uniform]
//
// With `uniform` the batch is padded: q_lens = kv_lens drawn as the benchmark's `--ragged uniform`
// rows (uniform in [S/4, S]), and TFLOP/s counts the real tokens' scores, as the benchmark does.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "trace_common.cuh"

namespace bwd_trace {
constexpr int kTraceCtas = 32;
constexpr int kMaxConsumers = 2;
constexpr unsigned kMaxEvents = 8192;  // (a 16K tile's 256 iterations take about 2,800)
__device__ uint2 g_trace[kTraceCtas * kMaxConsumers * kMaxEvents];
__device__ unsigned g_first_cta;  // the first traced CTA
__device__ int g_sm = -1;         // with sm:K, K: the CTAs on that SM are traced instead
// With sm:K, per consumer index: how many CTAs have started on SM K (the next one's slot).
__device__ unsigned g_sm_arrivals[kMaxConsumers];
__device__ __forceinline__ unsigned sm_id() {
  unsigned id;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
  return id;
}
// A consumer thread's state within its CTA's work tile, in registers: its slot (kNone unless it is
// thread 0 of a traced warpgroup), its count of events, and the clock at the tile's start. The
// key side runs one work tile per CTA, so every traced slot starts empty. No global memory is
// read at the events (the first version of sm:K read the slot at every event).
struct State {
  static constexpr unsigned kNone = ~0u;
  unsigned slot;
  unsigned n;
  unsigned start;
};
// At the start of a work tile's consumer code: the clock first, so that the tile event's time
// does not include the atomic with which, under sm:K, a consumer on SM K takes the next slot.
__device__ __forceinline__ State begin() {
  if ((threadIdx.x & 127) != 0 || threadIdx.x < 128) return {State::kNone, 0u, 0u};
  unsigned const start = trace_common::clock_event(0, 0).x;
  unsigned const consumer = threadIdx.x / 128 - 1;
  unsigned cta = blockIdx.x - g_first_cta;
  if (g_sm >= 0) {
    if (sm_id() != static_cast<unsigned>(g_sm)) return {State::kNone, 0u, start};
    cta = atomicAdd(&g_sm_arrivals[consumer], 1u);
  }
  if (cta >= kTraceCtas) return {State::kNone, 0u, start};
  return {cta * kMaxConsumers + consumer, 0u, start};
}
// The tile event (0: bwd_mainloop.cuh's kBtTile, the first of a tile, declared after this file's
// hook) takes begin()'s clock.
__device__ __forceinline__ void record(State& state, int event, int value) {
  if (state.slot != State::kNone) {
    uint2 e = trace_common::clock_event(event, value);
    if (event == 0) e.x = state.start;
    if (state.n < kMaxEvents) g_trace[state.slot * kMaxEvents + state.n] = e;
    ++state.n;
  }
}
}  // namespace bwd_trace

#ifdef BWD_TRACE_OFF  // (the same driver around the untraced kernel, for its speed)
static char const* const kTraced = "untraced";
#else
static char const* const kTraced = "traced";
#define SIGATTN_BWD_TRACE_STATE ::bwd_trace::State trace_state = ::bwd_trace::begin();
#define SIGATTN_BWD_TRACE(event, value) ::bwd_trace::record(trace_state, event, value)
#endif
#include <sigattn/sigattn.cuh>

/// The registry's row of the bf16 Hopper backward of head dim `d`.
constexpr size_t hopper_bwd_row(int d) {
  for (size_t i = 0; i < sizeof(sigattn::kKernelConfigs) / sizeof(sigattn::kKernelConfigs[0]);
       ++i) {
    sigattn::KernelConfig const& c = sigattn::kKernelConfigs[i];
    if (c.direction == sigattn::Direction::kBackward && c.path == sigattn::Path::kHopper &&
        c.dtype == sigattn::DType::kBF16 && c.head_dim == d)
      return i;
  }
  return ~size_t{0};
}

template <size_t Row>
float run(sigattn::BwdParams const& p, void* workspace, int reps) {
  return trace_common::median_ms(
      [&] { return sigattn::detail::launch_sm90_bwd<Row>(p, workspace, 0, 0, false); }, reps);
}

/// Warm-up calls, the timed ones (the median), then the trace cleared and one more call, whose
/// events stay and whose time goes to `traced_ms`. (Under sm:K the warm-up calls take SM K's
/// slots, so no CTA records in the timed calls: they time the hook's cost on every SM alone.)
template <size_t Row>
float measure(sigattn::BwdParams const& p, void* workspace, float& traced_ms) {
  run<Row>(p, workspace, 10);
  float const ms = run<Row>(p, workspace, 11);
  std::vector<uint2> zeros(bwd_trace::kTraceCtas * bwd_trace::kMaxConsumers *
                           bwd_trace::kMaxEvents);
  TRACE_CHECK(cudaMemcpyToSymbol(bwd_trace::g_trace, zeros.data(), zeros.size() * sizeof(uint2)));
  unsigned const none[bwd_trace::kMaxConsumers] = {};
  TRACE_CHECK(cudaMemcpyToSymbol(bwd_trace::g_sm_arrivals, none, sizeof none));
  traced_ms = run<Row>(p, workspace, 1);
  return ms;
}

int main(int argc, char** argv) {
  // The last optional argument may name the batch: dense (the default) or uniform.
  bool uniform = false;
  if (argc >= 5 && (std::string(argv[argc - 1]) == "uniform" ||
                    std::string(argv[argc - 1]) == "dense")) {
    uniform = std::string(argv[argc - 1]) == "uniform";
    --argc;
  }
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: bwd_trace D S OUTFILE [FIRST_CTA | sm:K] [dense|uniform]\n");
    return 2;
  }
  bool const by_sm = argc == 5 && std::strncmp(argv[4], "sm:", 3) == 0;
  unsigned const first_cta = argc == 5 && !by_sm ? static_cast<unsigned>(std::atoi(argv[4])) : 0u;
  int sm = -1;
  if (by_sm) {
    char* end = nullptr;
    long const k = std::strtol(argv[4] + 3, &end, 10);
    int sms = 0;
    TRACE_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    if (end == argv[4] + 3 || *end != '\0' || k < 0 || k >= sms) {
      std::fprintf(stderr, "bwd_trace: sm:K needs 0 <= K < %d (the SM count)\n", sms);
      return 2;
    }
    sm = static_cast<int>(k);
  }
  TRACE_CHECK(cudaMemcpyToSymbol(bwd_trace::g_first_cta, &first_cta, sizeof first_cta));
  TRACE_CHECK(cudaMemcpyToSymbol(bwd_trace::g_sm, &sm, sizeof sm));
  int const d = std::atoi(argv[1]), s = std::atoi(argv[2]);
  if ((d != 64 && d != 128) || s <= 0 || 16384 % s != 0) {
    std::fprintf(stderr, "bwd_trace: D is 64 or 128, S divides 16384\n");
    return 2;
  }
  int const batch = 16384 / s, heads = 2048 / d;
  size_t const n = size_t{16384} * 2048;
  std::vector<__nv_bfloat16> h(n);
  void *q, *k, *v, *dout, *dq, *dk, *dv, *workspace;
  uint64_t seed = 88172645463325252ull;
  for (void** ptr : {&q, &k, &v, &dout}) {
    trace_common::fill_uniform(h, seed);
    TRACE_CHECK(cudaMalloc(ptr, n * 2));
    TRACE_CHECK(cudaMemcpy(*ptr, h.data(), n * 2, cudaMemcpyHostToDevice));
  }
  for (void** ptr : {&dq, &dk, &dv}) TRACE_CHECK(cudaMalloc(ptr, n * 2));
  sigattn::BwdParams p{};
  p.fwd.q = q, p.fwd.k = k, p.fwd.v = v;
  p.fwd.batch = batch, p.fwd.num_heads = heads, p.fwd.num_kv_heads = heads, p.fwd.head_dim = d;
  p.fwd.max_q_len = s, p.fwd.max_kv_len = s;
  p.fwd.path = sigattn::Path::kHopper;
  sigattn::Strides const st{int64_t{s} * heads * d, int64_t{heads} * d, d};
  p.fwd.q_stride = p.fwd.k_stride = p.fwd.v_stride = p.fwd.o_stride = st;
  p.dout = dout, p.dq = dq, p.dk = dk, p.dv = dv;
  p.dout_stride = p.dq_stride = p.dk_stride = p.dv_stride = st;
  double pairs = double(batch) * s * s;  // real (query, key) pairs of one head
  if (uniform) p.fwd.q_lens = p.fwd.kv_lens = trace_common::uniform_lengths(batch, s, pairs);
  size_t const workspace_size = sigattn::workspace_bytes(p);
  TRACE_CHECK(cudaMalloc(&workspace, workspace_size));
  float ms = 0, traced_ms = 0;
  int consumers = 0;
  if (d == 64) {
    constexpr size_t kRow = hopper_bwd_row(64);
    static_assert(kRow != ~size_t{0}, "a bf16 Hopper backward row of D = 64");
    ms = measure<kRow>(p, workspace, traced_ms);
    consumers = sigattn::kKernelConfigs[kRow].tile.tile_kv / 64;
  } else {
    constexpr size_t kRow = hopper_bwd_row(128);
    static_assert(kRow != ~size_t{0}, "a bf16 Hopper backward row of D = 128");
    ms = measure<kRow>(p, workspace, traced_ms);
    consumers = sigattn::kKernelConfigs[kRow].tile.tile_kv / 64;
  }
  // A checksum of dQ, dK and dV, and their sum (dQ's last bits depend on the order of the
  // reductions: compare two builds by the sum).
  uint64_t hash = 1469598103934665603ull;
  double sum = 0;
  for (void* ptr : {dq, dk, dv}) {
    TRACE_CHECK(cudaMemcpy(h.data(), ptr, n * 2, cudaMemcpyDeviceToHost));
    trace_common::add_checksum(h, hash, sum);
  }
  std::printf("dQ, dK, dV checksum %016llx sum %.6e\n", static_cast<unsigned long long>(hash), sum);
  double const flop = 2.5 * 4.0 * heads * pairs * d;
  std::printf("D=%d S=%d %s: %.4f ms, %.1f TFLOP/s real (%s build, burst; the traced call %.4f"
              " ms)\n",
              d, s, uniform ? "uniform" : "dense", ms, flop / ms / 1e9, kTraced, traced_ms);
  trace_common::write_trace(argv[3], d, s, bwd_trace::kTraceCtas, bwd_trace::kMaxConsumers,
                            bwd_trace::kMaxEvents, consumers, ms, bwd_trace::g_trace);
  return 0;
}

// sigattn_tune_sm90: times the Hopper forward in shapes that no registry row names (variants.hpp)
// beside the registry's own choice, on SPEC section 6's shapes (16,384 tokens, hidden 2048), and
// checks each shape's O against the registry's. A tuning sweep, not a test: docs/tuning.md
// records what it found. Built with -DSIGATTN_BUILD_TUNING=ON (off by default).
//
//   sigattn_tune_sm90 [--seqlens 1024,4096,16384] [--hdims 128,64] [--ids LIST] [--iters 10]
//                     [--warmup 2] [--warmup-ms 1000] [--causal 0|1]
//                     [--causal-order auto|levels|levels:K|heads] [--reverse]
//
// --hdims: the head dims to time (the registry's row and that head dim's shapes), in that order.
// --ids: only the shapes of variants.hpp with these ids (default: all of them).
//
// --causal-order: the shapes' tile order under a causal mask (sigattn::detail::CausalOrder): the
// library's rule (auto, the default), or for every shape by levels, by levels in blocks of K
// levels, or head by head; the registry's baseline keeps the library's rule.
//
// --warmup-ms: as sigattn_bench's (bench/README.md, Timing): flushed warm-up runs for about that
// long before each shape's timed runs, so that every shape is timed at its own steady clock under
// the board's power limit rather than at the clock the shape before it left (0 turns it off).
//
// Prints a markdown table; progress goes to stderr. Exits 2 without a compute-capability-9.0
// device, 1 when a shape's O differs from the registry's by more than 1e-2 (relative L2).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sigattn/sigattn.cuh>
#include <string>
#include <vector>

#include "../bench_util.cuh"
#include "variants.hpp"

namespace sigattn_tune {

#define SIGATTN_TUNE_DECLARE(id, d, q, kv, st, so, mufu) \
  template <>                                            \
  Variant variant<id>();
SIGATTN_TUNE_SM90_FWD_VARIANTS(SIGATTN_TUNE_DECLARE)
#undef SIGATTN_TUNE_DECLARE

namespace {

using sigattn_bench::DeviceBuffer;
using sigattn_bench::Ragged;

/// The shapes of variants.hpp whose ids are in `ids` (all of them when it is empty) that this build
/// holds (SIGATTN_TUNE_IDS in CMakeLists.txt: the others are stubs without a launcher); `missing`
/// gets the ids in `ids` that it left out.
std::vector<Variant> all_variants(std::vector<int> const& ids, std::vector<int>* missing) {
  std::vector<Variant> v;
#define SIGATTN_TUNE_APPEND(id, d, q, kv, st, so, mufu)                        \
  if (ids.empty() || std::count(ids.begin(), ids.end(), id) > 0) {             \
    Variant const var = variant<id>();                                         \
    if (var.launch != nullptr)                                                 \
      v.push_back(var);                                                        \
    else if (!ids.empty())                                                     \
      missing->push_back(id);                                                  \
  }
  SIGATTN_TUNE_SM90_FWD_VARIANTS(SIGATTN_TUNE_APPEND)
#undef SIGATTN_TUNE_APPEND
  return v;
}

std::vector<int> parse_list(char const* text, long min = 1) {
  std::vector<int> out;
  for (char const* p = text; *p;) {
    char* end = nullptr;
    long x = std::strtol(p, &end, 10);
    if (end == p || x < min || x > 1000000) {
      std::fprintf(stderr, "sigattn_tune_sm90: bad list '%s'\n", text);
      std::exit(1);
    }
    out.push_back(static_cast<int>(x));
    p = *end == ',' ? end + 1 : end;
  }
  return out;
}

struct TuneOptions {
  std::vector<int> seqlens{1024, 4096, 16384};
  std::vector<int> hdims{128, 64};
  std::vector<int> ids;  // empty: every shape
  int iters = 10;
  int warmup = 2;
  double warmup_ms = 1000.0;
  bool causal = false;
  bool reverse = false;  // time the shapes in the reverse order (the machine's clocks drift)
  sigattn::detail::CausalOrder order = sigattn::detail::CausalOrder::kAuto;
};

TuneOptions parse(int argc, char** argv) {
  TuneOptions o;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> char const* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sigattn_tune_sm90: %s needs a value\n", argv[i]);
        std::exit(1);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--seqlens")) {
      o.seqlens = parse_list(value());
    } else if (!std::strcmp(argv[i], "--hdims")) {
      o.hdims = parse_list(value());
      for (int d : o.hdims)
        if (d != 64 && d != 128) {
          std::fprintf(stderr, "sigattn_tune_sm90: --hdims takes 64 and 128\n");
          std::exit(1);
        }
    } else if (!std::strcmp(argv[i], "--ids")) {
      o.ids = parse_list(value(), /*min=*/0);
    } else if (!std::strcmp(argv[i], "--iters")) {
      o.iters = parse_list(value()).at(0);
    } else if (!std::strcmp(argv[i], "--warmup")) {
      o.warmup = std::atoi(value());
    } else if (!std::strcmp(argv[i], "--warmup-ms")) {
      char const* text = value();
      char* end = nullptr;
      o.warmup_ms = std::strtod(text, &end);
      if (end == text || *end != '\0' || !(o.warmup_ms >= 0.0 && o.warmup_ms <= 60000.0)) {
        std::fprintf(stderr, "sigattn_tune_sm90: --warmup-ms takes 0 to 60000 milliseconds\n");
        std::exit(1);
      }
    } else if (!std::strcmp(argv[i], "--causal")) {
      o.causal = std::atoi(value()) != 0;
    } else if (!std::strcmp(argv[i], "--causal-order")) {
      std::string const order = value();
      int const block = order.rfind("levels:", 0) == 0 ? std::atoi(order.c_str() + 7) : 0;
      if (order == "auto") {
        o.order = sigattn::detail::CausalOrder::kAuto;
      } else if (order == "levels") {
        o.order = sigattn::detail::CausalOrder::kLevels;
      } else if (block >= 1 && block <= 64) {
        o.order = sigattn::detail::causal_levels_in_blocks(block);
      } else if (order == "heads") {
        o.order = sigattn::detail::CausalOrder::kHeads;
      } else {
        std::fprintf(stderr,
                     "sigattn_tune_sm90: --causal-order takes auto, levels, levels:K (K in 1..64) "
                     "or heads\n");
        std::exit(1);
      }
    } else if (!std::strcmp(argv[i], "--reverse")) {
      o.reverse = true;
    } else {
      std::fprintf(stderr,
                   "usage: sigattn_tune_sm90 [--seqlens LIST] [--hdims LIST] [--ids LIST] "
                   "[--iters N] [--warmup N] "
                   "[--warmup-ms MS] [--causal 0|1] [--causal-order auto|levels|levels:K|heads] "
                   "[--reverse]\n");
      std::exit(1);
    }
  }
  return o;
}

constexpr double kDiffLimit = 1e-2;

}  // namespace
}  // namespace sigattn_tune

int main(int argc, char** argv) {
  using namespace sigattn_tune;
  using namespace sigattn_bench;
  TuneOptions const opts = parse(argc, argv);
  std::vector<int> missing;
  std::vector<Variant> variants = all_variants(opts.ids, &missing);
  if (!missing.empty()) {
    std::fprintf(stderr,
                 "sigattn_tune_sm90: shape %d is not in this build (configure with "
                 "SIGATTN_TUNE_IDS naming it, or empty for every shape)\n",
                 missing.front());
    return 1;
  }

  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaGetDeviceProperties(&prop, device) != cudaSuccess || prop.major != 9 || prop.minor != 0) {
    std::fprintf(stderr, "sigattn_tune_sm90: needs a compute capability 9.0 device\n");
    return 2;
  }
  cudaStream_t stream = nullptr;
  SIGATTN_BENCH_CHECK_CUDA(cudaStreamCreate(&stream));
  GpuClock const clock(device);  // each row's mean SM clock over its timed runs (NVML)
  Timer timer(stream, static_cast<size_t>(prop.l2CacheSize), &clock);
  auto mhz = [](Timing const& t) {
    return std::isnan(t.sm_mhz) ? std::string("-") : std::to_string(std::lround(t.sm_mhz));
  };
  DeviceBuffer scratch;
  scratch.allocate(2 * sizeof(double));
  if (opts.reverse) std::reverse(variants.begin(), variants.end());

  int const block = static_cast<int>(opts.order);
  std::string const order_text =
      !opts.causal                                         ? "non-causal"
      : opts.order == sigattn::detail::CausalOrder::kAuto  ? "causal"
      : opts.order == sigattn::detail::CausalOrder::kHeads ? "causal, the shapes head by head"
      : opts.order == sigattn::detail::CausalOrder::kLevels
          ? "causal, the shapes by levels"
          : "causal, the shapes by levels in blocks of " + std::to_string(block) + " levels";
  std::printf("# sigattn_tune_sm90 (Hopper forward shapes), %s, commit %s\n\n", prop.name,
              git_commit().c_str());
  std::printf(
      "bf16, %s, 16384 tokens, hidden 2048, bias -log(kv_len); median of %d runs after %d "
      "warm-up runs and about %.0f ms of flushed ones, L2 flushed before each. TFLOP/s on real "
      "tokens.\n\n",
      order_text.c_str(), opts.iters, opts.warmup, opts.warmup_ms);
  std::printf(
      "| D | S | ragged | shape (q x kv x stages, O, reciprocal) | smem KB | ms | "
      "TFLOP/s real | vs registry | rel. diff O | SM MHz |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n");

  int status = 0;
  for (int head_dim : opts.hdims) {
    for (int seqlen : opts.seqlens) {
      for (Ragged ragged : {Ragged::kDense, Ragged::kUniform}) {
        int const batch = std::max(1, 16384 / seqlen);
        int const heads = 2048 / head_dim;
        std::vector<int32_t> const lens = make_lengths(ragged, batch, seqlen);
        double const flop = forward_flop(lens, heads, head_dim, opts.causal);
        int64_t const elements = int64_t{batch} * seqlen * heads * head_dim;
        DeviceBuffer q, k, v, o, o_ref, d_lens;
        for (DeviceBuffer* b : {&q, &k, &v, &o, &o_ref}) b->allocate(elements * 2);
        d_lens.allocate(lens.size() * sizeof(int32_t));
        SIGATTN_BENCH_CHECK_CUDA(cudaMemcpy(d_lens.get(), lens.data(),
                                            lens.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
        fill_normal<__nv_bfloat16>(q.get(), elements, 1, stream);
        fill_normal<__nv_bfloat16>(k.get(), elements, 2, stream);
        fill_normal<__nv_bfloat16>(v.get(), elements, 3, stream);

        sigattn::Strides const strides{int64_t{seqlen} * heads * head_dim,
                                       int64_t{heads} * head_dim, head_dim};
        sigattn::FwdParams p{};
        p.q = q.get();
        p.k = k.get();
        p.v = v.get();
        p.o = o_ref.get();
        p.dtype = sigattn::DType::kBF16;
        p.batch = batch;
        p.num_heads = p.num_kv_heads = heads;
        p.head_dim = head_dim;
        p.max_q_len = p.max_kv_len = seqlen;
        p.q_lens = p.kv_lens = static_cast<int32_t const*>(d_lens.get());
        p.q_stride = p.k_stride = p.v_stride = p.o_stride = strides;
        p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        p.bias_mode = sigattn::BiasMode::kNegLogKvLen;
        p.causal = opts.causal ? sigattn::Causal::kTopLeft : sigattn::Causal::kNone;
        p.path = sigattn::Path::kHopper;

        auto check = [](sigattn::Result r, char const* what) {
          if (!r) {
            std::fprintf(stderr, "sigattn_tune_sm90: %s: %s\n", what, sigattn::to_string(r));
            std::exit(1);
          }
        };
        // Every kernel gets the same workspace (the split tail's; room for the largest tile).
        DeviceBuffer workspace;
        workspace.allocate(sigattn::detail::kFwdSplitFlagBytes +
                           size_t{sigattn::kernel::sm90::kMaxSplitCtas} * 192 * 128 * 4);
        void* const ws = workspace.get();
        check(sigattn::forward(p, ws, stream), "registry forward");
        Timing const base =
            timer.run([&] { check(sigattn::forward(p, ws, stream), "registry forward"); },
                      opts.warmup, opts.iters, opts.warmup_ms);
        char const* ragged_text = ragged == Ragged::kDense ? "dense" : "uniform";
        std::printf("| %d | %d | %s | registry | - | %.3f | %.1f | 1.00 | - | %s |\n", head_dim,
                    seqlen, ragged_text, base.median_ms, flop / base.median_ms * 1e-9,
                    mhz(base).c_str());
        std::fflush(stdout);

        p.o = o.get();
        for (Variant const& var : variants) {
          if (var.head_dim != head_dim) continue;
          std::fprintf(stderr, "D=%d S=%d %s %dx%dx%d ...\n", head_dim, seqlen, ragged_text,
                       var.tile_q, var.tile_kv, var.stages);
          SIGATTN_BENCH_CHECK_CUDA(cudaMemsetAsync(o.get(), 0xFF, elements * 2, stream));
          check(var.launch(p, ws, device, stream, false, opts.order), "variant forward");
          double const diff = relative_l2_diff<__nv_bfloat16>(
              o.get(), o_ref.get(), elements, static_cast<double*>(scratch.get()), stream);
          Timing const t = timer.run(
              [&] {
                check(var.launch(p, ws, device, stream, false, opts.order), "variant forward");
              },
              opts.warmup, opts.iters, opts.warmup_ms);
          bool const bad = !(diff <= kDiffLimit);
          if (bad) status = 1;
          std::printf(
              "| %d | %d | %s | %dx%dx%d, %s, rcp %d/8 MUFU | %d | %.3f | %.1f | %.2f | "
              "%.1e%s | %s |\n",
              head_dim, seqlen, ragged_text, var.tile_q, var.tile_kv, var.stages,
              var.staged_o ? "staged" : "direct", var.mufu_eighths, var.smem_bytes / 1024,
              t.median_ms, flop / t.median_ms * 1e-9, base.median_ms / t.median_ms, diff,
              bad ? " MISMATCH" : "", mhz(t).c_str());
          std::fflush(stdout);
        }
      }
    }
  }
  SIGATTN_BENCH_CHECK_CUDA(cudaStreamDestroy(stream));
  return status;
}

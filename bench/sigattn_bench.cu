// sigattn_bench: times every sigattn path, and a cuBLAS baseline a user would write without the
// library, over the axes of STYLE.md section 10 (dtype, head dim, length, ragged fraction,
// causal), and prints a markdown table (and, with --json, a JSON array). See bench/README.md.
//
// The one translation unit of the program: it includes <sigattn/sigattn.cuh> (inline definitions).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sigattn/sigattn.cuh>
#include <string>
#include <vector>

#include "baseline.cuh"
#include "bench_options.hpp"
#include "bench_util.cuh"
#include "report.hpp"

namespace sigattn_bench {
namespace {

/// A relative L2 difference from the baseline above this is flagged. The baseline rounds scores
/// (and dP) to the input dtype before the sigmoid, so a few 1e-3 is normal; 5e-2 is a bug.
constexpr double kDiffWarning = 5e-2;

std::string version_text(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

/// Prints the report's title, device line, method line and table header; returns what every
/// JSON row repeats.
RunInfo print_header(int device, cudaDeviceProp const& prop, Options const& opts) {
  int sm_clock_khz = 0;
  int mem_clock_khz = 0;
  int runtime = 0;
  int driver = 0;
  SIGATTN_BENCH_CHECK_CUDA(cudaDeviceGetAttribute(&sm_clock_khz, cudaDevAttrClockRate, device));
  SIGATTN_BENCH_CHECK_CUDA(
      cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, device));
  SIGATTN_BENCH_CHECK_CUDA(cudaRuntimeGetVersion(&runtime));
  SIGATTN_BENCH_CHECK_CUDA(cudaDriverGetVersion(&driver));
  RunInfo info{prop.name, git_commit(), utc_now()};
  std::printf("# sigattn_bench\n\n");
  std::printf(
      "Device: %s (sm_%d%d, %d SMs, peak SM clock %d MHz, memory clock %d MHz, L2 %d MiB, "
      "%.1f GiB); CUDA runtime %s, driver %s; commit %s; %s.\n\n",
      prop.name, prop.major, prop.minor, prop.multiProcessorCount, sm_clock_khz / 1000,
      mem_clock_khz / 1000, prop.l2CacheSize >> 20, prop.totalGlobalMem / 1073741824.0,
      version_text(runtime).c_str(), version_text(driver).c_str(), info.commit.c_str(),
      info.date.c_str());
  // Per row: an idle pause (--cooldown-ms), the counted warm-up, the time-based one.
  std::string warm;
  if (opts.cooldown_ms > 0.0) warm += fmt(opts.cooldown_ms, "%.0f") + " ms of an idle GPU, then ";
  warm += std::to_string(opts.warmup) + " warm-up run(s)";
  if (opts.warmup_ms > 0.0)
    warm += " and flushed warm-up runs for about " + fmt(opts.warmup_ms, "%.0f") + " ms";
  std::printf(
      "Timing: CUDA events; per row %s, then median/min/max of %d runs with L2 flushed before "
      "each; SM MHz and W: means of NVML's SM clock and board power (a lagging average) read "
      "during the timed runs (- where NVML is unavailable). %lld tokens per batch (B = tokens / "
      "S), hidden %d (Hq = Hkv = hidden / D), inputs N(0,1), bias -log(kv_len), scale "
      "1/sqrt(D)%s%s%s%s. FLOP: forward 4*D*Hq*(unmasked scores), backward 2.5x.\n\n",
      warm.c_str(), opts.iters, static_cast<long long>(opts.tokens), opts.hidden,
      opts.deterministic ? ", deterministic backward" : "",
      opts.fast_sigmoid ? ", the library's fast sigmoid (tanh.approx)" : "",
      opts.fwd_workspace ? "" : ", forward without a workspace (no split tail)",
      opts.null_lens ? ", dense rows without length arrays (q_lens = kv_lens = null)" : "");
  print_table_header();
  return info;
}

// ---------------------------------------------------------------------------------------------
// Measuring.

/// Everything one row needs beyond its own description.
struct Context {
  Options const& opts;
  int device;
  cudaStream_t stream;
  Timer& timer;
  Baseline& baseline;
  Tensors lib;          ///< the library's inputs and outputs
  Tensors ref;          ///< the same inputs, the baseline's outputs
  int32_t const* lens;  ///< device int32[B]: q_len = kv_len per sequence
  double* scratch;      ///< two doubles for relative_l2_diff

  /// One row's timing of `op` with the options' warm-up, runs and cooldown (Timer::run).
  template <class Op>
  Timing time(Op&& op) const {
    return timer.run(op, opts.warmup, opts.iters, opts.warmup_ms, opts.cooldown_ms);
  }
};

/// 1/sqrt(D), the library's default scale, passed explicitly to both the library and the baseline.
float default_scale(int32_t head_dim) { return 1.0f / std::sqrt(static_cast<float>(head_dim)); }

/// True on success; otherwise records why in the row ("n/a" for a path that is not available on
/// this device or build, "error" for anything else). A CUDA error is fatal.
bool accept(sigattn::Result result, Row& row) {
  if (result) return true;
  row.note = sigattn::to_string(result);
  if (result.status == sigattn::Status::kErrorCuda) {
    std::fprintf(stderr, "\nsigattn_bench: sigattn failed: %s\n", row.note.c_str());
    std::exit(1);
  }
  bool unavailable = result.status == sigattn::Status::kErrorNotSupported ||
                     result.status == sigattn::Status::kErrorArchMismatch;
  row.status = unavailable ? "n/a" : "error";
  return false;
}

void measure_library(Row& row, Context const& ctx) {
  Shape const& s = row.shape;
  sigattn::Strides strides{int64_t{s.max_len} * s.num_heads * s.head_dim,
                           int64_t{s.num_heads} * s.head_dim, s.head_dim};
  sigattn::FwdParams fp{};
  fp.q = ctx.lib.q;
  fp.k = ctx.lib.k;
  fp.v = ctx.lib.v;
  fp.o = ctx.lib.o;
  fp.dtype = s.bf16 ? sigattn::DType::kBF16 : sigattn::DType::kFP16;
  fp.batch = s.batch;
  fp.num_heads = s.num_heads;
  fp.num_kv_heads = s.num_heads;
  fp.head_dim = s.head_dim;
  fp.max_q_len = s.max_len;
  fp.max_kv_len = s.max_len;
  // (Dense rows with --null-lens: no length arrays; the dispatcher knows every sequence is full.)
  bool const null_lens = ctx.opts.null_lens && row.ragged == Ragged::kDense;
  fp.q_lens = null_lens ? nullptr : ctx.lens;
  fp.kv_lens = null_lens ? nullptr : ctx.lens;
  fp.q_stride = fp.k_stride = fp.v_stride = fp.o_stride = strides;
  fp.scale = default_scale(s.head_dim);
  fp.bias_mode = sigattn::BiasMode::kNegLogKvLen;
  fp.causal = row.causal ? sigattn::Causal::kTopLeft : sigattn::Causal::kNone;
  fp.sigmoid = row.fast_sigmoid ? sigattn::SigmoidMode::kFast : sigattn::SigmoidMode::kAccurate;
  fp.path = row.path == PathKind::kHopper ? sigattn::Path::kHopper : sigattn::Path::kPortable;
  sigattn::BwdParams bp{};
  bp.fwd = fp;
  bp.dout = ctx.lib.dout;
  bp.dq = ctx.lib.dq;
  bp.dk = ctx.lib.dk;
  bp.dv = ctx.lib.dv;
  bp.dout_stride = bp.dq_stride = bp.dk_stride = bp.dv_stride = strides;
  bp.deterministic = row.deterministic;

  bool forward = row.dir == Dir::kForward;
  if (!accept(
          forward ? sigattn::can_implement(fp, ctx.device) : sigattn::can_implement(bp, ctx.device),
          row))
    return;
  DeviceBuffer workspace;
  size_t workspace_bytes = !forward                 ? sigattn::workspace_bytes(bp)
                           : ctx.opts.fwd_workspace ? sigattn::workspace_bytes(fp)
                                                    : 0;
  if (!workspace.try_allocate(workspace_bytes)) {
    row.status = "OOM";
    row.note = std::string(forward ? "forward" : "backward") + " workspace of " +
               std::to_string(workspace_bytes) + " bytes";
    return;
  }
  auto call = [&] {
    return forward ? sigattn::forward(fp, workspace.get(), ctx.stream)
                   : sigattn::backward(bp, workspace.get(), ctx.stream);
  };
  if (!accept(call(), row)) return;
  SIGATTN_BENCH_CHECK_CUDA(cudaStreamSynchronize(ctx.stream));
  row.time = ctx.time([&] {
    sigattn::Result result = call();
    if (!result) {
      std::fprintf(stderr, "\nsigattn_bench: a timed call failed: %s\n",
                   sigattn::to_string(result));
      std::exit(1);
    }
  });
}

void measure_baseline(Row& row, Context const& ctx) {
  bool forward = row.dir == Dir::kForward;
  if (!(forward ? ctx.baseline.forward_fits() : ctx.baseline.backward_fits())) {
    Shape const& s = row.shape;
    double gib = double(s.batch) * s.num_heads * s.max_len * s.max_len * 2 / 1073741824.0;
    row.status = "OOM";
    row.note = fmt(forward ? gib : 2 * gib, "%.1f") + " GiB of scores do not fit";
    return;
  }
  float scale = default_scale(row.shape.head_dim);
  if (forward) {
    row.time = ctx.time([&] { ctx.baseline.forward(ctx.lens, row.causal, scale); });
  } else {
    ctx.baseline.forward(ctx.lens, row.causal, scale);  // the P the backward reuses
    row.time = ctx.time([&] { ctx.baseline.backward(scale); });
  }
}

/// Worst relative L2 difference of the library's outputs from the baseline's (same config).
double diff_from_baseline(Row const& row, Context const& ctx) {
  int64_t n = row.shape.elements();
  auto diff = [&](void const* a, void const* b) {
    return row.shape.bf16 ? relative_l2_diff<__nv_bfloat16>(a, b, n, ctx.scratch, ctx.stream)
                          : relative_l2_diff<__half>(a, b, n, ctx.scratch, ctx.stream);
  };
  if (row.dir == Dir::kForward) return diff(ctx.lib.o, ctx.ref.o);
  return std::max(
      {diff(ctx.lib.dq, ctx.ref.dq), diff(ctx.lib.dk, ctx.ref.dk), diff(ctx.lib.dv, ctx.ref.dv)});
}

/// The earlier ok row that matches `row` except for the path and ragged mode given.
Row const* find_row(std::vector<Row> const& rows, Row const& row, PathKind path, Ragged ragged) {
  for (Row const& r : rows) {
    if (r.status == "ok" && r.path == path && r.ragged == ragged && r.dir == row.dir &&
        r.shape.bf16 == row.shape.bf16 && r.shape.head_dim == row.shape.head_dim &&
        r.shape.max_len == row.shape.max_len && r.causal == row.causal)
      return &r;
  }
  return nullptr;
}

/// Fills the derived columns of a measured row from itself and the rows measured before it.
void derive(Row& row, std::vector<Row> const& rows, Context const& ctx) {
  if (row.status != "ok") return;
  row.tflops_real = row.flop_real / (row.time.median_ms * 1e9);
  row.tflops_padded = row.flop_padded / (row.time.median_ms * 1e9);
  if (Row const* dense = find_row(rows, row, row.path, Ragged::kDense))
    row.efficiency = row.tflops_real / dense->tflops_real;
  else if (row.ragged == Ragged::kDense)
    row.efficiency = 1.0;
  if (row.path == PathKind::kBaseline) return;
  if (Row const* base = find_row(rows, row, PathKind::kBaseline, row.ragged)) {
    row.speedup = base->time.median_ms / row.time.median_ms;
    // The baseline ran just before, on the same inputs and lengths: its outputs are in ctx.ref.
    row.rel_diff = diff_from_baseline(row, ctx);
    if (!std::isfinite(row.rel_diff)) {
      row.rel_diff = std::numeric_limits<double>::infinity();
      row.note = "NaN or Inf in the output";
    }
  }
}

/// Measures one row, fills its derived columns from the rows before it and reports progress on
/// stderr. False when sigattn rejected the row's parameters as invalid.
bool measure_row(Row& row, std::vector<Row> const& rows, Context const& ctx, size_t total) {
  std::fprintf(stderr, "[%zu/%zu] %s %s %s D=%d S=%d B=%d Hq=%d %s%s ... ", rows.size() + 1, total,
               path_name(row.path), dir_name(row).c_str(), row.shape.bf16 ? "bf16" : "fp16",
               row.shape.head_dim, row.shape.max_len, row.shape.batch, row.shape.num_heads,
               ragged_name(row.ragged), row.causal ? " causal" : "");
  if (row.path == PathKind::kBaseline)
    measure_baseline(row, ctx);
  else
    measure_library(row, ctx);
  derive(row, rows, ctx);
  if (row.status != "ok") {
    std::fprintf(stderr, "%s: %s\n", row.status.c_str(), row.note.c_str());
    return row.status != "error";
  }
  std::fprintf(stderr, "%.3f ms, %.1f TFLOP/s", row.time.median_ms, row.tflops_real);
  if (!std::isnan(row.rel_diff)) std::fprintf(stderr, ", rel. diff vs baseline %.1e", row.rel_diff);
  if (row.rel_diff > kDiffWarning)
    std::fprintf(stderr, "  WARNING: far from the baseline %s", row.note.c_str());
  std::fprintf(stderr, "\n");
  return true;
}

// ---------------------------------------------------------------------------------------------
// The sweep.

template <class T>
void sort_unique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

/// Allocates one [B, S, H, D] tensor (fatal when even that does not fit).
void* tensor(DeviceBuffer& buffer, Shape const& s) {
  buffer.allocate(static_cast<size_t>(s.elements()) * 2);
  return buffer.get();
}

/// Measures every row of one shape: allocates its tensors (and the baseline's score buffers),
/// then runs every causal setting, ragged mode, path and direction. False when a row failed.
bool run_shape(Shape const& shape, Context ctx, RunInfo const& info, size_t total,
               std::vector<Row>& rows) {
  Options const& opts = ctx.opts;
  int32_t max_len = shape.max_len;
  int32_t head_dim = shape.head_dim;
  bool bf16 = shape.bf16;
  bool want_baseline = opts.paths.front() == PathKind::kBaseline;  // sorted: baseline first
  bool want_backward = opts.dirs.back() == Dir::kBackward;
  bool ok = true;

  // Inputs and outputs of this shape; freed on return.
  DeviceBuffer q, k, v, o, dout, dq, dk, dv, o_ref, dq_ref, dk_ref, dv_ref, lens;
  Tensors lib{tensor(q, shape),    tensor(k, shape),  tensor(v, shape),  tensor(o, shape),
              tensor(dout, shape), tensor(dq, shape), tensor(dk, shape), tensor(dv, shape)};
  Tensors ref = lib;
  if (want_baseline) {
    ref.o = tensor(o_ref, shape);
    ref.dq = tensor(dq_ref, shape);
    ref.dk = tensor(dk_ref, shape);
    ref.dv = tensor(dv_ref, shape);
  }
  uint64_t seed = 0x5167A77E0000ull + uint64_t(max_len) * 131 + uint64_t(head_dim);
  void* inputs[] = {lib.q, lib.k, lib.v, lib.dout};
  for (int i = 0; i < 4; ++i) {
    if (bf16)
      fill_normal<__nv_bfloat16>(inputs[i], shape.elements(), seed + i, ctx.stream);
    else
      fill_normal<__half>(inputs[i], shape.elements(), seed + i, ctx.stream);
  }
  lens.allocate(sizeof(int32_t) * shape.batch);
  if (want_baseline)
    ctx.baseline.prepare(bf16, shape.batch, max_len, shape.num_heads, head_dim, ref, want_backward);
  ctx.lib = lib;
  ctx.ref = ref;
  ctx.lens = lens.as<int32_t>();

  for (int causal : opts.causal) {
    for (Ragged ragged : opts.ragged) {
      std::vector<int32_t> host_lens = make_lengths(ragged, shape.batch, max_len);
      SIGATTN_BENCH_CHECK_CUDA(cudaMemcpyAsync(lens.get(), host_lens.data(), lens.bytes(),
                                               cudaMemcpyHostToDevice, ctx.stream));
      SIGATTN_BENCH_CHECK_CUDA(cudaStreamSynchronize(ctx.stream));
      std::vector<int32_t> full(static_cast<size_t>(shape.batch), max_len);
      double flop_real = forward_flop(host_lens, shape.num_heads, head_dim, causal != 0);
      double flop_padded = forward_flop(full, shape.num_heads, head_dim, causal != 0);
      int64_t real_tokens = 0;
      for (int32_t len : host_lens) real_tokens += len;

      for (PathKind path : opts.paths) {
        for (Dir dir : opts.dirs) {
          Row row;
          row.path = path;
          row.dir = dir;
          row.shape = shape;
          row.causal = causal != 0;
          row.ragged = ragged;
          row.deterministic = dir == Dir::kBackward && opts.deterministic;
          row.fast_sigmoid = path != PathKind::kBaseline && opts.fast_sigmoid;
          row.real_tokens = real_tokens;
          double factor = dir == Dir::kBackward ? kBackwardFlopFactor : 1.0;
          row.flop_real = factor * flop_real;
          row.flop_padded = factor * flop_padded;
          ok = measure_row(row, rows, ctx, total) && ok;
          print_row(row);
          rows.push_back(row);
          if (!opts.json.empty()) write_json(opts.json, rows, info, opts);
        }
      }
    }
  }
  ctx.baseline.release();
  return ok;
}

int run(int argc, char** argv) {
  Options opts = parse_options(argc, argv);

  int device_count = 0;
  cudaError_t err = cudaGetDeviceCount(&device_count);
  if (err != cudaSuccess || device_count == 0) {
    std::fprintf(stderr, "sigattn_bench: no CUDA device: %s\n",
                 err != cudaSuccess ? cudaGetErrorString(err) : "the device count is 0");
    return 2;
  }
  int device = 0;
  SIGATTN_BENCH_CHECK_CUDA(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  SIGATTN_BENCH_CHECK_CUDA(cudaGetDeviceProperties(&prop, device));

  if (opts.paths.empty()) {  // every path that can run here
    opts.paths.push_back(PathKind::kBaseline);
    if (prop.major == 9 && prop.minor == 0) opts.paths.push_back(PathKind::kHopper);
    if (prop.major >= 8) opts.paths.push_back(PathKind::kPortable);
  }
  // Baseline first and dense first, so that every row's baseline and dense rows come before it.
  // Lists are deduplicated (a repeated shape would be measured twice) and sorted.
  sort_unique(opts.paths);
  sort_unique(opts.dirs);
  sort_unique(opts.ragged);
  sort_unique(opts.dtypes);
  sort_unique(opts.head_dims);
  sort_unique(opts.causal);
  sort_unique(opts.seqlens);

  cudaStream_t stream = nullptr;
  SIGATTN_BENCH_CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cublasHandle_t cublas = nullptr;
  SIGATTN_BENCH_CHECK_CUBLAS(cublasCreate(&cublas));
  SIGATTN_BENCH_CHECK_CUBLAS(cublasSetStream(cublas, stream));
  GpuClock clock(device);
  Timer timer(stream, static_cast<size_t>(prop.l2CacheSize), &clock);
  Baseline baseline(cublas, stream, prop.multiProcessorCount);
  DeviceBuffer scratch;
  scratch.allocate(2 * sizeof(double));

  RunInfo info = print_header(device, prop, opts);
  size_t total = opts.paths.size() * opts.dirs.size() * opts.dtypes.size() * opts.head_dims.size() *
                 opts.causal.size() * opts.seqlens.size() * opts.ragged.size();
  std::vector<Row> rows;
  bool any_error = false;
  Context ctx{opts, device, stream, timer, baseline, {}, {}, nullptr, scratch.as<double>()};

  for (ElementType dtype : opts.dtypes) {
    for (int head_dim : opts.head_dims) {
      for (int max_len : opts.seqlens) {
        Shape shape;
        shape.bf16 = dtype == ElementType::kBF16;
        shape.head_dim = head_dim;
        shape.max_len = max_len;
        shape.num_heads = opts.hidden / head_dim;
        shape.batch = static_cast<int32_t>(std::max<int64_t>(1, opts.tokens / max_len));
        any_error = !run_shape(shape, ctx, info, total, rows) || any_error;
      }
    }
  }
  SIGATTN_BENCH_CHECK_CUBLAS(cublasDestroy(cublas));
  SIGATTN_BENCH_CHECK_CUDA(cudaStreamDestroy(stream));
  return any_error ? 1 : 0;
}

}  // namespace
}  // namespace sigattn_bench

int main(int argc, char** argv) { return sigattn_bench::run(argc, argv); }

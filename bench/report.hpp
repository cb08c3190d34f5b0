// sigattn_bench: the rows of the report, the markdown table and the JSON file.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <string>
#include <vector>

#include "bench_options.hpp"

#define SIGATTN_BENCH_STRINGIFY_IMPL(x) #x
#define SIGATTN_BENCH_STRINGIFY(x) SIGATTN_BENCH_STRINGIFY_IMPL(x)

namespace sigattn_bench {

/// Milliseconds over the timed runs of one row.
struct Timing {
  double median_ms = 0.0;
  double min_ms = 0.0;
  double max_ms = 0.0;
  int warmup_runs = 0;  ///< untimed runs before the timed ones, the time-based ones included
  /// NVML readings taken while the timed runs were in flight (means; reasons OR-ed); NaN and 0
  /// without NVML or when the runs ended before the first reading.
  double sm_mhz = std::numeric_limits<double>::quiet_NaN();
  double power_w = std::numeric_limits<double>::quiet_NaN();
  unsigned long long clock_reasons = 0;
  int clock_samples = 0;
};

/// A value that was not measured: "-" in the table, null in the JSON.
constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

/// One [B, S, H, D] problem; H = Hq = Hkv.
struct Shape {
  bool bf16 = true;
  int32_t batch = 0;
  int32_t num_heads = 0;
  int32_t head_dim = 0;
  int32_t max_len = 0;
  int64_t elements() const { return int64_t{batch} * max_len * num_heads * head_dim; }
};

/// One line of the report: what was measured, how it went, and the derived columns.
struct Row {
  PathKind path = PathKind::kBaseline;
  Dir dir = Dir::kForward;
  Shape shape;
  bool causal = false;
  Ragged ragged = Ragged::kDense;
  bool deterministic = false;
  bool fast_sigmoid = false;  ///< the library's SigmoidMode::kFast (never the baseline)
  int64_t real_tokens = 0;
  double flop_real = 0.0;     ///< this direction's FLOP on the real tokens
  double flop_padded = 0.0;   ///< the same on the padded shape (every length S)
  std::string status = "ok";  ///< ok, n/a (path not available), OOM, error
  std::string note;
  Timing time;
  double tflops_real = kNone;
  double tflops_padded = kNone;
  double efficiency = kNone;  ///< tflops_real / the dense row's tflops_real (same path and shape)
  double speedup = kNone;     ///< baseline ms / this row's ms (same config)
  double rel_diff = kNone;    ///< ||out - baseline out|| / ||baseline out||, worst output; inf
                              ///< when the output holds NaN or Inf
};

/// What every JSON row repeats.
struct RunInfo {
  std::string device;
  std::string commit;
  std::string date;
};

/// The commit: SIGATTN_GIT_COMMIT from the build (a bare token or a string literal), else the
/// environment variable of that name, else "unknown".
inline std::string git_commit() {
  std::string commit;
#ifdef SIGATTN_GIT_COMMIT
  for (char c : std::string(SIGATTN_BENCH_STRINGIFY(SIGATTN_GIT_COMMIT)))
    if (c != '"' && c != '\\') commit += c;
#endif
  if (commit.empty()) {
    char const* env = std::getenv("SIGATTN_GIT_COMMIT");
    if (env != nullptr) commit = env;
  }
  return commit.empty() ? "unknown" : commit;
}

/// The current time, ISO 8601 in UTC.
inline std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

/// "fwd", "bwd", or "bwd-det" for the deterministic backward; "-fast" appended with the fast
/// sigmoid.
inline std::string dir_name(Row const& row) {
  std::string name = row.dir == Dir::kForward ? "fwd" : row.deterministic ? "bwd-det" : "bwd";
  return row.fast_sigmoid ? name + "-fast" : name;
}

/// printf-formats a value; "-" for kNone.
inline std::string fmt(double value, char const* format) {
  if (std::isnan(value)) return "-";
  char text[64];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

/// The markdown table's column names and alignment row.
inline void print_table_header() {
  std::printf(
      "| path | dir | dtype | D | causal | ragged | B | Hq | S | ms median | ms min | ms max | "
      "TFLOP/s real | TFLOP/s padded | padded/dense eff. | speedup vs baseline | "
      "rel. diff vs baseline | SM MHz | W |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
}

/// One table row; a row that did not run shows its status (n/a, OOM, error) in place of the time.
inline void print_row(Row const& r) {
  bool ok = r.status == "ok";
  std::printf(
      "| %s | %s | %s | %d | %d | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
      "%s |\n",
      path_name(r.path), dir_name(r).c_str(), r.shape.bf16 ? "bf16" : "fp16", r.shape.head_dim,
      r.causal ? 1 : 0, ragged_name(r.ragged), r.shape.batch, r.shape.num_heads, r.shape.max_len,
      ok ? fmt(r.time.median_ms, "%.3f").c_str() : r.status.c_str(),
      ok ? fmt(r.time.min_ms, "%.3f").c_str() : "-", ok ? fmt(r.time.max_ms, "%.3f").c_str() : "-",
      fmt(r.tflops_real, "%.1f").c_str(), fmt(r.tflops_padded, "%.1f").c_str(),
      fmt(r.efficiency, "%.2f").c_str(), fmt(r.speedup, "%.2fx").c_str(),
      fmt(r.rel_diff, "%.1e").c_str(), fmt(ok ? r.time.sm_mhz : kNone, "%.0f").c_str(),
      fmt(ok ? r.time.power_w : kNone, "%.0f").c_str());
  std::fflush(stdout);
}

/// "0x..." of a bit set.
inline std::string hex(unsigned long long bits) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%llx", bits);
  return text;
}

/// A quoted, escaped JSON string.
inline std::string json_string(std::string const& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// Measurements with 10 significant digits; FLOP counts (exact integers below 2^53) in full.
/// JSON has no NaN or Inf: those become null.
inline std::string json_number(double value, char const* format = "%.10g") {
  return std::isfinite(value) ? fmt(value, format) : "null";
}

/// Rewrites the whole file, so that an interrupted sweep still leaves a valid array.
inline void write_json(std::string const& path, std::vector<Row> const& rows, RunInfo const& info,
                       Options const& opts) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "sigattn_bench: cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::fprintf(f, "[\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    Row const& r = rows[i];
    bool ok = r.status == "ok";
    std::string dtype = r.shape.bf16 ? "bf16" : "fp16";
    std::string config = std::string(path_name(r.path)) + " " + dir_name(r) + " " + dtype +
                         " D=" + std::to_string(r.shape.head_dim) + (r.causal ? " causal" : "");
    std::fprintf(
        f,
        "  {\"config\": %s, \"path\": %s, \"dir\": %s, \"dtype\": %s, \"head_dim\": %d, "
        "\"causal\": %s, \"ragged\": %s, \"deterministic\": %s, \"sigmoid\": %s, \"batch\": %d, "
        "\"num_heads\": %d, "
        "\"num_kv_heads\": %d, \"max_len\": %d, \"real_tokens\": %lld, \"flop_real\": %s, "
        "\"flop_padded\": %s, \"status\": %s, \"note\": %s, \"ms_median\": %s, \"ms_min\": %s, "
        "\"ms_max\": %s, \"tflops_real\": %s, \"tflops_padded\": %s, \"efficiency\": %s, "
        "\"speedup_vs_baseline\": %s, \"rel_diff_vs_baseline\": %s, \"iters\": %d, "
        "\"warmup\": %d, \"cooldown_ms\": %s, \"warmup_ms\": %s, \"warmup_runs\": %d, "
        "\"sm_mhz\": %s, "
        "\"power_w\": %s, \"clock_samples\": %d, \"clock_event_reasons\": %s, "
        "\"device\": %s, \"commit\": %s, \"date\": %s}%s\n",
        json_string(config).c_str(), json_string(path_name(r.path)).c_str(),
        json_string(r.dir == Dir::kForward ? "fwd" : "bwd").c_str(), json_string(dtype).c_str(),
        r.shape.head_dim, r.causal ? "true" : "false", json_string(ragged_name(r.ragged)).c_str(),
        r.deterministic ? "true" : "false",
        json_string(r.fast_sigmoid ? "fast" : "accurate").c_str(), r.shape.batch, r.shape.num_heads,
        r.shape.num_heads, r.shape.max_len, static_cast<long long>(r.real_tokens),
        json_number(r.flop_real, "%.0f").c_str(), json_number(r.flop_padded, "%.0f").c_str(),
        json_string(r.status).c_str(), json_string(r.note).c_str(),
        json_number(ok ? r.time.median_ms : kNone).c_str(),
        json_number(ok ? r.time.min_ms : kNone).c_str(),
        json_number(ok ? r.time.max_ms : kNone).c_str(), json_number(r.tflops_real).c_str(),
        json_number(r.tflops_padded).c_str(), json_number(r.efficiency).c_str(),
        json_number(r.speedup).c_str(), json_number(r.rel_diff).c_str(), opts.iters, opts.warmup,
        json_number(opts.cooldown_ms).c_str(), json_number(opts.warmup_ms).c_str(),
        ok ? r.time.warmup_runs : 0, json_number(ok ? r.time.sm_mhz : kNone).c_str(),
        json_number(ok ? r.time.power_w : kNone).c_str(), ok ? r.time.clock_samples : 0,
        json_string(hex(ok ? r.time.clock_reasons : 0)).c_str(), json_string(info.device).c_str(),
        json_string(info.commit).c_str(), json_string(info.date).c_str(),
        i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(f, "]\n");
  if (std::fclose(f) != 0) {
    std::fprintf(stderr, "sigattn_bench: error writing %s\n", path.c_str());
    std::exit(1);
  }
}

}  // namespace sigattn_bench

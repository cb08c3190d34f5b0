// sigattn_bench: command-line options.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace sigattn_bench {

/// How the real lengths of a batch are chosen (q_len == kv_len for every sequence).
enum class Ragged { kDense, kUniform, kPad25 };

inline char const* ragged_name(Ragged r) {
  switch (r) {
    case Ragged::kDense:
      return "dense";
    case Ragged::kUniform:
      return "uniform";
    case Ragged::kPad25:
      return "pad25";
  }
  return "?";
}

enum class PathKind { kBaseline, kHopper, kPortable };
enum class ElementType { kBF16, kFP16 };
enum class Dir { kForward, kBackward };

inline char const* path_name(PathKind p) {
  switch (p) {
    case PathKind::kBaseline:
      return "baseline";
    case PathKind::kHopper:
      return "hopper";
    case PathKind::kPortable:
      return "portable";
  }
  return "?";
}

struct Options {
  std::vector<PathKind> paths;  ///< empty: every path that runs on the device (decided in main)
  std::vector<Dir> dirs{Dir::kForward, Dir::kBackward};
  std::vector<ElementType> dtypes{ElementType::kBF16};
  std::vector<int> head_dims{64, 128};
  std::vector<int> causal{0};
  std::vector<int> seqlens{512, 1024, 2048, 4096, 8192, 16384};
  std::vector<Ragged> ragged{Ragged::kDense, Ragged::kUniform, Ragged::kPad25};
  int64_t tokens = 16384;
  int hidden = 2048;
  int iters = 20;
  int warmup = 3;
  double warmup_ms = 1000.0;  ///< then untimed runs for about this long (GPU time) per row
  double cooldown_ms = 0.0;  ///< the GPU left idle this long before each row
  bool deterministic = false;
  bool fast_sigmoid = false;  ///< the library paths with SigmoidMode::kFast
  bool fwd_workspace = true;  ///< forward() given workspace_bytes() of workspace (the split tail)
  bool null_lens = false;  ///< dense rows call the library with q_lens = kv_lens = null
  bool quick = false;
  std::string json;
};

inline char const* const kUsage =
    "usage: sigattn_bench [options]\n"
    "  --path LIST      hopper,portable,baseline (default: those that run on this device)\n"
    "  --dir LIST       fwd,bwd (default: both)\n"
    "  --dtype LIST     bf16,fp16 (default: bf16)\n"
    "  --hdim LIST      head dims (default: 64,128)\n"
    "  --causal LIST    0,1 (default: 0)\n"
    "  --seqlens LIST   padded lengths S, multiples of 8 (default: 512,...,16384)\n"
    "  --tokens N       tokens per batch; B = N / S (default: 16384)\n"
    "  --hidden N       hidden size; Hq = Hkv = N / D (default: 2048)\n"
    "  --ragged LIST    dense,uniform,pad25 (default: all three)\n"
    "  --iters N        timed runs per row (default: 20; 5 with --quick)\n"
    "  --warmup N       untimed runs before them (default: 3; 1 with --quick)\n"
    "  --warmup-ms MS   then more untimed runs (L2 flushed, as the timed ones) until about MS\n"
    "                   ms of GPU time have passed, so that each row is timed at its own steady\n"
    "                   clock under the board's power limit (default: 1000; 100 with --quick;\n"
    "                   0 turns it off)\n"
    "  --cooldown-ms MS the GPU left idle for MS ms before each row (default: 0). With\n"
    "                   --warmup-ms 0, every row is timed from the idle clock: short rows at\n"
    "                   the peak clock, before the power limit acts\n"
    "  --deterministic  run the backward in its deterministic mode\n"
    "  --no-fwd-workspace  call forward() without a workspace (no split tail on the Hopper\n"
    "                   path; by default it gets workspace_bytes() of it)\n"
    "  --null-lens      dense rows call the library without length arrays (q_lens = kv_lens =\n"
    "                   null: every sequence full), as a caller of full sequences does; by\n"
    "                   default every row passes an array of its lengths\n"
    "  --sigmoid MODE   accurate or fast: the library's sigmoid (default: accurate; the\n"
    "                   baseline always computes the exact one)\n"
    "  --quick          small sweep: S 1024,4096, D 128, bf16, dense+uniform, fewer runs\n"
    "  --json FILE      also write every row to FILE as a JSON array\n"
    "Exit status: 0 done, 1 error (bad option or a failed row), 2 no CUDA device.\n";

[[noreturn]] inline void usage_error(std::string const& message) {
  std::fprintf(stderr, "sigattn_bench: %s\n%s", message.c_str(), kUsage);
  std::exit(1);
}

inline std::vector<std::string> split_list(std::string const& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  if (items.empty()) usage_error("empty list '" + text + "'");
  return items;
}

inline int64_t parse_int(std::string const& text, char const* option) {
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0)
    usage_error(std::string("bad integer '") + text + "' for " + option);
  return value;
}

template <class T, class Parse>
std::vector<T> parse_list(std::string const& text, Parse parse) {
  std::vector<T> out;
  for (std::string const& item : split_list(text)) out.push_back(parse(item));
  return out;
}

/// Parses argv; exits 0 after --help and 1 on a bad option. --quick changes only the defaults of
/// the options that are not given explicitly.
inline Options parse_options(int argc, char** argv) {
  Options o;
  bool set_seqlens = false, set_hdims = false, set_dtypes = false, set_ragged = false;
  bool set_iters = false, set_warmup = false, set_warmup_ms = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto next = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      std::exit(0);
    } else if (arg == "--path") {
      o.paths = parse_list<PathKind>(next(), [](std::string const& s) {
        if (s == "baseline") return PathKind::kBaseline;
        if (s == "hopper") return PathKind::kHopper;
        if (s == "portable") return PathKind::kPortable;
        usage_error("unknown path '" + s + "'");
      });
    } else if (arg == "--dir") {
      o.dirs = parse_list<Dir>(next(), [](std::string const& s) {
        if (s == "fwd") return Dir::kForward;
        if (s == "bwd") return Dir::kBackward;
        usage_error("unknown direction '" + s + "'");
      });
    } else if (arg == "--dtype") {
      o.dtypes = parse_list<ElementType>(next(), [](std::string const& s) {
        if (s == "bf16") return ElementType::kBF16;
        if (s == "fp16") return ElementType::kFP16;
        usage_error("unknown dtype '" + s + "'");
      });
      set_dtypes = true;
    } else if (arg == "--hdim") {
      o.head_dims = parse_list<int>(next(), [](std::string const& s) {
        int64_t d = parse_int(s, "--hdim");
        if (d <= 0 || d % 8 != 0 || d > 1024) usage_error("head dim must be a multiple of 8");
        return static_cast<int>(d);
      });
      set_hdims = true;
    } else if (arg == "--causal") {
      o.causal = parse_list<int>(next(), [](std::string const& s) {
        if (s == "0" || s == "1") return s == "1" ? 1 : 0;
        usage_error("--causal takes 0 and/or 1");
      });
    } else if (arg == "--seqlens") {
      o.seqlens = parse_list<int>(next(), [](std::string const& s) {
        int64_t len = parse_int(s, "--seqlens");
        if (len < 8 || len % 8 != 0 || len > (1 << 20))
          usage_error("sequence lengths must be positive multiples of 8");
        return static_cast<int>(len);
      });
      set_seqlens = true;
    } else if (arg == "--ragged") {
      o.ragged = parse_list<Ragged>(next(), [](std::string const& s) {
        if (s == "dense") return Ragged::kDense;
        if (s == "uniform") return Ragged::kUniform;
        if (s == "pad25") return Ragged::kPad25;
        usage_error("unknown ragged mode '" + s + "'");
      });
      set_ragged = true;
    } else if (arg == "--tokens") {
      o.tokens = parse_int(next(), "--tokens");
    } else if (arg == "--hidden") {
      o.hidden = static_cast<int>(parse_int(next(), "--hidden"));
    } else if (arg == "--iters") {
      o.iters = static_cast<int>(parse_int(next(), "--iters"));
      set_iters = true;
    } else if (arg == "--warmup") {
      o.warmup = static_cast<int>(parse_int(next(), "--warmup"));
      set_warmup = true;
    } else if (arg == "--warmup-ms") {
      o.warmup_ms = static_cast<double>(parse_int(next(), "--warmup-ms"));
      set_warmup_ms = true;
    } else if (arg == "--cooldown-ms") {
      o.cooldown_ms = static_cast<double>(parse_int(next(), "--cooldown-ms"));
    } else if (arg == "--json") {
      o.json = next();
    } else if (arg == "--deterministic") {
      o.deterministic = true;
    } else if (arg == "--no-fwd-workspace") {
      o.fwd_workspace = false;
    } else if (arg == "--null-lens") {
      o.null_lens = true;
    } else if (arg == "--sigmoid") {
      std::string const mode = next();
      if (mode != "accurate" && mode != "fast") usage_error("--sigmoid takes accurate or fast");
      o.fast_sigmoid = mode == "fast";
    } else if (arg == "--quick") {
      o.quick = true;
    } else {
      usage_error("unknown option '" + arg + "'");
    }
  }
  if (o.quick) {
    if (!set_seqlens) o.seqlens = {1024, 4096};
    if (!set_hdims) o.head_dims = {128};
    if (!set_dtypes) o.dtypes = {ElementType::kBF16};
    if (!set_ragged) o.ragged = {Ragged::kDense, Ragged::kUniform};
    if (!set_iters) o.iters = 5;
    if (!set_warmup) o.warmup = 1;
    if (!set_warmup_ms) o.warmup_ms = 100.0;
  }
  if (o.tokens < 1) usage_error("--tokens must be positive");
  if (o.iters < 1) usage_error("--iters must be at least 1");
  if (o.warmup < 0) usage_error("--warmup must not be negative");
  if (o.warmup_ms < 0.0 || o.warmup_ms > 60000.0)
    usage_error("--warmup-ms takes 0 to 60000 milliseconds");
  if (o.cooldown_ms < 0.0 || o.cooldown_ms > 60000.0)
    usage_error("--cooldown-ms takes 0 to 60000 milliseconds");
  for (int d : o.head_dims)
    if (o.hidden <= 0 || o.hidden % d != 0)
      usage_error("--hidden must be a positive multiple of every head dim");
  return o;
}

}  // namespace sigattn_bench

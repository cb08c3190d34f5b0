// The one table of supported kernel configurations. The dispatcher, the tests and the benchmark
// all iterate kKernelConfigs; adding a row (and, for a new path, its launcher) is the whole job
// of adding a config. Plain host C++: no device code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sigattn/api.hpp"

// Compile-time pruning: define any of these to 0 (the CMake cache options SIGATTN_HEAD_DIMS and
// SIGATTN_DTYPES do it) to leave the matching rows out of the dispatcher and its instantiations.
#ifndef SIGATTN_ENABLE_HDIM_64
#define SIGATTN_ENABLE_HDIM_64 1
#endif
#ifndef SIGATTN_ENABLE_HDIM_128
#define SIGATTN_ENABLE_HDIM_128 1
#endif
#ifndef SIGATTN_ENABLE_BF16
#define SIGATTN_ENABLE_BF16 1
#endif
#ifndef SIGATTN_ENABLE_FP16
#define SIGATTN_ENABLE_FP16 1
#endif

// The Hopper rows need device code built for sm_90a (`-gencode=arch=compute_90a,code=sm_90a`);
// a program that compiles for that target defines SIGATTN_ENABLE_SM90A=1. Through CMake, linking
// sigattn::sigattn from a target whose CUDA_ARCHITECTURES names 90a defines SIGATTN_CMAKE_SM90A=1,
// which does it (a definition of SIGATTN_ENABLE_SM90A, 0 or 1, takes precedence). Without either
// those rows are left out and sm_90 devices run the portable path.
#ifndef SIGATTN_ENABLE_SM90A
#if defined(SIGATTN_CMAKE_SM90A) && SIGATTN_CMAKE_SM90A
#define SIGATTN_ENABLE_SM90A 1
#else
#define SIGATTN_ENABLE_SM90A 0
#endif
#endif

namespace sigattn {

/// Which pass a kernel computes.
enum class Direction : int32_t { kForward = 0, kBackward = 1 };

/// Tile shape of one kernel: query rows and key rows per CTA tile, warps, pipeline stages.
struct TileConfig {
  int32_t tile_q;
  int32_t tile_kv;
  int32_t warps;
  int32_t stages;
};

/// One supported (direction, path, head dim, dtype) with the tile it runs and the oldest compute
/// capability (major * 10 + minor) it needs. A row with a threshold serves only calls whose
/// max_q_len is at least it: `min_max_q_len` for calls without a causal mask,
/// `min_max_q_len_causal` for calls with one (0: every call). Such a row is listed before the
/// general row of the same key, and the dispatcher takes the first row that matches. A row with
/// `full_rows_from` also serves, below its threshold, the non-causal calls of full query sequences
/// (no q_lens) whose max_q_len is at least that, when its query tile pads max_q_len to fewer rows
/// than the general row's tile does (detail::find_config): there every sequence is max_q_len long,
/// so the rows the tile pads are the work it wastes. With `rows_rule_padded_too` the same rule
/// takes the non-causal calls that pass q_lens (padded batches) as well.
struct KernelConfig {
  Direction direction;
  Path path;
  int32_t min_cc;
  int32_t head_dim;
  DType dtype;
  TileConfig tile;
  int32_t min_max_q_len = 0;
  int32_t min_max_q_len_causal = 0;
  int32_t full_rows_from = 0;
  bool rows_rule_padded_too = false;
};

/// The smallest max_q_len the row serves, for a call with or without a causal mask.
constexpr int32_t min_max_q_len_of(KernelConfig const& c, bool causal) {
  return causal ? c.min_max_q_len_causal : c.min_max_q_len;
}

/// Whether the row serves only some calls (a general row of its key serves the rest).
constexpr bool serves_some_calls_only(KernelConfig const& c) {
  return c.min_max_q_len > 0 || c.min_max_q_len_causal > 0;
}

// docs/tuning.md gives the reason and the benchmark command behind every row.
inline constexpr KernelConfig kKernelConfigs[] = {
    // Hopper forward (sm_90a): a producer warpgroup and tile_q / 64 consumer warpgroups of 64 query
    // rows; `warps` counts all warps. D = 64: four consumers (256 rows) with 64-key tiles and four
    // K/V stages below a max_q_len of 3072 (session 29: dense 1K +7.7%, causal dense 1K +19-21%, 2K
    // -1.2 to +7.5% (causal uniform -2%), 2560 +1 to +7%; at 3K the causal rows lost 2-10%), from
    // it on three consumers (192 rows), 128-key tiles, three K/V stages. D = 128: two consumers,
    // 128-key tiles, two stages, O staged in shared memory (bench/tune measured 160- and 176-key
    // tiles 7-19% slower; docs/tuning.md); from a max_q_len of 12288 on (16384 under a causal
    // mask), three consumers with 64-key tiles (padded batches 2-7% faster there; at 1K and 4K the
    // 192-row quantisation of a dense batch costs more than they gain; under a causal mask at 8K
    // and 12K, with the order in blocks of levels (fwd_scheduler.cuh), they measured 0.94-1.005 of
    // the 128 x 128 row in session 19). Both rows for long calls also take non-causal calls of full
    // query sequences (no q_lens) where their 192-row tiles pad max_q_len to fewer rows than the
    // general row's tiles (sessions 30-31, bench/tune, dense): D = 64 from 321, +0.5 to +16.5% at
    // 340, 352, 384, 520, 544, 576, 800, 832, 864, 896, 1152, 1344, 1920, 2112 and 2688 (-1% at
    // 900). Its 128-key tiles can pad the keys more than the general row's 64-key ones: above 320
    // the rows it saves outweighed that where measured (520, 544, 800, 832, 900: +12 to -1%), at
    // 192 and 320 not (-22.5 and -8.5%). D = 128 from 129, every length where they pad fewer (its
    // 64-key tiles never pad more keys): +3.5 to +19.5% at 150, 160, 192, 540, 560, 576, 930, 960,
    // 1300, 1344, 1728 and 2880. At D = 128 also for padded batches (q_lens given) at those
    // max_q_len: on the uniform rows (lengths in [S/4, S]) 0 to +14% at 150, 160, 192, 540, 560,
    // 576, 930, 960, 1300, 1344, 1728 and 2880, none slower. Not for padded batches at D = 64,
    // where the 256-row tiles ran up to 11% faster on the uniform rows at 340-864 and 3% at
    // 1152-1920. Not under a causal mask, where at D = 64 the 64-key tiles cut the diagonal finer
    // (dense: -1% at 1152 and -8% at 2688 against +8-16% at 896, 1344, 1920 and 2112; D = 128
    // causal dense: -6 to +8%, not taken).
    {Direction::kForward, Path::kHopper, 90, 64, DType::kBF16, {192, 128, 16, 3}, 3072, 3072, 321},
    {Direction::kForward, Path::kHopper, 90, 64, DType::kFP16, {192, 128, 16, 3}, 3072, 3072, 321},
    {Direction::kForward, Path::kHopper, 90, 64, DType::kBF16, {256, 64, 20, 4}},
    {Direction::kForward, Path::kHopper, 90, 64, DType::kFP16, {256, 64, 20, 4}},
    {Direction::kForward, Path::kHopper, 90, 128, DType::kBF16, {192, 64, 16, 3}, 12288, 16384,
     129, true},
    {Direction::kForward, Path::kHopper, 90, 128, DType::kFP16, {192, 64, 16, 3}, 12288, 16384,
     129, true},
    {Direction::kForward, Path::kHopper, 90, 128, DType::kBF16, {128, 128, 12, 2}},
    {Direction::kForward, Path::kHopper, 90, 128, DType::kFP16, {128, 128, 12, 2}},
    // Portable forward (sm_80+): 4 warps x 32 query rows, 64-key tiles, double-buffered K/V.
    {Direction::kForward, Path::kPortable, 80, 64, DType::kBF16, {128, 64, 4, 2}},
    {Direction::kForward, Path::kPortable, 80, 64, DType::kFP16, {128, 64, 4, 2}},
    {Direction::kForward, Path::kPortable, 80, 128, DType::kBF16, {128, 32, 4, 3}},
    {Direction::kForward, Path::kPortable, 80, 128, DType::kFP16, {128, 32, 4, 3}},
    // Portable backward (sm_80+): a CTA owns 64 keys (4 warps x 16) and streams 64-query tiles
    // of Q and dO, double-buffered. tile_q is the streamed query tile, tile_kv the owned keys.
    {Direction::kBackward, Path::kPortable, 80, 64, DType::kBF16, {64, 64, 4, 2}},
    {Direction::kBackward, Path::kPortable, 80, 64, DType::kFP16, {64, 64, 4, 2}},
    {Direction::kBackward, Path::kPortable, 80, 128, DType::kBF16, {64, 64, 4, 2}},
    {Direction::kBackward, Path::kPortable, 80, 128, DType::kFP16, {64, 64, 4, 2}},
    // Hopper backward (sm_90a): a CTA owns 128 keys (two consumer warpgroups of 64, dK and dV in
    // registers) and streams query tiles of Q and dO through two TMA stages: 128 queries at
    // D = 64, 64 at D = 128 (the 240-register budget of a consumer). `warps` counts all 12 warps.
    {Direction::kBackward, Path::kHopper, 90, 64, DType::kBF16, {128, 128, 12, 2}},
    {Direction::kBackward, Path::kHopper, 90, 64, DType::kFP16, {128, 128, 12, 2}},
    {Direction::kBackward, Path::kHopper, 90, 128, DType::kBF16, {64, 128, 12, 2}},
    {Direction::kBackward, Path::kHopper, 90, 128, DType::kFP16, {64, 128, 12, 2}},
};

inline constexpr size_t kNumKernelConfigs = sizeof(kKernelConfigs) / sizeof(kKernelConfigs[0]);

/// False for rows pruned at compile time.
constexpr bool is_enabled(KernelConfig const& c) {
  bool hdim = (c.head_dim == 64 && SIGATTN_ENABLE_HDIM_64) ||
              (c.head_dim == 128 && SIGATTN_ENABLE_HDIM_128);
  bool dtype = (c.dtype == DType::kBF16 && SIGATTN_ENABLE_BF16) ||
               (c.dtype == DType::kFP16 && SIGATTN_ENABLE_FP16);
  bool arch = c.path != Path::kHopper || SIGATTN_ENABLE_SM90A;
  return hdim && dtype && arch;
}

/// Can a kernel of this row run on a device of compute capability `cc` (major * 10 + minor)?
/// sm_90a code runs on 9.0 only; the portable code on its minimum and everything newer.
constexpr bool runs_on(KernelConfig const& c, int cc) {
  return c.path == Path::kHopper ? cc == 90 : cc >= c.min_cc;
}

/// Human-readable names, for tests and benchmark tables.
constexpr char const* to_string(DType t) { return t == DType::kBF16 ? "bf16" : "fp16"; }
constexpr char const* to_string(Path p) {
  return p == Path::kHopper ? "hopper" : p == Path::kPortable ? "portable" : "auto";
}
constexpr char const* to_string(Direction d) { return d == Direction::kForward ? "fwd" : "bwd"; }

}  // namespace sigattn

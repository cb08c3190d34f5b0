// The length-aware order of the persistent Hopper forward's work tiles (SPEC section 4: longest
// sequences first, so that the last wave is not one long straggler), computed by every CTA from
// the device-side lengths, in shared memory, before the warp specialisation. No workspace and no
// global state: every CTA derives the same order, and CTA c takes positions c, 2G - 1 - c,
// 2G + c, 4G - 1 - c, ... of it (G CTAs, a snake, so that CTAs that take a heavy tile in one round
// take a light one in the next).
//
// The order: first the real tiles (query rows below q_len), then the tiles past q_len, which only
// write zeros (in batch order). The real tiles:
//   - without a causal mask, batch entries by decreasing kv_len (ties by index), and within a
//     batch entry head by head, each head's query tiles last to first. Costs are non-increasing
//     along the order, and all the tiles of one (batch, head) are adjacent, so the CTAs that
//     stream its K and V at the same time share them in L2.
//   - under a causal mask, batch entries by decreasing q_len (ties by index), as a tile's cost
//     grows with its query tile index m. When a sequence's saw tooth of costs is long against the
//     wave (causal_by_levels: 2 num_q_tiles >= G), the order goes by levels, m from the largest
//     down: level m holds tile m of every (batch entry, head) that has it, entries in that order,
//     heads inner. Head by head instead, the costs would run as one saw tooth per (batch, head),
//     as long as the wave (128 key tiles down to 1 at S = 16K, 132 CTAs), which the snake, made
//     for a non-increasing sequence, cannot balance: measured on an H200 (D = 128, bf16, dense
//     causal, 16384 tokens, hidden 2048) 566 TFLOP/s by levels against 382 head by head at
//     S = 16K. A shorter saw tooth (below half a wave) the snake already balances, and there the
//     order stays head by head, which keeps the tiles of one head running together so that they
//     share its K and V in L2; by levels, the concurrent tiles spread over all the heads, whose K
//     and V (128 MB) do not fit the 60 MB L2: at S = 1K (8 tiles a head) 307 by levels against
//     336 head by head, at S = 4K (32) 480 against 477.
// With more than kMaxSortedBatches batch entries, or by levels more than kMaxLevels query tiles,
// the real and zero tiles keep the plain order (batch, head, query tile last to first).
#pragma once

#include <climits>

#include "sigattn/detail/config.cuh"
#include "sigattn/kernel/fwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"

namespace sigattn::kernel::sm90 {

constexpr int kMaxSortedBatches = 1024;
constexpr int kMaxLevels = 1024;  // query tiles per sequence ordered by level (causal)

/// Shared-memory tables of the order: the batch entries by decreasing kv_len (q_len under a
/// causal mask), prefix sums of real tiles (in that order) and of zero tiles (in batch order),
/// and when the causal order goes by levels prefix sums of the real tiles per level (level l is
/// query tile num_q_tiles - 1 - l).
struct FwdScheduleSmem {
  int order[kMaxSortedBatches];
  int real_prefix[kMaxSortedBatches + 1];
  int zero_prefix[kMaxSortedBatches + 1];
  int level_prefix[kMaxLevels + 1];
  int sorted;  // 1 when the tables are in use
  int levels;  // 1 when the real tiles go by levels (causal_by_levels)
};

/// Whether the causal order goes by levels: when a sequence's saw tooth of costs (num_q_tiles, the
/// query tiles of the longest sequence) is at least half the wave (`grid` persistent CTAs). A
/// shorter one the snake balances head by head, and head by head keeps K and V shared in L2 (see
/// above). Host and device, so that the CPU tests apply the same rule.
SIGATTN_HOST_DEVICE constexpr bool causal_by_levels(bool causal, int num_q_tiles, int grid) {
  return causal && 2 * int64_t{num_q_tiles} >= grid;
}

/// Exclusive prefix sums of count(i), i in [0, n), into out[0 .. n] (out[n] the total), by one
/// warp: lane l sums a contiguous chunk, then a shuffle scan over the lanes. count(i) may read
/// out[i] (a scan in place): each lane reads its own chunk's counts before it writes them.
template <class Count>
SIGATTN_DEVICE void warp_prefix_sums(int n, int lane, int* out, Count count) {
  int const chunk = (n + 31) / 32;
  int const begin = min(lane * chunk, n);
  int const end = min(begin + chunk, n);
  int sum = 0;
  for (int i = begin; i < end; ++i) sum += count(i);
  int incl = sum;
  SIGATTN_PRAGMA_UNROLL
  for (int d = 1; d < 32; d *= 2) {
    int const v = __shfl_up_sync(0xffffffffu, incl, d);
    if (lane >= d) incl += v;
  }
  int run = incl - sum;
  for (int i = begin; i < end; ++i) {
    int const c = count(i);
    out[i] = run;
    run += c;
  }
  if (lane == 31) out[n] = incl;
}

/// Builds the tables; called by every thread of the CTA, followed by a CTA-wide barrier.
template <int TileQ>
SIGATTN_DEVICE void build_fwd_schedule(FwdArgs const& args, FwdScheduleSmem& s) {
  FwdParams const& p = args.p;
  int const batch = p.batch;
  bool const causal = p.causal != Causal::kNone;
  // The same for every CTA: gridDim.x is the wave.
  bool const levels = causal_by_levels(causal, args.num_q_tiles, static_cast<int>(gridDim.x));
  // (kMaxLevels bounds the level table only: head by head, a causal order takes any length.)
  if (batch > kMaxSortedBatches || args.num_tiles > INT_MAX ||
      (levels && args.num_q_tiles > kMaxLevels)) {
    if (threadIdx.x == 0) s.sorted = 0;
    return;
  }
  auto q_tiles = [&](int b) { return (clamp_len(p.q_lens, b, p.max_q_len) + TileQ - 1) / TileQ; };
  // Rank of each batch entry by (length descending, index ascending), the length being kv_len,
  // or q_len under a causal mask: a counting rank, spread over the CTA's threads (B^2 / threads
  // comparisons of lengths staged in real_prefix).
  int* const lens = s.real_prefix;
  for (int b = threadIdx.x; b < batch; b += blockDim.x)
    lens[b] = causal ? clamp_len(p.q_lens, b, p.max_q_len) : clamp_len(p.kv_lens, b, p.max_kv_len);
  __syncthreads();
  for (int b = threadIdx.x; b < batch; b += blockDim.x) {
    int const len = lens[b];
    int rank = 0;
    for (int o = 0; o < batch; ++o) {
      int const len_o = lens[o];
      rank += (len_o > len) || (len_o == len && o < b);
    }
    s.order[rank] = b;
  }
  __syncthreads();  // order complete, lens no longer read
  if (levels) {
    // Level l (query tile m = num_q_tiles - 1 - l) holds the entries whose q_tiles exceed m: a
    // prefix of the order (q_tiles is non-increasing along it), found by binary search. The
    // counts go into level_prefix, which warp 0 then scans in place.
    int const num_levels = args.num_q_tiles;
    for (int l = threadIdx.x; l < num_levels; l += blockDim.x) {
      int const m = num_levels - 1 - l;
      int lo = 0, hi = batch;  // first position whose entry has at most m query tiles
      while (lo < hi) {
        int const mid = (lo + hi) / 2;
        if (q_tiles(s.order[mid]) > m)
          lo = mid + 1;
        else
          hi = mid;
      }
      s.level_prefix[l] = lo * p.num_heads;
    }
    __syncthreads();
    if (threadIdx.x < 32)
      warp_prefix_sums(num_levels, threadIdx.x, s.level_prefix,
                       [&](int l) { return s.level_prefix[l]; });
  }
  // Prefix sums of the real tiles in the order and of the zero tiles in batch order, by warp 0.
  if (threadIdx.x < 32) {
    int const lane = threadIdx.x;
    warp_prefix_sums(batch, lane, s.real_prefix,
                     [&](int i) { return q_tiles(s.order[i]) * p.num_heads; });
    warp_prefix_sums(batch, lane, s.zero_prefix,
                     [&](int i) { return (args.num_q_tiles - q_tiles(i)) * p.num_heads; });
    if (lane == 0) {
      s.sorted = 1;
      s.levels = levels ? 1 : 0;
    }
  }
}

/// Position `k` of CTA `cta` among `ctas` in the snake assignment.
SIGATTN_HOST_DEVICE int64_t snake_position(int64_t k, int cta, int ctas) {
  return k * ctas + ((k & 1) ? ctas - 1 - cta : cta);
}

/// The largest i in [0, n) with prefix[i] <= x (prefix is non-decreasing, prefix[0] = 0).
SIGATTN_HOST_DEVICE int upper_index(int const* prefix, int n, int x) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    int const mid = (lo + hi + 1) / 2;
    if (prefix[mid] <= x)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/// The work tile at position `pos` of the order, given the tables and `q_tiles(b)`, the number of
/// query tiles of batch entry b that hold real rows (ceil(q_len_b / TileQ)). Host and device (the
/// CPU tests check that the order is a bijection, and that its costs are non-increasing).
template <class QTiles>
SIGATTN_HOST_DEVICE TileCoord tile_at_position(FwdScheduleSmem const& s, int batch, int num_heads,
                                               int num_q_tiles, int64_t pos, QTiles q_tiles) {
  TileCoord c;
  if (!s.sorted) {
    int64_t const bh = pos / num_q_tiles;
    c.m = num_q_tiles - 1 - static_cast<int>(pos % num_q_tiles);
    c.b = static_cast<int>(bh / num_heads);
    c.h = static_cast<int>(bh % num_heads);
    return c;
  }
  // (The tables are only built when the tile count fits in int.)
  int const x = static_cast<int>(pos);
  int const total_real = s.real_prefix[batch];
  if (x < total_real && s.levels) {
    int const l = upper_index(s.level_prefix, num_q_tiles, x);
    int const within = x - s.level_prefix[l];
    c.m = num_q_tiles - 1 - l;
    c.b = s.order[within / num_heads];
    c.h = within % num_heads;
  } else if (x < total_real) {
    int const i = upper_index(s.real_prefix, batch, x);
    c.b = s.order[i];
    int const tiles = q_tiles(c.b);
    int const within = x - s.real_prefix[i];
    c.h = within / tiles;
    c.m = tiles - 1 - within % tiles;
  } else {
    int const y = x - total_real;
    c.b = upper_index(s.zero_prefix, batch, y);
    int const tiles = q_tiles(c.b);
    int const zeros = num_q_tiles - tiles;
    int const within = y - s.zero_prefix[c.b];
    c.h = within / zeros;
    c.m = tiles + within % zeros;
  }
  return c;
}

/// The work tile at position `pos` of the order, in a kernel.
template <int TileQ>
SIGATTN_DEVICE TileCoord fwd_tile_at(FwdArgs const& args, FwdScheduleSmem const& s, int64_t pos) {
  FwdParams const& p = args.p;
  return tile_at_position(s, p.batch, p.num_heads, args.num_q_tiles, pos, [&](int b) {
    return (clamp_len(p.q_lens, b, p.max_q_len) + TileQ - 1) / TileQ;
  });
}

}  // namespace sigattn::kernel::sm90

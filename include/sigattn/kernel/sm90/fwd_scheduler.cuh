// The length-aware order of the persistent Hopper forward's work tiles (SPEC section 4: longest
// sequences first, so that the last wave is not one long straggler), computed by every CTA from
// the device-side lengths, in shared memory, before the warp specialisation. No workspace and no
// global state: every CTA derives the same order, and CTA c takes positions c, 2G - 1 - c,
// 2G + c, 4G - 1 - c, ... of it (G CTAs, a snake, so that CTAs that take a heavy tile in one round
// take a light one in the next).
//
// The order: first the real tiles (query rows below q_len), batch entries by decreasing kv_len
// (ties by index), and within a batch entry head by head, each head's query tiles last to first
// (all the tiles of one (batch, head) are adjacent, so the CTAs that stream its K and V at the
// same time share them in L2; under a causal mask the last query tiles are the heaviest). Then
// the tiles past q_len, which only write zeros. With more than kMaxSortedBatches batch entries the
// real and zero tiles keep the plain order (batch, head, query tile last to first).
#pragma once

#include <climits>

#include "sigattn/detail/config.cuh"
#include "sigattn/kernel/fwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"

namespace sigattn::kernel::sm90 {

constexpr int kMaxSortedBatches = 1024;

/// Shared-memory tables of the order: the batch entries by decreasing kv_len, and prefix sums of
/// real tiles (in that order) and of zero tiles (in batch order).
struct FwdScheduleSmem {
  int order[kMaxSortedBatches];
  int real_prefix[kMaxSortedBatches + 1];
  int zero_prefix[kMaxSortedBatches + 1];
  int sorted;  // 1 when the tables are in use
};

/// Builds the tables; called by every thread of the CTA, followed by a CTA-wide barrier.
template <int TileQ>
SIGATTN_DEVICE void build_fwd_schedule(FwdArgs const& args, FwdScheduleSmem& s) {
  FwdParams const& p = args.p;
  int const batch = p.batch;
  if (batch > kMaxSortedBatches || args.num_tiles > INT_MAX) {
    if (threadIdx.x == 0) s.sorted = 0;
    return;
  }
  // Rank of each batch entry by (kv_len descending, index ascending): a counting rank, spread
  // over the CTA's threads (B^2 / threads comparisons of lengths staged in real_prefix).
  int* const kv_lens = s.real_prefix;
  for (int b = threadIdx.x; b < batch; b += blockDim.x)
    kv_lens[b] = clamp_len(p.kv_lens, b, p.max_kv_len);
  __syncthreads();
  for (int b = threadIdx.x; b < batch; b += blockDim.x) {
    int const kv = kv_lens[b];
    int rank = 0;
    for (int o = 0; o < batch; ++o) {
      int const kv_o = kv_lens[o];
      rank += (kv_o > kv) || (kv_o == kv && o < b);
    }
    s.order[rank] = b;
  }
  __syncthreads();  // order complete, kv_lens no longer read
  // Prefix sums by warp 0: lane l sums a contiguous chunk, then a shuffle scan over lanes.
  if (threadIdx.x < 32) {
    int const lane = threadIdx.x;
    int const chunk = (batch + 31) / 32;
    int const begin = min(lane * chunk, batch);
    int const end = min(begin + chunk, batch);
    auto q_tiles = [&](int b) {
      return (clamp_len(p.q_lens, b, p.max_q_len) + TileQ - 1) / TileQ;
    };
    int real = 0, zero = 0;
    for (int i = begin; i < end; ++i) {
      real += q_tiles(s.order[i]);
      zero += args.num_q_tiles - q_tiles(i);
    }
    int real_incl = real, zero_incl = zero;
    SIGATTN_PRAGMA_UNROLL
    for (int d = 1; d < 32; d *= 2) {
      int const r = __shfl_up_sync(0xffffffffu, real_incl, d);
      int const z = __shfl_up_sync(0xffffffffu, zero_incl, d);
      if (lane >= d) {
        real_incl += r;
        zero_incl += z;
      }
    }
    int run_real = real_incl - real, run_zero = zero_incl - zero;  // exclusive
    for (int i = begin; i < end; ++i) {
      s.real_prefix[i] = run_real * p.num_heads;
      s.zero_prefix[i] = run_zero * p.num_heads;
      run_real += q_tiles(s.order[i]);
      run_zero += args.num_q_tiles - q_tiles(i);
    }
    if (lane == 31) {
      s.real_prefix[batch] = real_incl * p.num_heads;
      s.zero_prefix[batch] = zero_incl * p.num_heads;
      s.sorted = 1;
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
/// CPU tests check that the order is a bijection).
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
  if (x < total_real) {
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

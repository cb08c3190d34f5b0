// What every forward kernel receives (by __grid_constant__): the user's parameters plus the
// values the host derived from them once.
#pragma once

#include "sigattn/api.hpp"
#include "sigattn/detail/config.cuh"

namespace sigattn::kernel {

struct FwdArgs {
  FwdParams p;
  float score_mul;      // scale * Sigmoid::kPrescale: one FMA forms the sigmoid's argument
  float bias_mul;       // Sigmoid::kPrescale
  int num_q_tiles;      // ceil(max_q_len / TileQ)
  int group;            // num_heads / num_kv_heads
  int64_t num_tiles;    // num_q_tiles * batch * num_heads
  // The Hopper forward under a causal mask: k >= 1 when its tile order goes by levels in blocks of
  // k levels, 0 head by head (the launcher sets it, by sm90::causal_level_block unless a tuning
  // run forces an order; 0 without a causal mask).
  int causal_levels;
  // The Hopper forward's split tail (sm90/fwd_scheduler.cuh), from the workspace: one partial-sum
  // slot of TileQ x D floats and one flag per consumer warpgroup for each CTA. Null: no split.
  float* split_partials;
  unsigned* split_flags;
};

/// Coordinates of one work tile. Tiles are numbered so that the last query tiles (the heaviest
/// ones under a causal mask) are handed out first, and all (batch, head) pairs of one query-tile
/// index are adjacent.
struct TileCoord {
  int m;  // query tile index
  int b;
  int h;
};

SIGATTN_DEVICE TileCoord decode_tile(FwdArgs const& a, int64_t t) {
  int64_t bh_count = static_cast<int64_t>(a.p.batch) * a.p.num_heads;
  TileCoord c;
  c.m = a.num_q_tiles - 1 - static_cast<int>(t / bh_count);
  int bh = static_cast<int>(t % bh_count);
  c.b = bh / a.p.num_heads;
  c.h = bh % a.p.num_heads;
  return c;
}

}  // namespace sigattn::kernel

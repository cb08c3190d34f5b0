// Compile-time shape of the portable (sm_80+) forward kernel: every tile size, warp count,
// stage count and shared-memory byte lives here.
#pragma once

#include "sigattn/tile/load.cuh"

namespace sigattn::kernel::sm80 {

/// A CTA owns TileQ query rows of one (batch, head) and walks its key/value tiles of TileKV rows.
/// Each of the Warps warps owns TileQ / Warps consecutive query rows (one or more m16 tiles), so
/// a warp only ever reads its own rows of Q from shared memory and writes its own rows of O.
template <int HeadDim, class ElementT, int TileQ, int TileKV, int Warps, int Stages>
struct FwdTraits {
  using Element = ElementT;
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kTileQ = TileQ;
  static constexpr int kTileKV = TileKV;
  static constexpr int kWarps = Warps;
  static constexpr int kStages = Stages;
  static constexpr int kThreads = Warps * 32;

  static constexpr int kWarpRows = TileQ / Warps;  // query rows per warp
  static constexpr int kMTiles = kWarpRows / 16;   // m16 tiles per warp
  static constexpr int kNTilesS = TileKV / 8;      // n8 tiles of S = Q K^T per m16 tile
  static constexpr int kKStepsQK = HeadDim / 16;   // k16 steps of Q K^T
  static constexpr int kNTilesO = HeadDim / 8;     // n8 tiles of O per m16 tile
  static constexpr int kKStepsPV = TileKV / 16;    // k16 steps of P V

  using QLayout = tile::SwizzledTile<TileQ, HeadDim>;
  using KVLayout = tile::SwizzledTile<TileKV, HeadDim>;
  static constexpr int kSmemQ = QLayout::kBytes;
  static constexpr int kSmemKV = KVLayout::kBytes;  // one K or one V tile
  static constexpr int kSmemBytes = kSmemQ + 2 * Stages * kSmemKV;

  // Two CTAs per SM whenever shared memory allows it: the second CTA's sigmoid overlaps the
  // first one's products.
  static constexpr int kMinBlocksPerSm = (2 * kSmemBytes <= 227 * 1024) ? 2 : 1;

  static_assert(HeadDim == 64 || HeadDim == 128, "head dims 64 and 128");
  static_assert(TileQ % Warps == 0 && kWarpRows % 16 == 0, "warps own whole m16 tiles");
  static_assert(TileKV % 16 == 0, "key tiles are whole k16 steps");
  static_assert(Stages >= 2, "at least double buffering");
  static_assert((TileQ * HeadDim / 8) % kThreads == 0, "Q tile copies divide evenly");
  static_assert((TileKV * HeadDim / 8) % kThreads == 0, "K/V tile copies divide evenly");
  static_assert(kSmemBytes <= 227 * 1024, "fits the sm_90 shared-memory limit per block");
};

}  // namespace sigattn::kernel::sm80

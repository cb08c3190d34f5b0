// Compile-time shape of the portable (sm_80+) backward kernels.
#pragma once

#include "sigattn/kernel/sm80/fwd_traits.cuh"
#include "sigattn/tile/load.cuh"

namespace sigattn::kernel::sm80 {

/// The dK/dV kernel: a CTA owns TileKV keys of one (batch, kv head) and walks the query tiles
/// (TileQ rows of Q and dO) of every query head of its group; each warp owns TileKV / Warps keys
/// and keeps their dK and dV rows in registers. The warp products are the forward's with the
/// roles swapped (S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T Q), so the layouts carry
/// the forward's names: `QLayout` is the owned (K or V) tile, `KVLayout` the streamed (Q or dO)
/// tile. dQ += dS K reads dS^T back from shared memory, one TileQ / Warps row slice per warp.
template <int HeadDim, class ElementT, int TileQ, int TileKV, int Warps, int Stages>
struct BwdTraits {
  using Element = ElementT;
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kTileQ = TileQ;
  static constexpr int kTileKV = TileKV;
  static constexpr int kWarps = Warps;
  static constexpr int kStages = Stages;
  static constexpr int kThreads = Warps * 32;

  static constexpr int kWarpRows = TileKV / Warps;  // keys per warp
  static constexpr int kMTiles = kWarpRows / 16;
  static constexpr int kNTilesS = TileQ / 8;      // S^T: keys x queries
  static constexpr int kKStepsQK = HeadDim / 16;
  static constexpr int kNTilesO = HeadDim / 8;    // dK, dV: keys x head dim
  static constexpr int kKStepsPV = TileQ / 16;

  using QLayout = tile::SwizzledTile<TileKV, HeadDim>;   // owned K or V tile
  using KVLayout = tile::SwizzledTile<TileQ, HeadDim>;   // streamed Q or dO tile
  using DsLayout = tile::SwizzledTile<TileKV, TileQ>;    // dS^T, [key][query]

  // dQ slice of one warp: TileQ / Warps query rows, computed kDqColChunk head-dim columns at a
  // time to bound the live accumulators.
  static constexpr int kDqRows = TileQ / Warps;
  static constexpr int kDqMTiles = kDqRows / 16;
  static constexpr int kDqColChunk = 64;
  static constexpr int kDqKSteps = TileKV / 16;

  static constexpr int kSmemOwned = QLayout::kBytes;     // one of K, V
  static constexpr int kSmemStreamed = KVLayout::kBytes; // one of Q, dO
  static constexpr int kSmemDs = DsLayout::kBytes;
  static constexpr int kSmemBytes =
      2 * kSmemOwned + 2 * Stages * kSmemStreamed + kSmemDs;
  static constexpr int kMinBlocksPerSm = (2 * kSmemBytes <= 227 * 1024) ? 2 : 1;

  static_assert(HeadDim == 64 || HeadDim == 128, "head dims 64 and 128");
  static_assert(TileKV % Warps == 0 && kWarpRows % 16 == 0, "warps own whole m16 key tiles");
  static_assert(TileQ % (16 * Warps) == 0, "warps own whole m16 slices of dQ");
  static_assert(TileQ % 64 == 0, "dS^T rows hold whole swizzle groups");
  static_assert(HeadDim % kDqColChunk == 0, "dQ column chunks divide the head dim");
  static_assert(Stages >= 2, "at least double buffering");
  static_assert((TileQ * HeadDim / 8) % kThreads == 0, "Q/dO tile copies divide evenly");
  static_assert((TileKV * HeadDim / 8) % kThreads == 0, "K/V tile copies divide evenly");
  static_assert(kSmemBytes <= 227 * 1024, "fits the sm_90 shared-memory limit per block");
};

}  // namespace sigattn::kernel::sm80

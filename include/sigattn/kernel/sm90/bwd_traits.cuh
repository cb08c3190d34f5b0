// Compile-time shape of the Hopper (sm_90a) backward kernel (key side: dK, dV and the dQ sums).
#pragma once

#include <cuda.h>

#include "sigattn/api.hpp"

namespace sigattn::kernel::sm90 {

/// One producer warpgroup (one thread issues the TMA loads, one warp the dQ tensor reductions) and
/// TileKV / 64 consumer warpgroups. A CTA owns TileKV keys of one (batch, kv head): K and V are
/// loaded once, each consumer keeps the dK and dV rows of its 64 keys in registers, and the Q and
/// dO tiles (TileQ query rows) of every query head of the group cycle through `Stages`
/// shared-memory stages. dS^T goes through a double-buffered shared tile for dQ = dS K, which the
/// consumers split into 64 x 64 pieces: consumer c computes query block c % (TileQ / 64) and
/// head-dim block c / (TileQ / 64), and writes it into a double-buffered fp32 staging tile that
/// the dQ warp adds to the workspace. The 16-bit tiles are stored as 64-column, 128-byte-swizzled
/// blocks (tile/wgmma.cuh); the fp32 staging tile as 32-column (128-byte) blocks with the same
/// swizzle, the layout of the TMA box of the workspace's tensor map.
/// `MufuEighths`: see kMufuEighths; -1 (the default) takes the measured rule.
template <int HeadDim, class ElementT, int TileQ, int TileKV, int Stages, int MufuEighths = -1>
struct BwdTraits {
  using Element = ElementT;
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kTileQ = TileQ;
  static constexpr int kTileKV = TileKV;
  static constexpr int kStages = Stages;
  static constexpr int kConsumers = TileKV / 64;
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kConsumerThreads = 128 * kConsumers;
  static constexpr int kQBlocks = TileQ / 64;  // 64-query blocks of a dQ tile
  // Of every 8 elements of a thread, how many take the accurate sigmoid's reciprocal on MUFU
  // (tile::apply_split: two MUFU operations and 4 instructions rather than one and 9). Measured
  // (docs/tuning.md, session 8): D=64 4 of 8, D=128 2 of 8.
  static constexpr int kMufuEighths = MufuEighths >= 0 ? MufuEighths : (HeadDim == 64 ? 4 : 2);

  // The consumers take turns issuing their products (ping-pong) in the kernels of 64-query tiles
  // (D = 128). The switch that decides is bwd_tile's kTurns: this, or the D = 64 kernel with
  // masks (causal launches: +1.7 to +3.2% at 4K and 16K with the dQ piece first, session 25),
  // and only where dQ is computed. The D = 64 kernel without masks measured 1-3% slower with
  // turns (docs/tuning.md, session 24).
  static constexpr bool kTurns = TileQ == 64;

  // Register budget per thread after setmaxnreg (the sum over warpgroups stays within 64K).
  static constexpr int kProducerRegisters = 24;
  static constexpr int kConsumerRegisters = 240;

  static constexpr int kKVBytes = TileKV * HeadDim * 2;  // the owned K or V tile
  static constexpr int kQBytes = TileQ * HeadDim * 2;    // one streamed Q or dO tile
  static constexpr int kDsBytes = TileKV * TileQ * 2;    // one dS^T tile, [key][query]
  // One fp32 dQ staging buffer: HeadDim / 32 column blocks of TileQ rows x 128 bytes (32 floats),
  // 16-byte chunk c of row r at (c ^ (r % 8)) * 16: one TMA box of the dQ workspace map each.
  static constexpr int kDqBlockBytes = TileQ * 128;
  static constexpr int kDqBytes = (HeadDim / 32) * kDqBlockBytes;
  static constexpr int kDqBuffers = 2;
  // kv_full, full and empty of every stage, dq_empty of every staging buffer.
  static constexpr int kBarrierBytes = 8 * (1 + 2 * Stages + kDqBuffers);
  // Tiles first (1024-byte aligned: K, V, the Q/dO stages, two dS^T tiles, two dQ staging
  // buffers), barriers after them. Both modes get the same layout (the deterministic one leaves
  // the dS^T and dQ tiles unused; one CTA per SM either way).
  static constexpr int kSmemBytes = 2 * kKVBytes + 2 * Stages * kQBytes + 2 * kDsBytes +
                                    kDqBuffers * kDqBytes + kBarrierBytes + 1024;

  static_assert(HeadDim == 64 || HeadDim == 128, "head dims 64 and 128");
  static_assert(TileKV == 128, "two consumer warpgroups of 64 keys");
  static_assert(TileQ == 64 || TileQ == 128, "wgmma widths instantiated: 64 and 128");
  static_assert(kConsumers == kQBlocks * (HeadDim / 64),
                "the dQ tile splits into one 64 x 64 piece per consumer");
  static_assert(Stages >= 2, "at least double buffering");
  static_assert(kDqBlockBytes % 1024 == 0, "staging blocks stay 1024-byte aligned (swizzle)");
  static_assert(kSmemBytes <= 227 * 1024, "fits the sm_90 shared-memory limit per block");
};

/// What the Hopper backward kernel receives besides BwdArgs: five tensor maps (Q and dO in boxes
/// of TileQ rows, K and V in boxes of TileKV rows, all {64, rows} of 16-bit elements; the fp32 dQ
/// workspace in boxes of {32, TileQ}, the target of the dQ reductions; in the deterministic mode,
/// which has no workspace, a copy of another map that nothing uses).
struct BwdTmaArgs {
  CUtensorMap q_map;
  CUtensorMap k_map;
  CUtensorMap v_map;
  CUtensorMap do_map;
  CUtensorMap dq_map;
};

}  // namespace sigattn::kernel::sm90

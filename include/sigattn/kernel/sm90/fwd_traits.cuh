// Compile-time shape of the Hopper (sm_90a) forward kernel.
#pragma once

#include <cuda.h>

#include "sigattn/api.hpp"
#include "sigattn/kernel/sm90/fwd_scheduler.cuh"

namespace sigattn::kernel::sm90 {

/// One producer warpgroup (one thread issues the TMA loads) and TileQ / 64 consumer warpgroups of
/// 64 query rows each, so TileQ = 64 * Consumers. K and V tiles of TileKV rows cycle through
/// `Stages` shared-memory stages guarded by mbarriers. Every tile is stored as 64-column,
/// 128-byte-swizzled blocks (tile/wgmma.cuh).
template <int HeadDim, class ElementT, int TileQ, int TileKV, int Stages>
struct FwdTraits {
  using Element = ElementT;
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kTileQ = TileQ;
  static constexpr int kTileKV = TileKV;
  static constexpr int kStages = Stages;
  static constexpr int kConsumers = TileQ / 64;
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kConsumerThreads = 128 * kConsumers;

  // Register budget per thread after setmaxnreg (the sum over warpgroups stays within 64K).
  static constexpr int kProducerRegisters = kConsumers == 2 ? 24 : 32;
  static constexpr int kConsumerRegisters = kConsumers == 2 ? 240 : 160;

  static constexpr int kQBytes = TileQ * HeadDim * 2;
  static constexpr int kKVBytes = TileKV * HeadDim * 2;  // one K or one V tile
  static constexpr int kBarrierBytes = 8 * (2 + 4 * Stages);
  // Tiles first (Q, the O staging buffer, the K/V stages; 1024-byte aligned), then the barriers
  // and the tile order's tables (fwd_scheduler.cuh).
  static constexpr int kSmemBytes = 2 * kQBytes + 2 * Stages * kKVBytes + kBarrierBytes +
                                    static_cast<int>(sizeof(FwdScheduleSmem)) + 1024;

  static_assert(HeadDim == 64 || HeadDim == 128, "head dims 64 and 128");
  static_assert(TileQ % 64 == 0 && (kConsumers == 2 || kConsumers == 3), "2 or 3 consumers");
  static_assert(TileKV == 64 || TileKV == 128, "wgmma widths instantiated: 64 and 128");
  static_assert(Stages >= 2, "at least double buffering");
  static_assert(kSmemBytes <= 227 * 1024, "fits the sm_90 shared-memory limit per block");
};

/// What the Hopper forward kernel receives: the portable arguments plus three tensor maps.
struct FwdTmaArgs {
  CUtensorMap q_map;
  CUtensorMap k_map;
  CUtensorMap v_map;
};

}  // namespace sigattn::kernel::sm90

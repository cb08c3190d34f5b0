// Compile-time shape of the Hopper (sm_90a) forward kernel.
#pragma once

#include <cuda.h>

#include "sigattn/api.hpp"
#include "sigattn/kernel/sm90/fwd_scheduler.cuh"

namespace sigattn::kernel::sm90 {

/// What the producer hands the consumers about a work tile, through a two-slot ring in shared
/// memory (fwd_mainloop.cuh): the tile's coordinates, its lengths and its bias, which it derives
/// once (a search in the order's tables and loads from global memory) while the consumers still
/// work on earlier tiles.
struct alignas(16) FwdTileInfo {
  int m, b, h;  // TileCoord
  int q_len, kv_len;
  float bias_t;        // bias_b * bias_mul (0 when no key is visible)
  int n_begin, n_end;  // the key tiles of this work item (n_end <= n_begin: O is zero)
  int role;            // FwdRole: a whole tile, or a writer or owner piece of the split tail
  int first_writer;    // an owner piece: the first CTA that holds an earlier piece of the tile
  int unused[2];
};

/// One producer warpgroup (one thread plans the work tiles and issues the Q loads, another the K
/// and V loads) and TileQ / 64 consumer warpgroups of 64 query rows each, so TileQ = 64 *
/// Consumers. K and V tiles of TileKV rows cycle through `Stages` shared-memory stages guarded by
/// mbarriers. Every tile is stored as 64-column,
/// 128-byte-swizzled blocks (tile/wgmma.cuh). Q tiles alternate between two buffers when both fit
/// beside the stages (kQBuffers), so that the next work tile's Q lands while the current one runs.
/// O leaves through its own tile's Q buffer, which is dead once the tile's last S product is
/// complete, by TMA stores, when `PreferStagedO` (kStagedO); otherwise each thread stores its
/// accumulator fragment straight to global memory (4-byte stores, once per work tile).
/// `MufuEighths`: see kMufuEighths; -1 (the default) takes the measured rule. `HalfLastTile`: see
/// kHalfLastTile.
template <int HeadDim, class ElementT, int TileQ, int TileKV, int Stages, bool PreferStagedO = true,
          int MufuEighths = -1, bool HalfLastTile = true>
struct FwdTraits {
  using Element = ElementT;
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kTileQ = TileQ;
  static constexpr int kTileKV = TileKV;
  static constexpr int kStages = Stages;
  static constexpr int kConsumers = TileQ / 64;
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kConsumerThreads = 128 * kConsumers;

  // Register budget per thread after setmaxnreg. The registers that the consumers take on top
  // of the launch's allocation (65536 / kThreads, rounded down to 8) are the ones the producer
  // gives back: 168 -> 24 and 240, 128 -> 32 and 160, 96 -> 32 and 112.
  static constexpr int kProducerRegisters = kConsumers == 2 ? 24 : 32;
  static constexpr int kConsumerRegisters = kConsumers == 2 ? 240 : kConsumers == 3 ? 160 : 112;

  static constexpr int kQBytes = TileQ * HeadDim * 2;
  static constexpr int kKVBytes = TileKV * HeadDim * 2;  // one K or one V tile
  // q_full, q_empty (2 each), k_full, v_full, k_empty, v_empty (kStages each), info_full and
  // info_empty (2 each).
  static constexpr int kBarrierBytes = 8 * (8 + 4 * Stages);
  // Everything but the Q buffers: the barriers, the two tile-info slots and the tile order's
  // tables (fwd_scheduler.cuh) follow the tiles, and the base is aligned to 1024 bytes at run time.
  static constexpr int kOtherBytes = 2 * Stages * kKVBytes + kBarrierBytes +
                                     2 * static_cast<int>(sizeof(FwdTileInfo)) +
                                     static_cast<int>(sizeof(FwdScheduleSmem)) + 1024;
  static constexpr int kSmemLimit = 227 * 1024;
  static constexpr int kQBuffers = kOtherBytes + 2 * kQBytes <= kSmemLimit ? 2 : 1;
  static constexpr bool kStagedO = PreferStagedO;
  // Of every 8 scores of a thread, how many take the accurate sigmoid's reciprocal on MUFU (two
  // MUFU operations per score, 4 instructions) rather than on the FMA pipe (one, 8 or 9
  // instructions, below): tile::apply_split. Measured (docs/tuning.md, sessions 8 and 15): D=64
  // 3 of 8; D=128 all 8 (at the steady clock under the board's power limit, +1.3% over 6 of 8,
  // which was +1.3% over 4; a D=128 score's two MUFU operations take as long as its products).
  static constexpr int kMufuEighths = MufuEighths >= 0 ? MufuEighths : (HeadDim == 64 ? 3 : 8);
  // The FMA-pipe form of the other scores: at D=64 the short one (tile::Reciprocal::kFmaShort,
  // 8 instructions, relative error 3.6e-4), otherwise the Newton one (9, 1.1e-4; the registry's
  // D=128 kernels have no FMA-pipe scores, shapes with an explicit MufuEighths may). Measured
  // (docs/tuning.md, session 9): this choice against the Newton form everywhere, D=64 +1.9%
  // (geomean of 12 rows); with the short form at D=128 too, D=128 measured -0.9%.
  static constexpr bool kShortFmaForm = HeadDim == 64;
  // A consumer's last key tile of a work tile runs its S and P V products and its sigmoid over
  // the tile's first 64 keys only when its rows see no later key of it (fwd_consumer): the tile
  // that crosses kv_len with at most 64 real keys, and under a causal mask the diagonal tile of
  // a consumer whose last row ends in its first half. For 128-key tiles (a half of 64 keys is
  // an n64 S product and 4 k16 steps of P V; 160- and 176-key tiles have no such half) and two
  // consumers (TileQ = 128: the registry's D=128 general row; any head dim in bench/tune's
  // shapes): measured (docs/tuning.md, session 18) at D=128 uniform 1K +3.7% and dense 1K
  // -0.9%; with three consumers (the D=64 row) the rows at 1K went +2.1% to -2.4% (0.1% net),
  // and the fast sigmoid's kernels spilled.
  static constexpr bool kHalfLastTile = HalfLastTile && TileKV == 128 && TileQ == 128;
  // The consumers take turns issuing their product batches (fwd_consumer) with two of them, not
  // with three or four, which also test the next iteration's K and V early (the accurate
  // sigmoid's kernels; the fast sigmoid's keep the turns with three and take neither with four).
  // Measured (docs/tuning.md, session 22; the forward's own driver, burst clock, O
  // bit-identical): at D=64 (three) +3.5% at 1K, +2.3% at 4K, 0 at 16K; at D=128 with two
  // consumers the same change was within noise.
  static constexpr bool kTurns = kConsumers == 2;
  // Tiles first (the Q buffers, then the K/V stages; each 1024-byte aligned).
  static constexpr int kSmemBytes = kOtherBytes + kQBuffers * kQBytes;

  static_assert(HeadDim == 64 || HeadDim == 128, "head dims 64 and 128");
  static_assert(TileQ % 64 == 0 && kConsumers >= 2 && kConsumers <= 4, "2 to 4 consumers");
  // The consumers take no more registers than the launch allocated and the producer gave back.
  static_assert(128 * kProducerRegisters + kConsumerThreads * kConsumerRegisters <=
                    kThreads * ((65536 / kThreads) & ~7),
                "setmaxnreg: the register budgets fit the launch's allocation");
  static_assert(kConsumers < 4 || (HeadDim == 64 && TileKV == 64),
                "four consumers fit 112 registers only at D = 64 with 64-key tiles");
  static_assert(TileKV == 64 || TileKV == 128 || TileKV == 160 || TileKV == 176,
                "wgmma widths instantiated: 64, 128, 160 and 176");
  static_assert(kKVBytes % 1024 == 0 && kQBytes % 1024 == 0,
                "tiles start on 1024-byte boundaries (the 128-byte swizzle's period)");
  // A coarse guard (ptxas -v is the real check): the S accumulator, the packed P and the O
  // accumulator of one thread, plus about 32 registers of addresses and loop state.
  static_assert(TileKV / 2 + TileKV / 4 + HeadDim / 2 + 32 <= kConsumerRegisters,
                "S, P and O of one consumer thread fit its register budget");
  static_assert(Stages >= 2, "at least double buffering");
  static_assert(kSmemBytes <= kSmemLimit, "fits the sm_90 shared-memory limit per block");
};

/// What the Hopper forward kernel receives: the portable arguments plus four tensor maps (Q in
/// boxes of TileQ rows, K and V of TileKV rows, O of 64 rows: one consumer warpgroup's, stored
/// from the staged tile when kStagedO).
struct FwdTmaArgs {
  CUtensorMap q_map;
  CUtensorMap k_map;
  CUtensorMap v_map;
  CUtensorMap o_map;
};

}  // namespace sigattn::kernel::sm90

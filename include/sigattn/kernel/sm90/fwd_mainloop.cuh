// The Hopper forward: a persistent kernel whose CTAs walk work tiles (TileQ query rows of one
// batch entry and head) in the length-aware order of fwd_scheduler.cuh. A CTA's work items are
// whole tiles, or, in the split tail, pieces of a tile's key tiles whose fp32 partial sums meet in
// the workspace (the epilogue's writer and owner pieces).
//
// Warpgroup 0 is the producer: after setmaxnreg.dec, one thread of warp 1 plans each work tile
// (into a two-slot tile-info ring that the consumers and the other producer read: info_full /
// info_empty per slot) and issues the TMA load of its Q tile into one of two Q buffers (one when
// two do not fit; once the consumers have released that buffer: q_full / q_empty per buffer);
// one thread of warp 0 issues the loads of every K and V tile a tile's rows need, into a ring of
// kStages stages (k_full / v_full complete on the TMA bytes; k_empty / v_empty when every consumer
// thread has finished with that K or V tile: K is released as soon as its S product is complete,
// V after its P V product, so the next K tile lands a whole iteration ahead of its use). The ring
// runs on across work tiles.
//
// Warpgroups 1.. are consumers of 64 query rows each: S = Q K^T on wgmma (both operands in shared
// memory), the sigmoid in fp32 on the accumulator registers, P packed to 16 bits in registers as
// the A operand of O += P V (wgmma with A from registers, V N-major in shared memory). Each
// consumer overlaps the sigmoid of key tile n + 1 with its product P(n) V(n), and the consumers
// take turns issuing their products except in the accurate sigmoid's three-consumer kernels and
// the four-consumer ones (fwd_consumer's kTurns). O leaves through the tile's own Q buffer
// (kStagedO), which its S products no longer read, by TMA stores, and that buffer is released for
// a later Q tile (the one after next with two buffers, once the next tile's first S product is
// issued); otherwise straight from the accumulator fragment.
//
// Padding: key tiles past the rows' last visible key are never loaded; only the tile that crosses
// a limit is masked (P = 0 by a select, so NaN in padded K rows never leaks). V rows past kv_len in
// the tile that crosses kv_len are zeroed in shared memory before the product (TMA zero-fills only
// outside the tensor, and P = 0 times a NaN would still be NaN). Query tiles past q_len write zeros
// and load nothing.
#pragma once

#include <type_traits>

#include "sigattn/detail/numeric.cuh"
#include "sigattn/kernel/fwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"
#include "sigattn/kernel/sm90/fwd_scheduler.cuh"
#include "sigattn/kernel/sm90/fwd_traits.cuh"
#include "sigattn/tile/load.cuh"
#include "sigattn/tile/sigmoid.cuh"
#include "sigattn/tile/store.cuh"
#include "sigattn/tile/tma.cuh"
#include "sigattn/tile/wgmma.cuh"

namespace sigattn::kernel::sm90 {

// Named barrier ids (0 is __syncthreads).
constexpr int kBarrierConsumers = 1;  // all consumer threads: V boundary rows zeroed (no turns)
constexpr int kBarrierEpilogue0 = 2;  // + consumer index: one warpgroup's O tile staged (and
                                      // with turns, consumer 0's zeros of V's boundary rows)
constexpr int kBarrierTurn0 = 6;      // + consumer index: that warpgroup may issue its products
static_assert(kBarrierEpilogue0 + 4 <= kBarrierTurn0 && kBarrierTurn0 + 4 <= 16,
              "the ids of up to four consumers' barriers stay apart and below 16");

// A diagnostic hook, compiled out unless the including program defines SIGATTN_FWD_TRACE(event,
// value) and SIGATTN_FWD_TRACE_STATE (a declaration at the top of the consumer, for the hook's
// own state): every consumer thread then calls SIGATTN_FWD_TRACE at the events below, and the
// consumer forces its accumulators before the events that end a pass, so that a time stamp
// taken there follows the pass. tools/fwd_trace.cu records them (a timeline of the consumers);
// without the macros the kernel is the same instruction for instruction.
#ifdef SIGATTN_FWD_TRACE
#define SIGATTN_FWD_TRACING 1
#else
#define SIGATTN_FWD_TRACING 0
#define SIGATTN_FWD_TRACE_STATE
#define SIGATTN_FWD_TRACE(event, value) ((void)0)
#endif
enum FwdTraceEvent : int {
  kTrTile = 0,      // a work item's info read (value: item index)
  kTrQReady = 1,    // its Q tile landed (value: key tiles this warpgroup works)
  kTrKvWait = 2,    // an iteration begins: waits for K(n+1) and V(n)
  kTrTurnWait = 3,  // waits for its turn
  kTrIssued = 4,    // products issued, turn passed (value: 0 prologue, 1 loop, 2 last P V)
  kTrSReady = 5,    // S complete
  kTrSigEnd = 6,    // sigmoid done
  kTrPvReady = 7,   // the P V product complete
  kTrEpiEnd = 8,    // the work item's epilogue done
};

template <class Traits>
struct FwdSmemLayout {
  char* base;  // 1024-byte aligned: Q buffers | stage 0 K, V | stage 1 K, V | ... | barriers |
               // tile-info slots | tables

  static constexpr uint32_t kStagesOffset = Traits::kQBuffers * Traits::kQBytes;

  SIGATTN_HOST_DEVICE static constexpr uint32_t q_offset(int buffer) {
    return buffer * Traits::kQBytes;
  }
  SIGATTN_DEVICE char* q(int buffer) const { return base + q_offset(buffer); }
  SIGATTN_HOST_DEVICE static constexpr uint32_t k_offset(int stage) {
    return kStagesOffset + (2 * stage) * Traits::kKVBytes;
  }
  SIGATTN_HOST_DEVICE static constexpr uint32_t v_offset(int stage) {
    return kStagesOffset + (2 * stage + 1) * Traits::kKVBytes;
  }
  SIGATTN_DEVICE char* k(int stage) const { return base + k_offset(stage); }
  SIGATTN_DEVICE char* v(int stage) const { return base + v_offset(stage); }
  SIGATTN_DEVICE uint64_t* barriers() const {
    return reinterpret_cast<uint64_t*>(base + kStagesOffset +
                                       2 * Traits::kStages * Traits::kKVBytes);
  }
  SIGATTN_DEVICE uint64_t* q_full(int buffer) const { return barriers() + buffer; }
  SIGATTN_DEVICE uint64_t* q_empty(int buffer) const { return barriers() + 2 + buffer; }
  SIGATTN_DEVICE uint64_t* k_full(int s) const { return barriers() + 4 + s; }
  SIGATTN_DEVICE uint64_t* v_full(int s) const { return barriers() + 4 + Traits::kStages + s; }
  SIGATTN_DEVICE uint64_t* k_empty(int s) const { return barriers() + 4 + 2 * Traits::kStages + s; }
  SIGATTN_DEVICE uint64_t* v_empty(int s) const { return barriers() + 4 + 3 * Traits::kStages + s; }
  SIGATTN_DEVICE uint64_t* info_full(int slot) const {
    return barriers() + 4 + 4 * Traits::kStages + slot;
  }
  SIGATTN_DEVICE uint64_t* info_empty(int slot) const {
    return barriers() + 6 + 4 * Traits::kStages + slot;
  }
  // (16-byte aligned: the tiles and barriers before them are multiples of 32 bytes.)
  SIGATTN_DEVICE FwdTileInfo* info(int slot) const {
    return reinterpret_cast<FwdTileInfo*>(barriers() + 8 + 4 * Traits::kStages) + slot;
  }
  SIGATTN_DEVICE FwdScheduleSmem& schedule() const {
    return *reinterpret_cast<FwdScheduleSmem*>(info(2));
  }
};

/// A work tile's plan: the Q producer derives it from the tile's position (plan_fwd_tile), the
/// K/V producer and the consumers from the tile-info slot it wrote (plan_from_info), so that every
/// side works on exactly the same tiles.
struct FwdTilePlan {
  TileCoord tc;
  SeqLens len;
  int row0;       // first query row of the tile
  int tile_rows;  // rows of the tile inside the padded shape
  int q_rows;     // real rows (0: the tile is padding and only writes zeros)
  int n_tiles;    // key tiles its rows see (0: no key is visible; O is zero)
  // This work item's key tiles [n_begin, n_end) of those (all of them but in the split tail's
  // pieces; none when n_end <= n_begin), its FwdRole, and an owner piece's first writer CTA.
  int n_begin, n_end;
  int role;
  int first_writer;
};

/// Key tiles that a work tile's rows [0, rows) see (0 when rows is 0): key_end of its last row,
/// in tiles (key_end never decreases with the row).
template <class Traits>
SIGATTN_DEVICE int key_tiles_through(SeqLens const& len, int row0, int rows) {
  return rows > 0 ? (len.key_end(row0 + rows - 1) + Traits::kTileKV - 1) / Traits::kTileKV : 0;
}

template <class Traits>
SIGATTN_DEVICE FwdTilePlan plan_from(FwdArgs const& args, TileCoord tc, SeqLens len) {
  FwdTilePlan w;
  w.tc = tc;
  w.len = len;
  w.row0 = w.tc.m * Traits::kTileQ;
  w.tile_rows = min(Traits::kTileQ, args.p.max_q_len - w.row0);
  w.q_rows = max(min(Traits::kTileQ, w.len.q_len - w.row0), 0);
  w.n_tiles = key_tiles_through<Traits>(w.len, w.row0, w.q_rows);
  w.n_begin = 0;
  w.n_end = w.n_tiles;
  w.role = kWholeTile;
  w.first_writer = 0;
  return w;
}

/// The plan of the work tile at `pos`: a search in the order's tables and the lengths from global
/// memory (the Q producer).
template <class Traits>
SIGATTN_DEVICE FwdTilePlan plan_fwd_tile(FwdArgs const& args, FwdScheduleSmem const& sched,
                                         int64_t pos) {
  TileCoord const tc = fwd_tile_at<Traits::kTileQ>(args, sched, pos);
  return plan_from<Traits>(args, tc, read_seqlens(args.p, tc.b));
}

/// The plan of a work tile from the info the producer wrote (shared memory only).
template <class Traits>
SIGATTN_DEVICE FwdTilePlan plan_from_info(FwdArgs const& args, FwdTileInfo const& info) {
  FwdTilePlan w = plan_from<Traits>(args, TileCoord{info.m, info.b, info.h},
                                    make_seqlens(args.p, info.q_len, info.kv_len));
  w.n_begin = info.n_begin;
  w.n_end = info.n_end;
  w.role = info.role;
  w.first_writer = info.first_writer;
  return w;
}

/// The split tail's flags: a writer raises its flag once its partial sum is in global memory
/// (release, GPU scope), an owner waits for it (acquire).
SIGATTN_DEVICE void store_release_gpu(unsigned* flag, unsigned value) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(flag), "r"(value) : "memory");
}
/// Waits for the grids this one depends on (the flag clear, when the host launched this grid as its
/// programmatic dependent; otherwise there is nothing to wait for) and sees their writes.
SIGATTN_DEVICE void wait_prerequisite_grids() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
SIGATTN_DEVICE unsigned load_acquire_gpu(unsigned const* flag) {
  unsigned value;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(value) : "l"(flag) : "memory");
  return value;
}

/// The Q producer (one thread, warp 1): for each of the CTA's work tiles, its plan into the next
/// tile-info slot once the slot's readers have released it (info_full / info_empty, two slots,
/// every work tile including those without a visible key; the readers are every consumer thread,
/// at the end of the tile two before, and the K/V producer), then, for a tile with a visible key,
/// its Q tile into the next Q buffer once the consumers have released that buffer. With two Q
/// buffers and O staged, both releases come at the end of the tile two before, so it runs up to a
/// tile ahead of the consumers, apart from the K/V producer: the next tile's Q and plan are ready
/// when its first product is issued, and the consumers read the plan from shared memory instead
/// of searching the tables and loading the lengths themselves.
template <class Traits>
SIGATTN_DEVICE void fwd_q_producer(FwdArgs const& args, FwdTmaArgs const& tma,
                                   FwdSmemLayout<Traits> const& smem) {
  constexpr int kBlocks = Traits::kHeadDim / 64;
  constexpr int kQBuffers = Traits::kQBuffers;
  FwdScheduleSmem const& sched = smem.schedule();
  // (The count is read from shared memory on every iteration rather than kept in a register:
  // this thread runs on kProducerRegisters. The host keeps it below 2^31.)
  int q_loads = 0;
  for (int k = 0; k < static_cast<int>(sched.items); ++k) {
    int const slot = k & 1;
    if (k >= 2) tile::mbarrier_wait(smem.info_empty(slot), ((k >> 1) - 1) & 1);
    // (The slot is filled field by field as the values come, so that few stay live: this
    // thread runs on kProducerRegisters.)
    FwdTileInfo& info = *smem.info(slot);
    FwdItem const it =
        fwd_item_at(sched, static_cast<int>(blockIdx.x), static_cast<int>(gridDim.x), k);
    info.n_begin = it.n_begin;
    info.n_end = it.n_end;
    info.role = it.role;
    info.first_writer = it.first_writer;
    FwdTilePlan const w = plan_fwd_tile<Traits>(args, sched, it.pos);
    int const n_end = min(info.n_end, w.n_tiles);
    info.n_end = n_end;
    info.m = w.tc.m;
    info.b = w.tc.b;
    info.h = w.tc.h;
    info.q_len = w.len.q_len;
    info.kv_len = w.len.kv_len;
    info.bias_t = w.n_tiles > 0 ? read_bias(args.p, w.tc.b, w.len.kv_len) * args.bias_mul : 0.0f;
    bool const no_key = n_end <= info.n_begin;
    tile::mbarrier_arrive(smem.info_full(slot));  // (release: the writes above come first)
    if (no_key) continue;
    int const qb = q_loads % kQBuffers;
    if (q_loads >= kQBuffers)
      tile::mbarrier_wait(smem.q_empty(qb), ((q_loads / kQBuffers) - 1) & 1);
    tile::mbarrier_arrive_expect_tx(smem.q_full(qb), Traits::kQBytes);
    for (int blk = 0; blk < kBlocks; ++blk)
      tile::tma_load_4d(smem.q(qb) + blk * Traits::kTileQ * 128, &tma.q_map, blk * 64, w.row0,
                        w.tc.h, w.tc.b, smem.q_full(qb));
    ++q_loads;
  }
}

/// The K/V producer (one thread, warp 0): every visible K and V tile of each work tile (its plan
/// from the tile-info slot) into a ring of kStages stages. The ring position runs on across work
/// tiles, so the next tile's first loads overlap the current tile's tail. It releases each slot
/// (info_empty) once it has read it: for a tile with a visible key the consumers' release would
/// come later anyway (they need its K and V tiles), but a tile without one they finish alone, and
/// the Q producer must not write the slot again before this thread has read it.
template <class Traits>
SIGATTN_DEVICE void fwd_kv_producer(FwdArgs const& args, FwdTmaArgs const& tma,
                                    FwdSmemLayout<Traits> const& smem) {
  constexpr int kBlocks = Traits::kHeadDim / 64;
  constexpr int kStages = Traits::kStages;
  int const items = static_cast<int>(smem.schedule().items);
  int kv_iter = 0;
  for (int k = 0; k < items; ++k) {
    int const slot = k & 1;
    tile::mbarrier_wait(smem.info_full(slot), (k >> 1) & 1);
    FwdTilePlan const w = plan_from_info<Traits>(args, *smem.info(slot));
    tile::mbarrier_arrive(smem.info_empty(slot));  // (release: the reads above come first)
    int const hk = w.tc.h / args.group;
    for (int n = w.n_begin; n < w.n_end; ++n, ++kv_iter) {
      int const s = kv_iter % kStages;
      uint32_t const empty_parity = ((kv_iter / kStages) - 1) & 1;
      int const key0 = n * Traits::kTileKV;
      if (kv_iter >= kStages) tile::mbarrier_wait(smem.k_empty(s), empty_parity);
      tile::mbarrier_arrive_expect_tx(smem.k_full(s), Traits::kKVBytes);
      for (int blk = 0; blk < kBlocks; ++blk)
        tile::tma_load_4d(smem.k(s) + blk * Traits::kTileKV * 128, &tma.k_map, blk * 64, key0, hk,
                          w.tc.b, smem.k_full(s));
      if (kv_iter >= kStages) tile::mbarrier_wait(smem.v_empty(s), empty_parity);
      tile::mbarrier_arrive_expect_tx(smem.v_full(s), Traits::kKVBytes);
      for (int blk = 0; blk < kBlocks; ++blk)
        tile::tma_load_4d(smem.v(s) + blk * Traits::kTileKV * 128, &tma.v_map, blk * 64, key0, hk,
                          w.tc.b, smem.v_full(s));
    }
  }
}

/// What the sigmoid of a work tile's scores needs: its lengths, first row, bias, and the first
/// key that some row of the tile cannot see (tiles below it need no mask).
struct FwdTileScores {
  SeqLens len;
  int row0;
  int unmasked_end;
  float bias_t;
};

SIGATTN_DEVICE FwdTileScores tile_scores(FwdTilePlan const& w, float bias_t) {
  return {w.len, w.row0, w.len.key_end(w.row0), bias_t};
}

/// Consumer warpgroup `consumer` (64 query rows of every work tile). Per key tile n the order is
///   issue S(n+1) = Q K(n+1)^T;  issue O += P(n) V(n);  wait S(n+1);  P(n+1) = sigmoid(S(n+1))
///   in fp32, in place;  wait the PV product;  release stage n;  pack P(n+1) to 16 bits,
/// so the sigmoid of one tile runs on the FMA and MUFU pipes while the tensor cores work on the
/// previous tile's P V (and the other consumer warpgroups' products fill the gaps). A work tile
/// begins with S(0) and its sigmoid alone and ends with its last P V alone. (Carrying that overlap
/// across work tiles, the last P V issued with the next tile's S(0), measured slower in sessions
/// 5-7 and was removed: docs/design.md.)
template <class Traits, class Sigmoid>
SIGATTN_DEVICE void fwd_consumer(FwdArgs const& args, CUtensorMap const* o_map,
                                 FwdSmemLayout<Traits> const& smem) {
  using Element = typename Traits::Element;
  constexpr int kHeadDim = Traits::kHeadDim;
  constexpr int kTileQ = Traits::kTileQ;
  constexpr int kTileKV = Traits::kTileKV;
  constexpr int kStages = Traits::kStages;
  constexpr int kQBuffers = Traits::kQBuffers;
  constexpr int kSRegs = kTileKV / 2;
  constexpr int kORegs = kHeadDim / 2;
  constexpr int kPSteps = kTileKV / 16;
  constexpr int kChunksPerRow = kHeadDim / 8;
  constexpr tile::Reciprocal kFmaForm =
      Traits::kShortFmaForm ? tile::Reciprocal::kFmaShort : tile::Reciprocal::kFma;

  FwdParams const& p = args.p;
  int const thread = threadIdx.x;
  // (Broadcast from lane 0 so that the compiler knows it is warp-uniform: the values derived
  // from it, such as the Q operand's descriptors, then live in uniform registers.)
  int const consumer = __shfl_sync(0xffffffffu, thread / 128, 0) - 1;
  int const consumer_thread = thread - 128;
  int const group_thread = thread & 127;
  int const lane = thread & 31;
  int const warp_in_group = (thread / 32) & 3;
  // This thread's two query rows (tile-relative) in every accumulator fragment.
  int const frag_row = consumer * 64 + warp_in_group * 16 + (lane >> 2);
  // wgmma descriptors are formed from the shared address of the block / 16 plus a tile's byte
  // offset / 16: one 32-bit value stays live instead of a 64-bit descriptor per operand.
  uint32_t const smem_units = tile::shared_address(smem.base) >> 4;
  uint32_t const q_rows_offset = consumer * 64 * 128;  // this warpgroup's 64 rows of a Q tile

  // Ping-pong between the consumer warpgroups: each issues its batch of products (S(n+1) and
  // P(n) V(n)) only after the previous warpgroup has issued its own, so the tensor cores run the
  // warpgroups' batches back to back while the others compute their sigmoids. Warpgroup c waits
  // on barrier kBarrierTurn0 + c and then passes the turn to c + 1 (bar.arrive); the last one
  // hands the first turn out at the start, and the first one takes that extra turn back at the
  // end, so every barrier phase completes. Every warpgroup takes the same number of turns per
  // work item: n_end - n_begin + 1 (the first S, then one per key tile of the item).
  // (The barrier ids are derived from threadIdx.x at each use rather than kept live across the
  // work-tile loop, where every register is taken.)
  // Without Traits::kTurns (three or four consumers) the turns are left out: the tensor cores'
  // own queue orders the batches (a warpgroup's wgmma issue waits while they are busy), and the
  // barriers only added waits. The fast sigmoid's three-consumer kernels keep them (docs/
  // tuning.md: without turns its D = 64 kernel measured 0.999 as a geomean, -2% on the causal
  // rows, and with the early K/V test below it spilled); its four-consumer kernels take neither
  // the turns nor the early test (with turns ptxas stored 4 bytes of spills and loaded 12, with
  // the early test 12 and 20, at 112 registers).
  constexpr bool kFast = std::is_same_v<Sigmoid, tile::SigmoidFast>;
  constexpr bool kTurns = Traits::kTurns || (kFast && Traits::kConsumers == 3);
  auto turn_wait = [] {
    if constexpr (kTurns)
      tile::named_barrier_sync(kBarrierTurn0 + static_cast<int>(threadIdx.x / 128) - 1, 2 * 128);
  };
  auto turn_pass = [] {
    if constexpr (kTurns)
      tile::named_barrier_arrive(
          kBarrierTurn0 + static_cast<int>(threadIdx.x / 128) % Traits::kConsumers, 2 * 128);
  };
  if (consumer == Traits::kConsumers - 1) turn_pass();
  SIGATTN_FWD_TRACE_STATE

  // The widths of a key tile's products: the whole tile, or the first half of a warpgroup's last
  // one (Traits::kHalfLastTile; otherwise the whole tile too). A half-width S has an accumulator
  // of its own, live only where the full one is not: aliasing the full one's first half, ptxas
  // serialised every wgmma of the kernel (C7511, "insufficient register resources").
  using FullWidth = std::integral_constant<int, kTileKV>;
  using HalfWidth = std::integral_constant<int, Traits::kHalfLastTile ? kTileKV / 2 : kTileKV>;
  float acc_s[kSRegs];
  float acc_h[Traits::kHalfLastTile ? kTileKV / 4 : 1];  // (unused without the half width)
  uint32_t p_frag[kPSteps][4];
  auto acc_of = [&](auto width) -> auto& {
    return tile::pick<decltype(width)::value == kTileKV>(acc_s, acc_h);
  };

  // S = Q K^T over the first `width` keys of the stage's K tile, into acc_of(width).
  auto issue_s = [&](int stage, int q_buffer, auto width) {
    constexpr int kWidth = decltype(width)::value;
    auto& acc = acc_of(width);
    tile::fence_registers(acc);
    tile::wgmma_fence();
    // (Every offset is a multiple of 16 bytes: each k-step's descriptor is then the tile's
    // units plus a constant, one add.)
    uint32_t const q_units = smem_units + ((smem.q_offset(q_buffer) + q_rows_offset) >> 4);
    uint32_t const k_units = smem_units + (smem.k_offset(stage) >> 4);
    SIGATTN_PRAGMA_UNROLL
    for (int k = 0; k < kHeadDim / 16; ++k)
      tile::Wgmma<Element, kWidth>::ss(
          acc, tile::smem_desc_from_units<16>(q_units + (tile::k_major_step<kTileQ>(k) >> 4)),
          tile::smem_desc_from_units<16>(k_units + (tile::k_major_step<kTileKV>(k) >> 4)), k > 0);
    tile::wgmma_commit();
  };
  // P = sigmoid(S * scale + bias) in place; masked only in a tile that crosses a limit. The
  // two cases are separate loops: written as one loop with a condition inside, the compiler
  // if-converts the mask into every tile (an ISETP and an FSEL per score, on the ALU pipe
  // that the sigmoid's own select already loads; ncu: ALU the busiest pipe at D = 64).
  // A half-width tile is always a masked one (its rows see fewer than kTileKV of its keys).
  auto sigmoid_tile = [&](FwdTileScores const& ts, int key0, auto width) {
    constexpr int kWidth = decltype(width)::value;
    auto& acc = acc_of(width);
    tile::fence_registers(acc);
    if (kWidth < kTileKV || key0 + kTileKV > ts.unmasked_end) {
      // (Derived here rather than kept live across the loop.)
      int const key_end_row[2] = {ts.len.key_end(ts.row0 + frag_row),
                                  ts.len.key_end(ts.row0 + frag_row + 8)};
      SIGATTN_PRAGMA_UNROLL
      for (int i = 0; i < kWidth / 2; ++i) {
        float const x = tile::apply_split<Sigmoid, Traits::kMufuEighths, kFmaForm>(
            i, fmaf(acc[i], args.score_mul, ts.bias_t));
        int const key = key0 + (i / 4) * 8 + (lane & 3) * 2 + (i & 1);
        acc[i] = key >= key_end_row[(i >> 1) & 1] ? 0.0f : x;
      }
    } else {
      SIGATTN_PRAGMA_UNROLL
      for (int i = 0; i < kWidth / 2; ++i)
        acc[i] = tile::apply_split<Sigmoid, Traits::kMufuEighths, kFmaForm>(
            i, fmaf(acc[i], args.score_mul, ts.bias_t));
    }
  };
  auto pack_p = [&](auto width) {
    auto& acc = acc_of(width);
    SIGATTN_PRAGMA_UNROLL
    for (int kk = 0; kk < decltype(width)::value / 16; ++kk) {
      p_frag[kk][0] = detail::pack2<Element>(acc[8 * kk + 0], acc[8 * kk + 1]);
      p_frag[kk][1] = detail::pack2<Element>(acc[8 * kk + 2], acc[8 * kk + 3]);
      p_frag[kk][2] = detail::pack2<Element>(acc[8 * kk + 4], acc[8 * kk + 5]);
      p_frag[kk][3] = detail::pack2<Element>(acc[8 * kk + 6], acc[8 * kk + 7]);
    }
  };

  int const items = static_cast<int>(smem.schedule().items);
  int kv_iter = 0;
  int q_tiles_begun = 0;  // work items with a visible key so far: the Q buffer and its phase
  // The Q buffer whose staged O a TMA store may still be reading (-1: none). The store's issuing
  // thread waits for that read and the warpgroup releases the buffer once the next work item's
  // first S product is issued (or at the next point of the item that needs no tensor work), so
  // that the read is not in the way of that issue: the warpgroup's next wgmma waits for every
  // warp, the issuing thread's too. The buffer is not needed sooner: the next Q tile lands in the
  // other one. With one Q buffer the next tile needs this one, and the epilogue releases it; so
  // it does in the four-consumer kernels, whose 112 registers the pending buffer's would spill
  // (ptxas 13.0: 8 bytes stored, 16 loaded).
  constexpr bool kDeferQRelease = Traits::kStagedO && kQBuffers > 1 && Traits::kConsumers < 4;
  int o_store_pending = -1;
  auto release_staged_o = [&] {
    if constexpr (kDeferQRelease) {
      if (o_store_pending >= 0) {
        if (group_thread == 0) tile::bulk_wait_group_read<0>();
        tile::mbarrier_arrive(smem.q_empty(o_store_pending));
        o_store_pending = -1;
      }
    }
  };
  for (int k = 0; k < items; ++k) {
    // The tile's info slot stays ours until the end of the tile (the epilogue reads it again).
    int const info_slot = k & 1;
    tile::mbarrier_wait(smem.info_full(info_slot), (k >> 1) & 1);
    FwdTilePlan const w = plan_from_info<Traits>(args, *smem.info(info_slot));
    SIGATTN_FWD_TRACE(kTrTile, k);
    if (w.n_end <= w.n_begin) {
      // A query tile past q_len, or one whose rows see no key (kv_len = 0): O is zero, and
      // nothing was loaded for it. This warpgroup writes its 64 rows.
      Element* const o = static_cast<Element*>(p.o) + w.tc.b * p.o_stride.batch +
                         w.tc.h * p.o_stride.head + w.row0 * p.o_stride.token;
      for (int idx = group_thread; idx < 64 * kChunksPerRow; idx += 128) {
        int const r = consumer * 64 + idx / kChunksPerRow;
        if (r < w.tile_rows)
          *reinterpret_cast<uint4*>(o + r * p.o_stride.token + (idx % kChunksPerRow) * 8) =
              make_uint4(0, 0, 0, 0);
      }
      release_staged_o();
      tile::mbarrier_arrive(smem.info_empty(info_slot));
      continue;
    }
    int const q_buffer = q_tiles_begun % kQBuffers;
    uint32_t const q_parity = (q_tiles_begun / kQBuffers) & 1;
    ++q_tiles_begun;

    float acc_o[kORegs];
    SIGATTN_PRAGMA_UNROLL
    for (int i = 0; i < kORegs; ++i) acc_o[i] = 0.0f;

    FwdTileScores const ts = tile_scores(w, smem.info(info_slot)->bias_t);
    // V(n) ready for its product: landed, and zeroed past kv_len in the tile that crosses it.
    // (`landed`: the caller has seen V(n)'s phase complete already.)
    // Without turns all consumers share the zeroing and meet at a barrier of all of them. With
    // turns consumer 0, the first in the turns' order, zeroes the rows alone, and only its own
    // warpgroup waits for the writes (its barrier kBarrierEpilogue0): every call of wait_v(n)
    // comes before the caller's turn that issues P(n) V(n), and the other consumers issue theirs
    // after consumer 0's turn (bar.arrive, then their bar.sync), so the turns order the zeros
    // before every product that reads them. A barrier of all consumers here would wait for the
    // last of them, about half an iteration behind the first, and undo their offset (session
    // 33's timelines: the tile crossing kv_len took about 700 cycles longer than a whole one).
    auto wait_v = [&](int n, bool landed = false) {
      int const stage = kv_iter % kStages;
      int const key0 = n * kTileKV;
      if (!landed) tile::mbarrier_wait(smem.v_full(stage), (kv_iter / kStages) & 1);
      if (key0 + kTileKV > ts.len.kv_len && (!kTurns || consumer == 0)) {
        constexpr int kThreads = kTurns ? 128 : Traits::kConsumerThreads;
        tile::zero_tail_rows<kTileKV, kHeadDim, kThreads>(
            smem.v(stage), max(ts.len.kv_len - key0, 0), consumer_thread);
        tile::fence_proxy_async_shared();
        tile::named_barrier_sync(kTurns ? kBarrierEpilogue0 : kBarrierConsumers, kThreads);
      }
    };
    // With O staged in the Q buffer, the buffer is released after the epilogue; otherwise as
    // soon as the tile's last S product is complete.
    auto release_q_after_s = [&](int buffer) {
      if constexpr (!Traits::kStagedO) tile::mbarrier_arrive(smem.q_empty(buffer));
    };

    tile::mbarrier_wait(smem.q_full(q_buffer), q_parity);
    SIGATTN_FWD_TRACE(kTrQReady, 0);
    // The key tiles this warpgroup's rows see: a prefix of the tile's n_tiles (which the tile's
    // last real row sets). Fewer when the rows are all past q_len (none: the last query tile of a
    // sequence whose length is not a tile multiple) or under a causal mask, where the first
    // warpgroups' rows end before the last ones' (192-row tiles of 128-key tiles at D = 64: one
    // key tile fewer for some). The key tiles past them take only the barrier steps of a working
    // warpgroup in the same order (each release after the matching wait, the turns where the
    // kernel takes them, and wait_v as many times), so that the other warpgroups run alone on
    // the tensor cores; their P would be all zeros. With turns consumer 0's wait_v in those steps
    // is needed for the others' results: it zeroes V's boundary rows for all consumers, also in
    // a tile its own rows do not see (bottom-right causal with kv_len > q_len, or a causal tile
    // of three consumers). A piece of the split tail visits the key tiles [n_begin, n_end) only,
    // and this warpgroup those of them below my_tiles: [n_begin, my_end).
    int const my_rows = consumer * 64 < w.q_rows ? min(consumer * 64 + 64, w.q_rows) : 0;
    int const my_tiles = key_tiles_through<Traits>(w.len, w.row0, my_rows);
    int const n_begin = w.n_begin;
    int const my_end = min(w.n_end, my_tiles);
    if (my_end > n_begin) {
      // This warpgroup's last key tile is half-width when its rows see only keys of the tile's
      // first half: the tile that crosses kv_len with at most kTileKV / 2 real keys, or under a
      // causal mask the diagonal's tile when the warpgroup's last row ends in its first half
      // (with a top-left or square mask, the first warpgroup's diagonal tile). Its S and P V
      // products and its sigmoid then cover that half only (a piece of the split tail that ends
      // before the warpgroup's last tile sees whole tiles: more than kTileKV keys from the start
      // of its last one).
      bool const half_last =
          Traits::kHalfLastTile &&
          w.len.key_end(w.row0 + my_rows - 1) - (my_end - 1) * kTileKV <= kTileKV / 2;

      // Prologue: S(n_begin) and its sigmoid.
      auto prologue = [&](auto width) {
        SIGATTN_FWD_TRACE(kTrTurnWait, 0);
        turn_wait();
        issue_s(kv_iter % kStages, q_buffer, width);
        turn_pass();
        SIGATTN_FWD_TRACE(kTrIssued, 0);
        release_staged_o();  // while the S product runs
        tile::wgmma_wait<0>();
        SIGATTN_FWD_TRACE(kTrSReady, 0);
        tile::mbarrier_arrive(smem.k_empty(kv_iter % kStages));
        if (my_end == n_begin + 1) release_q_after_s(q_buffer);
        sigmoid_tile(ts, n_begin * kTileKV, width);
        if constexpr (SIGATTN_FWD_TRACING) tile::fence_registers(acc_of(width));
        SIGATTN_FWD_TRACE(kTrSigEnd, 0);
        pack_p(width);
      };
      tile::mbarrier_wait(smem.k_full(kv_iter % kStages), (kv_iter / kStages) & 1);
      // (Each choice between the widths holds whole wgmma groups, issue to wait, so that ptxas
      // sees which group each wait retires.)
      if (half_last && my_end == n_begin + 1)
        prologue(HalfWidth{});
      else
        prologue(FullWidth{});

      // O += P(n) V(n) over the first `width` keys, asynchronously.
      auto issue_pv = [&](auto width) {
        int const stage = kv_iter % kStages;
        tile::fence_registers(acc_o);
        tile::wgmma_fence();
        uint32_t const v_units = smem_units + (smem.v_offset(stage) >> 4);
        SIGATTN_PRAGMA_UNROLL
        for (int kk = 0; kk < decltype(width)::value / 16; ++kk)
          tile::Wgmma<Element, kHeadDim>::rs(
              acc_o, p_frag[kk],
              tile::smem_desc_from_units<kTileKV * 128>(v_units + (tile::n_major_step(kk) >> 4)));
        tile::wgmma_commit();
      };

      // Without turns, whether K(n+1) and V(n) were seen landed by the previous iteration, which
      // tests them (mbarrier.test_wait, no blocking) once its S product is complete, so that the
      // answer's latency overlaps its sigmoid instead of delaying this iteration's issue. (With
      // turns the waits sit before the turn's, which is longer.)
      constexpr bool kEarlyKvTest = !kTurns && !kFast;
      bool kv_landed = false;
      // S(n+1) (of `width` keys) and P(n) V(n) in flight together.
      auto iteration = [&](int n, auto width) {
        int const stage = kv_iter % kStages;
        int const next = kv_iter + 1;
        SIGATTN_FWD_TRACE(kTrKvWait, n);
        if (!kv_landed) tile::mbarrier_wait(smem.k_full(next % kStages), (next / kStages) & 1);
        wait_v(n, kv_landed);
        SIGATTN_FWD_TRACE(kTrTurnWait, 1);
        turn_wait();
        issue_s(next % kStages, q_buffer, width);
        issue_pv(FullWidth{});
        turn_pass();
        SIGATTN_FWD_TRACE(kTrIssued, 1);
        tile::wgmma_wait<1>();  // S(n+1) is complete; the PV product may still run
        SIGATTN_FWD_TRACE(kTrSReady, 1);
        // The next iteration's K(n+2) and V(n+1). (Past the last iteration the answer goes
        // unused: the last P V waits for its V itself, and every work tile starts with false.)
        if constexpr (kEarlyKvTest)
          kv_landed =
              tile::mbarrier_test(smem.k_full((next + 1) % kStages), ((next + 1) / kStages) & 1) &
              tile::mbarrier_test(smem.v_full(next % kStages), (next / kStages) & 1);
        tile::mbarrier_arrive(smem.k_empty(next % kStages));
        if (n + 2 == my_end) release_q_after_s(q_buffer);  // last use of Q
        sigmoid_tile(ts, (n + 1) * kTileKV, width);
        if constexpr (SIGATTN_FWD_TRACING) tile::fence_registers(acc_of(width));
        SIGATTN_FWD_TRACE(kTrSigEnd, 1);
        // (With a plain wgmma_wait here, ptxas hoists the wait above most of the sigmoid: in the
        // SASS of d7b6a75 24 of 64 MUFU.EX2 at D = 128 ran after it, and all of them with
        // 176-key tiles, so that part of the sigmoid did not overlap the P V product.)
        tile::wgmma_wait_in_own_block<0>(args.num_tiles > 0);
        tile::fence_registers(acc_o);
        SIGATTN_FWD_TRACE(kTrPvReady, 1);
        tile::mbarrier_arrive(smem.v_empty(stage));  // this thread is done with V(n)
        pack_p(width);
      };
      // Every key tile but the last (and, when the last is half-width, but the one before it,
      // whose iteration issues the half S below). (No condition around the wgmma issues inside
      // the loop, so ptxas can see which group each wait retires and keeps the two products
      // asynchronous: no "wgmma serialized" warning.)
      int const full_end = half_last ? my_end - 1 : my_end;
      SIGATTN_PRAGMA_NO_UNROLL
      for (int n = n_begin; n + 1 < full_end; ++n, ++kv_iter) iteration(n, FullWidth{});
      if (half_last && my_end >= n_begin + 2) {
        iteration(my_end - 2, HalfWidth{});
        ++kv_iter;
      }
      // The last key tile's P V alone.
      auto last_pv = [&](auto width) {
        SIGATTN_FWD_TRACE(kTrTurnWait, 2);
        turn_wait();
        issue_pv(width);
        turn_pass();
        SIGATTN_FWD_TRACE(kTrIssued, 2);
        tile::wgmma_wait<0>();
        if constexpr (SIGATTN_FWD_TRACING) tile::fence_registers(acc_o);
        SIGATTN_FWD_TRACE(kTrPvReady, 2);
      };
      SIGATTN_FWD_TRACE(kTrKvWait, my_end - 1);
      wait_v(my_end - 1);
      if (half_last)
        last_pv(HalfWidth{});
      else
        last_pv(FullWidth{});
      tile::fence_registers(acc_o);
      tile::mbarrier_arrive(smem.v_empty(kv_iter % kStages));
      ++kv_iter;
    }
    // The barrier steps of the key tiles this warpgroup's rows do not see.
    for (int n = max(my_end, n_begin); n < w.n_end; ++n, ++kv_iter) {
      int const stage = kv_iter % kStages;
      tile::mbarrier_wait(smem.k_full(stage), (kv_iter / kStages) & 1);
      if (n == n_begin) {  // the turn of the first S
        turn_wait();
        turn_pass();
      }
      tile::mbarrier_arrive(smem.k_empty(stage));
      if (my_end <= n_begin && n + 1 == w.n_end) release_q_after_s(q_buffer);
      wait_v(n);
      turn_wait();  // the turn of S(n + 1) with P(n) V(n), or of the last P V
      turn_pass();
      tile::mbarrier_arrive(smem.v_empty(stage));
    }

    // Epilogue: rows past q_len are written as zeros. (The plan is derived again from the tile's
    // info slot rather than kept live across the main loop, whose registers are all taken.)
    release_staged_o();  // the previous tile's, where this one issued no S product
    FwdTilePlan const e = plan_from_info<Traits>(args, *smem.info(info_slot));
    if (e.role != kWholeTile) {
      // A piece of the split tail. This warpgroup's partial sums live in its slot of the
      // workspace as float4s in fragment order, [cta][consumer][j][thread], so that every access
      // is one coalesced 16-byte load or store per thread.
      auto slot_of = [&](int cta) {
        return reinterpret_cast<float4*>(args.split_partials) +
               (static_cast<size_t>(cta) * Traits::kConsumers + consumer) * (kORegs / 4) * 128 +
               group_thread;
      };
      unsigned* const flags = args.split_flags + consumer;
      if (e.role == kWriterPiece) {
        // Every thread's partial sum to L2, then (after the warpgroup's barrier) one thread
        // raises the flag: its release orders the other threads' stores, which the barrier
        // made visible to it, ahead of the flag.
        float4* const out = slot_of(blockIdx.x);
        SIGATTN_PRAGMA_UNROLL
        for (int j = 0; j < kORegs / 4; ++j)
          __stcg(out + j * 128,
                 make_float4(acc_o[4 * j], acc_o[4 * j + 1], acc_o[4 * j + 2], acc_o[4 * j + 3]));
        tile::named_barrier_sync(kBarrierEpilogue0 + consumer, 128);
        if (group_thread == 0) {
          wait_prerequisite_grids();  // the clear of the flags has completed
          __threadfence();
          store_release_gpu(flags + blockIdx.x * Traits::kConsumers, 1u);
        }
        // The Q buffer is not needed for staging; its S products are complete.
        if constexpr (Traits::kStagedO) tile::mbarrier_arrive(smem.q_empty(q_buffer));
        tile::mbarrier_arrive(smem.info_empty(info_slot));
        continue;
      }
      // An owner piece: one thread waits for the flags of the CTAs before this one that hold
      // earlier pieces of the tile (every CTA from first_writer on: no range of the tail is
      // empty), the barrier passes that on, and every thread adds their partial sums (from L2:
      // .cg loads).
      int const cta = static_cast<int>(blockIdx.x);
      if (group_thread == 0) {
        wait_prerequisite_grids();  // (a flag read before the clear could be a stale 1)
        for (int c = e.first_writer; c < cta; ++c)
          while (load_acquire_gpu(flags + c * Traits::kConsumers) == 0u) {
          }
      }
      tile::named_barrier_sync(kBarrierEpilogue0 + consumer, 128);
      for (int c = e.first_writer; c < cta; ++c) {
        float4 const* const in = slot_of(c);
        SIGATTN_PRAGMA_UNROLL
        for (int j = 0; j < kORegs / 4; ++j) {
          float4 const v = __ldcg(in + j * 128);
          acc_o[4 * j] += v.x;
          acc_o[4 * j + 1] += v.y;
          acc_o[4 * j + 2] += v.z;
          acc_o[4 * j + 3] += v.w;
        }
      }
    }
    if constexpr (Traits::kStagedO) {
      // O through this warpgroup's own rows of the tile's Q buffer (no other warpgroup reads
      // them, and its own S products are complete), rows past q_len as zeros, then one TMA store
      // per 64-column block (rows past max_q_len fall outside the map and are not written). The
      // first barrier keeps every warp's last S product ahead of the writes, the second every
      // thread's writes (made visible to the async proxy) ahead of the store. The buffer is
      // released once the store has read it, since the next Q tile lands in it by TMA; only the
      // issuing thread can wait for that, and the other threads go on to the next tile.
      char* const o_smem = smem.q(q_buffer);
      tile::named_barrier_sync(kBarrierEpilogue0 + consumer, 128);
      bool const real[2] = {frag_row < e.q_rows, frag_row + 8 < e.q_rows};
      SIGATTN_PRAGMA_UNROLL
      for (int j = 0; j < kORegs / 4; ++j) {
        int const col = j * 8 + (lane & 3) * 2;
        SIGATTN_PRAGMA_UNROLL
        for (int half = 0; half < 2; ++half)
          *reinterpret_cast<uint32_t*>(
              o_smem + tile::swizzled_block_offset<kTileQ>(frag_row + 8 * half, col)) =
              real[half] ? detail::pack2<Element>(acc_o[4 * j + 2 * half],
                                                  acc_o[4 * j + 2 * half + 1])
                         : 0u;
      }
      tile::fence_proxy_async_shared();
      tile::named_barrier_sync(kBarrierEpilogue0 + consumer, 128);
      if (group_thread == 0) {
        SIGATTN_PRAGMA_UNROLL
        for (int blk = 0; blk < kHeadDim / 64; ++blk)
          tile::tma_store_4d(o_map, o_smem + blk * kTileQ * 128 + consumer * 64 * 128, blk * 64,
                             e.row0 + consumer * 64, e.tc.h, e.tc.b);
        tile::bulk_commit_group();
        if constexpr (!kDeferQRelease) tile::bulk_wait_group_read<0>();
      }
      if constexpr (kDeferQRelease)
        o_store_pending = q_buffer;
      else
        tile::mbarrier_arrive(smem.q_empty(q_buffer));
      SIGATTN_FWD_TRACE(kTrEpiEnd, 0);
    } else {
      // Straight from the accumulator fragment: each thread stores its two rows, 4 bytes per
      // column pair (the four threads of a quad cover 16 contiguous bytes of a row).
      Element* const o_tile = static_cast<Element*>(p.o) + e.tc.b * p.o_stride.batch +
                              e.tc.h * p.o_stride.head + e.row0 * p.o_stride.token;
      SIGATTN_PRAGMA_UNROLL
      for (int half = 0; half < 2; ++half) {
        int const r = frag_row + 8 * half;
        if (r < e.tile_rows) {
          bool const real = r < e.q_rows;
          Element* const row = o_tile + r * p.o_stride.token + (lane & 3) * 2;
          SIGATTN_PRAGMA_UNROLL
          for (int j = 0; j < kORegs / 4; ++j)
            *reinterpret_cast<uint32_t*>(row + j * 8) =
                real ? detail::pack2<Element>(acc_o[4 * j + 2 * half], acc_o[4 * j + 2 * half + 1])
                     : 0u;
        }
      }
    }
    tile::mbarrier_arrive(smem.info_empty(info_slot));
  }
  // The last O stores complete before the CTA exits.
  release_staged_o();
  if (Traits::kStagedO && group_thread == 0) tile::bulk_wait_group<0>();
  if (consumer == 0) turn_wait();  // the turn handed out at the start
}

/// The persistent Hopper forward: this CTA takes its positions of the length-aware order of
/// fwd_scheduler.cuh (longest sequences first, then the zero tiles past q_len).
template <class Traits, class Sigmoid>
SIGATTN_DEVICE void fwd_persistent(FwdArgs const& args, FwdTmaArgs const& tma, char* smem_raw) {
#if SIGATTN_ARCH_SM90A
  FwdSmemLayout<Traits> const smem{tile::align_shared_1024(smem_raw)};
  // The split tail needs its workspace and at most one partial-sum slot per CTA that it holds.
  bool const split = args.split_flags != nullptr && gridDim.x <= kMaxSplitCtas;
  if (threadIdx.x == 0) {
    for (int b = 0; b < Traits::kQBuffers; ++b) {
      tile::mbarrier_init(smem.q_full(b), 1);
      tile::mbarrier_init(smem.q_empty(b), Traits::kConsumerThreads);
    }
    for (int s = 0; s < Traits::kStages; ++s) {
      tile::mbarrier_init(smem.k_full(s), 1);
      tile::mbarrier_init(smem.v_full(s), 1);
      tile::mbarrier_init(smem.k_empty(s), Traits::kConsumerThreads);
      tile::mbarrier_init(smem.v_empty(s), Traits::kConsumerThreads);
    }
    for (int slot = 0; slot < 2; ++slot) {
      tile::mbarrier_init(smem.info_full(slot), 1);
      // Every consumer thread and the K/V producer.
      tile::mbarrier_init(smem.info_empty(slot), Traits::kConsumerThreads + 1);
    }
    tile::fence_barrier_init();
  }
  build_fwd_schedule<Traits::kTileQ, Traits::kTileKV>(args, smem.schedule(), split);
  __syncthreads();  // barriers and the schedule ready before anyone uses them

  if (threadIdx.x < 128) {
    tile::setmaxnreg_dec<Traits::kProducerRegisters>();
    if (threadIdx.x == 0) fwd_kv_producer<Traits>(args, tma, smem);
    if (threadIdx.x == 32) fwd_q_producer<Traits>(args, tma, smem);
    return;
  }
  tile::setmaxnreg_inc<Traits::kConsumerRegisters>();
  fwd_consumer<Traits, Sigmoid>(args, &tma.o_map, smem);
#elif defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
  // Built for sm_90 without the "a" features: never run silently empty.
  __trap();
#endif
}

}  // namespace sigattn::kernel::sm90

// The Hopper backward, key side, for one work tile (TileKV keys of one batch entry and kv head).
//
// Warpgroup 0 is the producer: after setmaxnreg.dec, one thread issues the TMA loads of the
// owned K and V tiles (once, on kv_full) and of the Q and dO tiles of every query tile of every
// query head of the group, into a ring of kStages stages (full completes on the TMA bytes; empty
// when every consumer thread has finished with a stage), and warp 1 is the dQ warp (below).
// Warpgroups 1.. are consumers of 64 keys each (in the kernels that compute dQ at D = 128, and in
// the D = 64 one with masks, they take turns issuing their products, half an iteration apart:
// bwd_tile's kTurns); per query tile, five products on wgmma (FlashAttention-3's backward with
// the roles of its "swapAB" variants, so that every operand is either in registers or in a layout
// TMA writes):
//   S^T  = K Q^T      SS, K-major both; P^T = sigmoid(scale S^T + bias), fp32 in registers
//   dP^T = V dO^T     SS, K-major both; dS^T = P^T (1 - P^T) dP^T * scale
//   dV  += P^T dO     RS, P^T packed from the accumulator, dO N-major
//   dK  += dS^T Q     RS, dS^T packed from the accumulator, Q N-major
//   dQ   = dS K       SS with both operands transposed: dS^T goes to shared memory as
//                     [key][query] (M-major for A), K is [key][d] (N-major for B); each consumer
//                     computes one 64 x 64 piece and writes it into an fp32 staging tile in
//                     shared memory, which the dQ warp adds to the fp32 workspace
//                     ([b][q][h][d], converted later by the portable kernel) with TMA tensor
//                     reductions (cp.reduce.async.bulk.tensor.4d ... add.tile), one per 32-column
//                     block of the tile: HeadDim / 32 instructions per query tile.
// History: the first version added each piece with 16 red.global.add.v2.f32 per thread per
// iteration, the loop's only global operations (ncu's top stall: a long-scoreboard wait on L1TEX,
// 31% of the stall cycles). A second one (225e0eb, reverted) staged the tile as here but issued a
// non-tensor bulk reduction per query row from one lane, 128 per iteration at D = 64, which the
// TMA unit works through one by one: D = 64 fell 28%. The tensor map here (tma.dq_map: dims
// {D, Sq, Hq, B}, boxes {32, TileQ}) turns a tile into HeadDim / 32 box reductions.
// The staging tile has kDqBuffers = 2 buffers, each HeadDim / 32 blocks of TileQ rows x 128 bytes
// with the 128-byte swizzle (the TMA box layout); named barrier kDqFull0 + buffer and mbarrier
// dq_empty(buffer) per buffer. For query tile it (the iteration's tile; with turns the leader
// stages tile it - 1 in iteration it and its last tile after the loop), buffer sb = it % 2:
//   consumers  (it >= 2) wait for dq_empty(sb)'s phase it / 2 - 1 (the reductions of tile it - 2
//              have read the buffer), write the piece with st.shared, fence.proxy.async (the
//              writes become visible to the TMA unit), bar.arrive kDqFull0 + sb;
//   dQ warp    bar.sync kDqFull0 + sb (all 32 lanes); lane 0: HeadDim / 32 tensor reductions,
//              commit, wait_group.read 0, arrive on dq_empty(sb) (count 1: completes its phase
//              it / 2); after the last iteration, wait_group 0 (the global writes performed).
// A barrier never mixes two iterations' arrivals: consumers arrive on kDqFull0 + sb for tile
// it + 2 only after dq_empty(sb)'s phase for tile it, which the dQ warp completes after its
// bar.sync for tile it (one named barrier for both buffers would mix them: consumers may arrive
// for tile it + 1 before the dQ warp has synced for tile it). For the same reason an mbarrier
// phase is never skipped. Nobody waits for the last phases. The dK/dV epilogue stages
// through the K and V tiles, not the staging tile, so it may run while the last reductions still
// read it.
// Padded query rows: rows past max_q_len are outside the tensor, and TMA skips them. Rows in
// [q_len, max_q_len) are reduced too, adding exactly +-0.0: dS is 0 there (forced by a select or
// clear_outside, or without masks from dO's zeroed rows) and K's padded rows are zeroed, so every
// product term is a zero (for finite K).
// The workspace is internal (only the convert kernel reads it, and it writes zeros for those rows),
// so that is harmless.
// Without ComputeDq (the deterministic mode) the last product, the staging writes and the dQ warp
// are left out; the launcher then runs the Hopper query-side dQ kernel (bwd_dq.cuh), which sums
// every dQ element in a fixed order.
//
// Padding and masks: a key tile past kv_len, or one that no query sees, only writes zeros. P and
// dS are forced to exact 0 (by a select in the masked pass, or by clearing the 16-bit half in the
// packed fragment after the unmasked pass: clear_outside; never by a multiply) wherever a query
// is past q_len or a key past key_end(query), so NaN from padded rows never leaks through S or
// dP. The operands that enter a product along its reduction dimension are zeroed in shared
// memory where they are padding: K rows past kv_len (dQ = dS K) once, and Q and dO rows past
// q_len (dK += dS^T Q, dV += P^T dO) in the query tile that crosses q_len (TMA zero-fills only
// outside the tensor, and 0 * NaN is NaN). The D = 64 kernel for launches without a causal mask
// (MayMask false) masks nothing: it also zeroes V's padded rows, and the zeros make dS 0 and the
// padded terms vanish (see MayMask in bwd_tile).
#pragma once

#include <type_traits>

#include "sigattn/detail/numeric.cuh"
#include "sigattn/kernel/bwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"
#include "sigattn/kernel/sm90/bwd_traits.cuh"
#include "sigattn/tile/load.cuh"
#include "sigattn/tile/sigmoid.cuh"
#include "sigattn/tile/store.cuh"
#include "sigattn/tile/tma.cuh"
#include "sigattn/tile/wgmma.cuh"

namespace sigattn::kernel::sm90 {

// Named barrier ids of the backward kernel (0 is __syncthreads).
struct BwdBarrier {
  static constexpr int kConsumers = 1;  // all consumer threads
  static constexpr int kGroup0 = 2;     // + consumer index: one warpgroup's own threads
  static constexpr int kDqFull0 = 4;    // + staging buffer: consumers (arrive) + the dQ warp (sync)
  static constexpr int kTurn0 = 6;      // + consumer index: that warpgroup's turn to issue
};

// A diagnostic hook, compiled out unless the including program defines SIGATTN_BWD_TRACE(event,
// value) and SIGATTN_BWD_TRACE_STATE (a declaration at the start of a work tile's consumer code,
// for the hook's own state): every consumer thread then calls SIGATTN_BWD_TRACE at the events
// below (an idle consumer only at the first two; the consumer forces its accumulators before most
// events that end a pass, so that a time stamp taken there follows the pass). The state is
// declared anew for every work tile; the key side runs one work tile per CTA (tools/bwd_trace.cu
// starts every traced slot empty). Without the macros the kernel is the same instruction for
// instruction.
#ifdef SIGATTN_BWD_TRACE
#define SIGATTN_BWD_TRACING 1
#else
#define SIGATTN_BWD_TRACING 0
#define SIGATTN_BWD_TRACE_STATE
#define SIGATTN_BWD_TRACE(event, value) ((void)0)
#endif
enum BwdTraceEvent : int {
  kBtTile = 0,       // a work tile begins (value: its query-tile iterations)
  kBtKvReady = 1,    // its K and V landed (and padded rows zeroed)
  kBtQWait = 2,      // an iteration begins: waits for its Q and dO tile (value: iteration)
  kBtIssued = 3,     // S^T and dP^T issued
  kBtSReady = 4,     // S^T complete (with the fused pass: S^T and dP^T)
  kBtSigEnd = 5,     // the sigmoid pass done and dV issued (split passes only)
  kBtDpReady = 6,    // dP^T complete (split passes only)
  kBtPassEnd = 7,    // the elementwise work done (the grad pass, or the fused pass and dV issued)
  kBtDkIssued = 8,   // dK issued, and with dQ a dQ piece (without turns: after the barrier)
  kBtDkTurn = 9,     // dS^T stored (with dQ), and with turns the turn for dK taken
  kBtDkDv = 10,      // dV and dK complete, the stage released
  kBtDqStaged = 11,  // a dQ piece complete and staged (with dQ; with turns the leader's is of
                     // tile it - 1, nothing staged at it = 0, and its last after the loop with
                     // value `iterations`)
  kBtEpiEnd = 12,    // the work tile's dK and dV written
  kBtSTurn = 13,     // the turn for S^T and dP^T taken (without turns: its place)
};

/// The warp of the producer warpgroup that issues the dQ tensor reductions (warp 0 issues the TMA
/// loads).
inline constexpr int kBwdDqWarp = 1;

template <class Traits>
struct BwdSmemLayout {
  char* base;  // 1024-byte aligned

  SIGATTN_DEVICE char* k() const { return base; }
  SIGATTN_DEVICE char* v() const { return base + Traits::kKVBytes; }
  SIGATTN_DEVICE char* q(int stage) const {
    return base + 2 * Traits::kKVBytes + (2 * stage) * Traits::kQBytes;
  }
  SIGATTN_DEVICE char* dout(int stage) const {
    return base + 2 * Traits::kKVBytes + (2 * stage + 1) * Traits::kQBytes;
  }
  SIGATTN_DEVICE char* ds(int buffer) const {
    return base + 2 * Traits::kKVBytes + 2 * Traits::kStages * Traits::kQBytes +
           buffer * Traits::kDsBytes;
  }
  // fp32 dQ staging buffer: column block k (32 floats) at k * kDqBlockBytes, row r at r * 128,
  // 16-byte chunk c at (c ^ (r % 8)) * 16.
  SIGATTN_DEVICE char* dq(int buffer) const { return ds(2) + buffer * Traits::kDqBytes; }
  SIGATTN_DEVICE uint64_t* barriers() const {
    return reinterpret_cast<uint64_t*>(dq(Traits::kDqBuffers));
  }
  SIGATTN_DEVICE uint64_t* kv_full() const { return barriers(); }
  SIGATTN_DEVICE uint64_t* full(int s) const { return barriers() + 1 + s; }
  SIGATTN_DEVICE uint64_t* empty(int s) const { return barriers() + 1 + Traits::kStages + s; }
  SIGATTN_DEVICE uint64_t* dq_empty(int buffer) const {
    return barriers() + 1 + 2 * Traits::kStages + buffer;
  }
};

/// The dQ warp's loop: the same iterations as the producer; per iteration, once every consumer
/// has written its piece of staging buffer it % 2, lane 0 adds the buffer to
/// dq_accum[b, q0 : q0 + TileQ, h, :] with HeadDim / 32 TMA tensor reductions (one per 32-column
/// block; rows past max_q_len are outside the map and skipped) and frees the buffer on dq_empty
/// once they have read it. One lane issues everything: the instructions take their operands in
/// uniform registers, and there are only HeadDim / 32 of them.
template <class Traits>
SIGATTN_DEVICE void bwd_dq_warp(BwdArgs const& args, BwdTmaArgs const& tma,
                                BwdSmemLayout<Traits> const& smem, int b, int g, int m_begin,
                                int m_count, int iterations) {
  bool const leader = (threadIdx.x & 31) == 0;
  SIGATTN_PRAGMA_NO_UNROLL
  for (int it = 0; it < iterations; ++it) {
    int const sb = it % Traits::kDqBuffers;
    // Every consumer's piece of this buffer is written and fenced for the async proxy (the whole
    // warp takes part: bar.sync is warp-aligned).
    tile::named_barrier_sync(BwdBarrier::kDqFull0 + sb, Traits::kConsumerThreads + 32);
    if (leader) {
      int const h = g * args.group + it / m_count;
      int const q0 = (m_begin + it % m_count) * Traits::kTileQ;
      char const* const src = smem.dq(sb);
      SIGATTN_PRAGMA_UNROLL
      for (int blk = 0; blk < Traits::kHeadDim / 32; ++blk)
        tile::tma_reduce_add_4d(&tma.dq_map, src + blk * Traits::kDqBlockBytes, blk * 32, q0, h, b);
      tile::bulk_commit_group();
      // The reductions have read the buffer: the consumers may overwrite it.
      tile::bulk_wait_group_read<0>();
      tile::mbarrier_arrive(smem.dq_empty(sb));
    }
    __syncwarp();  // converged again before the next aligned bar.sync
  }
  // The last reductions' global writes are performed before the warp exits.
  if (leader) tile::bulk_wait_group<0>();
}

/// The query columns of one key row that a thread holds in the fused pass's accumulator
/// fragments (TileQ-query tiles): col0 + 8 m + e for m < TileQ / 8 and e < 2, col0 = 2 (lane % 4),
/// as bit b = 2 m + e of a mask (element i of the fragment is bit 2 (i / 4) + i % 2, of key row
/// (i / 2) % 2). Returns the bits of the columns inside [lo, hi); any lo and hi.
template <int TileQ>
SIGATTN_HOST_DEVICE uint32_t columns_inside(int col0, int lo, int hi) {
  static_assert(TileQ <= 128, "a thread's columns of one key row fit 32 bits");
  // The columns increase with b: those below x are the bits [0, below(x)).
  auto below = [col0](int x) {
    auto clamp = [](int v) { return min(max(v, 0), TileQ / 8); };
    return clamp((x - col0 + 7) >> 3) + clamp((x - col0 + 6) >> 3);
  };
  auto bits_below = [](int n) { return n >= 32 ? ~0u : (1u << n) - 1u; };
  return bits_below(below(hi)) & ~bits_below(below(lo));
}

/// The 32-bit keep mask of one packed pair of 16-bit elements whose columns are bits b (low half)
/// and b + 1 (high half) of `inside`: each half all ones where its bit is set, zeros elsewhere.
SIGATTN_HOST_DEVICE uint32_t pair_keep(uint32_t inside, int b) {
  return (static_cast<uint32_t>(static_cast<int32_t>(inside << (31 - b)) >> 31) & 0x0000FFFFu) |
         (static_cast<uint32_t>(static_cast<int32_t>(inside << (30 - b)) >> 31) & 0xFFFF0000u);
}

template <class Traits, class Sigmoid, bool ComputeDq, bool MayMask = true>
SIGATTN_DEVICE void bwd_tile(BwdArgs const& args, BwdTmaArgs const& tma, char* smem_raw,
                             int64_t tile_index) {
#if SIGATTN_ARCH_SM90A
  using Element = typename Traits::Element;
  constexpr int kHeadDim = Traits::kHeadDim;
  constexpr int kTileQ = Traits::kTileQ;
  constexpr int kTileKV = Traits::kTileKV;
  constexpr int kStages = Traits::kStages;
  constexpr int kBlocks = kHeadDim / 64;  // 64-column blocks per row
  static_assert(BwdBarrier::kGroup0 + Traits::kConsumers <= BwdBarrier::kDqFull0 &&
                    BwdBarrier::kDqFull0 + Traits::kDqBuffers <= BwdBarrier::kTurn0 &&
                    BwdBarrier::kTurn0 + Traits::kConsumers <= 16,
                "named barrier ids overlap or run out");

  BwdParams const& bp = args.p;
  FwdParams const& p = bp.fwd;
  int const thread = threadIdx.x;
  int const warp_group = thread / 128;

  // The key tiles of one (batch, kv head) are adjacent, in increasing order: the CTAs that run
  // at the same time stream the same Q and dO tiles and share them in L2 (the order of the first
  // version, key tile outermost, measured an L2 hit rate of 60% with ncu). Under a causal mask the
  // first key tiles see the most queries.
  int const n = static_cast<int>(tile_index % args.num_tiles_kv);
  int64_t const bh = tile_index / args.num_tiles_kv;
  int const b = static_cast<int>(bh / p.num_kv_heads);
  int const g = static_cast<int>(bh % p.num_kv_heads);
  SeqLens const len = read_seqlens(p, b);
  int const key0 = n * kTileKV;
  int const tile_rows = min(kTileKV, p.max_kv_len - key0);

  // (Formed where they are used, not here: nothing 64-bit stays live across the main loop.)
  auto dk_tile = [&] {
    return static_cast<Element*>(bp.dk) + b * bp.dk_stride.batch + g * bp.dk_stride.head +
           key0 * bp.dk_stride.token;
  };
  auto dv_tile = [&] {
    return static_cast<Element*>(bp.dv) + b * bp.dv_stride.batch + g * bp.dv_stride.head +
           key0 * bp.dv_stride.token;
  };

  // Queries that see a key of this tile: i < q_len and, when causal, i + diag_offset >= key0.
  int const q_begin = len.causal ? min(max(key0 - len.diag_offset, 0), len.q_len) : 0;
  int const m_begin = q_begin / kTileQ;
  int const m_count = (len.q_len + kTileQ - 1) / kTileQ - m_begin;
  int const iterations = key0 < len.kv_len && q_begin < len.q_len ? m_count * args.group : 0;

  if (iterations <= 0) {  // keys past kv_len, or keys no query sees: dK = dV = 0
    using RowLayout = tile::SwizzledTile<kTileKV, kHeadDim>;  // row/chunk arithmetic only
    tile::store_zero_rows<RowLayout, Traits::kThreads>(dk_tile(), bp.dk_stride.token, tile_rows,
                                                       thread);
    tile::store_zero_rows<RowLayout, Traits::kThreads>(dv_tile(), bp.dv_stride.token, tile_rows,
                                                       thread);
    return;
  }
  int const kv_rows = min(kTileKV, len.kv_len - key0);
  float const bias_t = read_bias(p, b, len.kv_len) * args.bias_mul;

  BwdSmemLayout<Traits> const smem{tile::align_shared_1024(smem_raw)};
  if (thread == 0) {
    tile::mbarrier_init(smem.kv_full(), 1);
    for (int s = 0; s < kStages; ++s) {
      tile::mbarrier_init(smem.full(s), 1);
      tile::mbarrier_init(smem.empty(s), Traits::kConsumerThreads);
    }
    if constexpr (ComputeDq) {
      for (int sb = 0; sb < Traits::kDqBuffers; ++sb)
        tile::mbarrier_init(smem.dq_empty(sb), 1);  // the dQ warp's lane 0
    }
    tile::fence_barrier_init();
  }
  __syncthreads();  // barriers initialised before anyone waits on them or TMA completes on them

  if (warp_group == 0) {
    // ---------------- producer ----------------
    tile::setmaxnreg_dec<Traits::kProducerRegisters>();
    if (thread == 0) {
      tile::mbarrier_arrive_expect_tx(smem.kv_full(), 2 * Traits::kKVBytes);
      for (int blk = 0; blk < kBlocks; ++blk) {
        tile::tma_load_4d(smem.k() + blk * kTileKV * 128, &tma.k_map, blk * 64, key0, g, b,
                          smem.kv_full());
        tile::tma_load_4d(smem.v() + blk * kTileKV * 128, &tma.v_map, blk * 64, key0, g, b,
                          smem.kv_full());
      }
      for (int it = 0; it < iterations; ++it) {
        int const s = it % kStages;
        if (it >= kStages) tile::mbarrier_wait(smem.empty(s), ((it / kStages) - 1) & 1);
        int const h = g * args.group + it / m_count;
        int const q0 = (m_begin + it % m_count) * kTileQ;
        tile::mbarrier_arrive_expect_tx(smem.full(s), 2 * Traits::kQBytes);
        for (int blk = 0; blk < kBlocks; ++blk) {
          tile::tma_load_4d(smem.q(s) + blk * kTileQ * 128, &tma.q_map, blk * 64, q0, h, b,
                            smem.full(s));
          tile::tma_load_4d(smem.dout(s) + blk * kTileQ * 128, &tma.do_map, blk * 64, q0, h, b,
                            smem.full(s));
        }
      }
    }
    if constexpr (ComputeDq) {
      // 24 registers are enough for this loop (no accumulators: the data moves smem -> L2).
      if (thread / 32 == kBwdDqWarp)
        bwd_dq_warp<Traits>(args, tma, smem, b, g, m_begin, m_count, iterations);
    }
    return;
  }

  // ---------------- consumers ----------------
  tile::setmaxnreg_inc<Traits::kConsumerRegisters>();
  int const consumer = warp_group - 1;
  int const consumer_thread = thread - 128;
  int const lane = thread & 31;
  int const warp_in_group = (thread / 32) & 3;
  // This thread's two key rows (tile-relative) in every accumulator fragment of S^T, dP^T, dK, dV.
  int const frag_row = consumer * 64 + warp_in_group * 16 + (lane >> 2);

  constexpr int kSRegs = kTileQ / 2;    // S^T and dP^T: 64 keys x TileQ queries
  constexpr int kORegs = kHeadDim / 2;  // dK and dV: 64 keys x HeadDim
  constexpr int kPSteps = kTileQ / 16;  // k16 steps of dV += P^T dO and dK += dS^T Q
  // The elementwise work in two passes overlapped with the products (64-query tiles), or in one
  // after both (128-query tiles: no registers for P^T beside S^T, dP^T and both fragments).
  constexpr bool kSplitPasses = kTileQ == 64;
  // The fused pass unmasked in every tile, then clear_outside in the tiles that cross a limit;
  // otherwise the masked pass in every tile. Only in the default kernels (the accurate sigmoid,
  // dQ by reductions): in the deterministic mode's and the fast mode's the clear made ptxas
  // spill 4 and 12 bytes (session 10), and they keep the masked pass.
  constexpr bool kClearOutside = ComputeDq && std::is_same<Sigmoid, tile::SigmoidAccurate>::value;
  // Without a causal mask (MayMask false, a kernel of its own at D = 64) no element needs
  // masking in registers: every padded row of K, V, Q and dO is zero in shared memory (below,
  // and in the query tile that crosses q_len), so for finite real rows S^T and dP^T are finite
  // in the padded rows and columns, dP^T is 0 there, and so is dS^T = P^T (1 - P^T) dP^T; P^T
  // times dO's zero rows adds exact zeros to dV, and the rows of dK and dV past kv_len are
  // written as zeros at the end. That kernel's loop has no masked code at all: a branch to
  // masked code in the loop, even one never taken, ends the block that holds the pass and the
  // dV issue, which then no longer overlaps the end of the pass (docs/performance.md, session
  // 10). One difference from the masked kernels, for inputs that are not finite: an Inf in a
  // real row now meets the zeroed padding in a tile that is partly padding (Inf * 0 = NaN), so
  // an Inf in K gives NaN in that key's dV, in V in its dK, in Q or dO in that query's dQ, where
  // the masked kernels gave finite values there.
  static_assert(MayMask || !kSplitPasses, "the kernel without masks is the fused pass's");
  float acc_dk[kORegs];
  float acc_dv[kORegs];
  SIGATTN_PRAGMA_UNROLL
  for (int i = 0; i < kORegs; ++i) acc_dk[i] = acc_dv[i] = 0.0f;

  char const* const k_rows_smem = smem.k() + consumer * 64 * 128;
  char const* const v_rows_smem = smem.v() + consumer * 64 * 128;

  SIGATTN_BWD_TRACE_STATE
  SIGATTN_BWD_TRACE(kBtTile, iterations);
  tile::mbarrier_wait(smem.kv_full(), 0);
  if constexpr (ComputeDq || !MayMask) {
    if (kv_rows < kTileKV) {
      // dQ = dS K reduces over all keys of the tile: K's padded rows must be zeros, not NaN.
      // Without masks K's and V's, in either mode, so that S^T and dP^T hold no NaN from them
      // (MayMask above).
      tile::zero_tail_rows<kTileKV, kHeadDim, Traits::kConsumerThreads>(smem.k(), kv_rows,
                                                                        consumer_thread);
      if constexpr (!MayMask)
        tile::zero_tail_rows<kTileKV, kHeadDim, Traits::kConsumerThreads>(smem.v(), kv_rows,
                                                                          consumer_thread);
      tile::fence_proxy_async_shared();
      // The zeroed rows are visible to every consumer's wgmma before the first product.
      tile::named_barrier_sync(BwdBarrier::kConsumers, Traits::kConsumerThreads);
    }
  }
  SIGATTN_BWD_TRACE(kBtKvReady, 0);

  // Ping-pong (see the turns below), in the kernels that compute dQ: the deterministic mode's
  // measured 1.8% slower with turns at S = 16K (docs/tuning.md). Traits::kTurns (D = 128), and at
  // D = 64 the kernel with masks, which serves the causal launches: +1.7 to +3.2% there at 4K
  // and 16K, -1.7 to +0.2% at 1K (session 25); the kernel without masks measured 1-3% slower
  // with turns (session 24).
  constexpr bool kTurns = (Traits::kTurns || MayMask) && ComputeDq;
  // Query tile it of stage s landed; in the tile that crosses q_len, Q's and dO's padded rows
  // zeroed (they enter dK and dV along the reduction dimension). Without turns all consumers
  // share the work, then every consumer's wgmma sees them after their barrier. With turns
  // (where no barrier of both consumers may wait inside the loop) consumer 0, the leader, does it
  // alone before its turn for S^T and dP^T: its own wgmma sees them after its warpgroup's
  // barrier, the follower's after the turns, which order every product of the follower's
  // iteration it after this.
  auto wait_q_tile = [&](int it, int q0) {
    int const s = it % kStages;
    tile::mbarrier_wait(smem.full(s), static_cast<uint32_t>(it / kStages) & 1);
    if ((!kTurns || consumer == 0) && q0 + kTileQ > len.q_len) {
      constexpr int kThreads = kTurns ? 128 : Traits::kConsumerThreads;
      int const first = len.q_len - q0;
      tile::zero_tail_rows<kTileQ, kHeadDim, kThreads>(smem.q(s), first, consumer_thread);
      tile::zero_tail_rows<kTileQ, kHeadDim, kThreads>(smem.dout(s), first, consumer_thread);
      tile::fence_proxy_async_shared();
      tile::named_barrier_sync(kTurns ? BwdBarrier::kGroup0 : BwdBarrier::kConsumers, kThreads);
    }
  };
  // This consumer's dQ piece: 64 queries of block qb x 64 head-dim columns of block db.
  int const qb = consumer % Traits::kQBlocks;
  int const db = consumer / Traits::kQBlocks;
  // The piece = dS K over all keys of dS^T buffer it % 2, one commit group.
  auto issue_dq = [&](int it, float(&acc_dq)[32]) {
    char const* const a_base = smem.ds(it & 1) + qb * kTileKV * 128;
    char const* const b_base = smem.k() + db * kTileKV * 128;
    SIGATTN_PRAGMA_UNROLL
    for (int i = 0; i < 32; ++i) acc_dq[i] = 0.0f;
    tile::fence_registers(acc_dq);
    tile::wgmma_fence();
    SIGATTN_PRAGMA_UNROLL
    for (int kk = 0; kk < kTileKV / 16; ++kk)
      tile::Wgmma<Element, 64>::ss_mn(acc_dq, tile::n_major_desc<kTileKV>(a_base, kk),
                                      tile::n_major_desc<kTileKV>(b_base, kk), kk > 0);
    tile::wgmma_commit();
  };
  // The piece into staging buffer it % 2 (row = query of the tile, column = head-dim index),
  // once the dQ warp's reductions of tile it - 2 have read it. Every row is written (rows past
  // q_len hold exact zeros, see the top of the file). This thread's values: rows q_row and
  // q_row + 8 (half), columns db * 64 + 8 j + 2 (lane % 4), i.e. column block 2 db + j / 4,
  // 16-byte chunk 2 (j % 4) + (lane % 4) / 2 of the row, bytes 8 (lane % 2) of it. q_row % 8 ==
  // lane / 4 for both halves, so the swizzled chunk is (2 (j % 4)) ^ (((lane / 2) % 2) ^ (lane /
  // 4)): a warp's 8-byte stores cover 8 rows x 32 bytes over all 32 banks twice (2 wavefronts,
  // the minimum). Then the writes are made visible to the dQ warp's tensor reductions (async
  // proxy), and it may go.
  auto stage_dq = [&](int it, float const(&acc_dq)[32]) {
    int const sb = it % Traits::kDqBuffers;
    if (it >= Traits::kDqBuffers)
      tile::mbarrier_wait(smem.dq_empty(sb),
                          static_cast<uint32_t>(it / Traits::kDqBuffers - 1) & 1);
    int const q_row = qb * 64 + warp_in_group * 16 + (lane >> 2);
    uint32_t const dq_row = tile::shared_address(smem.dq(sb)) + db * 2 * Traits::kDqBlockBytes +
                            q_row * 128 + (lane & 1) * 8;
    uint32_t const chunk_xor = ((((lane >> 1) & 1) ^ (lane >> 2)) & 7) << 4;
    SIGATTN_PRAGMA_UNROLL
    for (int half = 0; half < 2; ++half) {
      SIGATTN_PRAGMA_UNROLL
      for (int j = 0; j < 8; ++j)
        tile::st_shared_f32x2(dq_row + (j / 4) * Traits::kDqBlockBytes + half * 8 * 128 +
                                  (chunk_xor ^ ((j % 4) * 32)),
                              acc_dq[4 * j + 2 * half], acc_dq[4 * j + 2 * half + 1]);
    }
    tile::fence_proxy_async_shared();
    tile::named_barrier_arrive(BwdBarrier::kDqFull0 + sb, Traits::kConsumerThreads + 32);
  };

  // Ping-pong (kTurns): the two consumers take turns issuing their products, twice per
  // query tile: S^T and dP^T, then a dQ piece and dK (the piece first, so that its staging
  // overlaps dK's product). Consumer 0 leads and consumer 1 follows about half an iteration
  // behind, so that the tensor cores run one consumer's products while the other computes its
  // sigmoid and gradient (without turns, the barrier of both consumers before dQ = dS K keeps
  // them in lockstep, and both passes leave the tensor cores idle together). The turns, in the
  // order they pass (L the leader, F the follower, n iterations; a piece named by its tile):
  //   L: S(0)  F: (empty)  L: dQ(-1) dK(0)  F: S(0)
  //   L: S(1)  F: dQ(0) dK(0)  L: dQ(0) dK(1)  F: S(1)  ...
  //   L: S(it)  F: dQ(it - 1) dK(it - 1)  L: dQ(it - 1) dK(it)  F: S(it)  ...
  //   L: (empty)  F: dQ(n - 1) dK(n - 1)  L: dQ(n - 1)
  // A dQ piece of tile it needs both consumers' dS^T rows of tile it, which each writes before
  // its turn for dK(it): the follower's piece comes in that turn (the leader's rows came before),
  // the leader's in its next turn for dK (and after the loop in a turn of its own, after an empty
  // one). Every dS^T buffer is then read (both pieces of tile it) before either consumer
  // overwrites it with tile it + 2: each consumer writes it after its turn for S(it + 2), and by
  // then the other has waited for its own piece of tile it (the follower at the end of its
  // iteration it, before its turn for S(it + 1); the leader at the end of its iteration it + 1,
  // before its turn for S(it + 2)), and both of those turns come earlier. So two buffers are
  // enough, and no barrier of both consumers remains in the loop. In its first iteration the
  // leader's piece (of tile -1) is computed from buffer 1 and thrown away: the loop stays without
  // a branch around a wgmma (which may make ptxas serialise the kernel's wgmma), for
  // 1 / iterations of one consumer's dQ work.
  // Warpgroup c waits on barrier kTurn0 + c and passes the turn with bar.arrive on the other's.
  // The follower hands out the first turn; the leader does not pass its last one. Each takes
  // 2 x iterations + 2 turns, counting the hand-out as one of the follower's, so every barrier
  // phase completes. (The ids are derived from threadIdx.x at each use rather than kept live
  // across the loop.) Without turns the calls below do nothing, the dQ piece of tile it comes
  // after a barrier of both consumers in iteration it, and the order is the one before
  // session 24.
  auto turn_wait = [] {
    if constexpr (kTurns)
      tile::named_barrier_sync(BwdBarrier::kTurn0 + static_cast<int>(threadIdx.x / 128) - 1, 256);
  };
  auto turn_pass = [] {
    if constexpr (kTurns)
      tile::named_barrier_arrive(BwdBarrier::kTurn0 + static_cast<int>(threadIdx.x / 128) % 2,
                                 256);
  };
  // Without turns: every consumer's dS^T rows of the tile are written before any consumer reads
  // all keys of them.
  auto dq_join = [] {
    if constexpr (!kTurns)
      tile::named_barrier_sync(BwdBarrier::kConsumers, Traits::kConsumerThreads);
  };
  bool const leader = kTurns && consumer == 0;  // its dQ pieces come a turn later

  // A consumer whose 64 keys all lie past kv_len (the follower in a key tile whose real keys
  // end in its first half) has no dK, dV or dS of its own: it skips S^T, dP^T, the elementwise
  // work, dV and dK, and takes only the steps that the others need from it: its dQ piece (dQ =
  // dS K over all keys: its dS^T rows are zeros, written once into both buffers here) and the
  // staging after it, the release of each Q/dO stage (for the producer), and its turns (with
  // turns) or its share of the tail tile's zeroing and the barriers of both consumers (without:
  // the deterministic mode's kernels). The leader then runs its other products alone on the
  // tensor cores. (In a loop and an epilogue of their own, so that the working consumers' code is
  // as without it.)
  // Only in the kernels with 64-query tiles (D = 128). In the D = 64 kernel with masks and dQ
  // reductions, at its register limit, the extra path made ptxas spill 8 bytes in its loop; in the
  // D = 64 kernel without masks it cost 3-6% on every non-causal row, dense ones included, where no
  // consumer is ever idle (docs/performance.md, session 17).
  constexpr bool kIdlePath = kSplitPasses;
  // (Broadcast from lane 0: a condition the compiler knows to be warp-uniform keeps the working
  // consumers' wgmma descriptors in uniform registers after the branch.)
  bool const idle = __shfl_sync(0xffffffffu, static_cast<int>(consumer * 64 >= kv_rows), 0) != 0;
  if constexpr (kIdlePath && ComputeDq) {
    if (idle) {
      for (int buffer = 0; buffer < 2; ++buffer)
        tile::zero_tail_rows<kTileKV, kTileQ, 128>(smem.ds(buffer), consumer * 64,
                                                   consumer_thread & 127);
      tile::fence_proxy_async_shared();  // (ordered before the leader's dQ by the turns)
    }
  }
  if (kTurns && consumer != 0) {
    turn_pass();  // the leader's first turn
    turn_wait();  // the place of dK(-1) dQ(-1): nothing to issue
    turn_pass();
  }
  if (kIdlePath && idle) {
    SIGATTN_PRAGMA_NO_UNROLL
    for (int it = 0; it < iterations; ++it) {
      wait_q_tile(it, (m_begin + it % m_count) * kTileQ);
      tile::mbarrier_arrive(smem.empty(it % kStages));  // nothing of this stage is read here
      turn_wait();  // the place of S(it)
      turn_pass();
      turn_wait();
      if constexpr (ComputeDq) {
        dq_join();
        float acc_dq[32];
        issue_dq(it, acc_dq);
        turn_pass();
        tile::wgmma_wait<0>();
        tile::fence_registers(acc_dq);
        stage_dq(it, acc_dq);
      } else {
        turn_pass();
      }
    }
    // Its epilogue: the barrier that orders every consumer's last dQ product (which reads all
    // rows of K) before the working consumers stage dK and dV through K and V, then its rows of
    // dK and dV, all past kv_len, as zeros (its accumulators were never needed).
    tile::named_barrier_sync(BwdBarrier::kConsumers, Traits::kConsumerThreads);
    using RowLayout = tile::SwizzledTile<64, kHeadDim>;  // row/chunk arithmetic only
    int const first = consumer * 64;
    tile::store_zero_rows<RowLayout, 128>(dk_tile() + first * bp.dk_stride.token,
                                          bp.dk_stride.token, tile_rows - first,
                                          consumer_thread & 127);
    tile::store_zero_rows<RowLayout, 128>(dv_tile() + first * bp.dv_stride.token,
                                          bp.dv_stride.token, tile_rows - first,
                                          consumer_thread & 127);
    return;
  }

  // The first query of iteration it's tile, (m_begin + it % m_count) * TileQ. With turns it is
  // stepped rather than divided for: the division at the loop's top is about 30 instructions, a
  // MUFU operation among them, in the chain from one turn to the next. (Without turns the
  // division stays: in the D = 64 kernel without masks the stepped form's registers made ptxas
  // spill 24 bytes.)
  int const q_first = m_begin * kTileQ;
  int const q_last = (m_begin + m_count - 1) * kTileQ;
  int q_next = q_first;
  SIGATTN_PRAGMA_NO_UNROLL
  for (int it = 0; it < iterations; ++it) {
    int const s = it % kStages;
    int const q0 = kTurns ? q_next : (m_begin + it % m_count) * kTileQ;
    if constexpr (kTurns) q_next = q0 == q_last ? q_first : q0 + kTileQ;
    char* const q_smem = smem.q(s);
    char* const do_smem = smem.dout(s);

    SIGATTN_BWD_TRACE(kBtQWait, it);
    wait_q_tile(it, q0);

    // S^T = K Q^T and dP^T = V dO^T, two commit groups, in this consumer's turn.
    float acc_s[kSRegs];
    float acc_dp[kSRegs];
    SIGATTN_PRAGMA_UNROLL
    for (int i = 0; i < kSRegs; ++i) acc_s[i] = acc_dp[i] = 0.0f;
    turn_wait();
    SIGATTN_BWD_TRACE(kBtSTurn, it);
    tile::fence_registers(acc_s);
    tile::fence_registers(acc_dp);
    tile::wgmma_fence();
    SIGATTN_PRAGMA_UNROLL
    for (int k = 0; k < kHeadDim / 16; ++k)
      tile::Wgmma<Element, kTileQ>::ss(acc_s, tile::k_major_desc<kTileKV>(k_rows_smem, k),
                                       tile::k_major_desc<kTileQ>(q_smem, k), k > 0);
    tile::wgmma_commit();
    SIGATTN_PRAGMA_UNROLL
    for (int k = 0; k < kHeadDim / 16; ++k)
      tile::Wgmma<Element, kTileQ>::ss(acc_dp, tile::k_major_desc<kTileKV>(v_rows_smem, k),
                                       tile::k_major_desc<kTileQ>(do_smem, k), k > 0);
    tile::wgmma_commit();
    turn_pass();
    SIGATTN_BWD_TRACE(kBtIssued, it);

    // The elementwise work, P^T = sigmoid(S^T * scale + bias) and dS^T = P^T (1 - P^T) dP^T *
    // scale, is masked where a tile crosses a limit (q_len, kv_len or the causal diagonal;
    // nowhere in the kernel without masks, MayMask): key row r of this thread sees the
    // tile-relative query columns [lo[r], hi), hi from q_len, lo from the causal diagonal (query
    // >= key - diag_offset), an empty range for a key past kv_len. P^T and dS^T are packed to 16
    // bits as the A fragments of the k16 steps kk (16 queries each).
    bool const masked = q0 + kTileQ > len.q_len || key0 + kTileKV > len.kv_len ||
                        (len.causal && key0 + kTileKV - 1 > q0 + len.diag_offset);
    int const col0 = (lane & 3) * 2;
    uint32_t p_frag[kPSteps][4];
    uint32_t ds_frag[kPSteps][4];
    // Each pass exists in a masked and an unmasked version: as one loop with the limits inside,
    // the compiler evaluates the mask (two ISETP and two FSEL per element) in every tile. The
    // split passes (D = 128) compile both; the fused pass (D = 64) one of them (kClearOutside,
    // MayMask).
    // Without a mask no element is padding, so dP^T is finite and needs no select either (given
    // finite V and dO in the real rows: an Inf there times a P that underflowed to 0 now gives
    // NaN in dS instead of 0, as it would in any unfused implementation). Where the unmasked
    // fused pass and clear_outside serve a masked tile, the same holds for the elements inside
    // its limits.
    auto limits = [&](auto masked_tag, int& hi, int (&lo)[2]) {
      hi = kTileQ;
      lo[0] = lo[1] = 0;
      if constexpr (decltype(masked_tag)::value) {
        hi = len.q_len - q0;
        SIGATTN_PRAGMA_UNROLL
        for (int r = 0; r < 2; ++r) {
          int const key = key0 + frag_row + 8 * r;
          lo[r] = key >= len.kv_len ? kTileQ : len.causal ? key - len.diag_offset - q0 : 0;
        }
      }
    };
    // P^T of element i (masked by a select, not a multiply: NaN from padded rows stays out).
    auto sigmoid_at = [&](auto masked_tag, int i, int hi, int const (&lo)[2]) {
      float x = tile::apply_split<Sigmoid, Traits::kMufuEighths>(
          i, fmaf(acc_s[i], args.score_mul, bias_t));
      if constexpr (decltype(masked_tag)::value) {
        int const col = col0 + (i / 4) * 8 + (i & 1);
        x = (col < lo[(i >> 1) & 1] || col >= hi) ? 0.0f : x;
      }
      return x;
    };
    // dS^T of element i from its P^T (a select keeps NaN from padded V rows out where P^T is 0).
    // P (1 - P) as one FMA, P - P * P with a single rounding: as accurate as the product of P and
    // the exact 1 - P, and one instruction fewer.
    auto grad_at = [&](auto masked_tag, float x, int i) {
      float const grad = fmaf(-x, x, x) * acc_dp[i] * args.ds_scale;
      return decltype(masked_tag)::value ? (x != 0.0f ? grad : 0.0f) : grad;
    };
    // The fused pass (one per element, both products waited for): it keeps the live fp32
    // values to S^T and dP^T, which the 240-register budget of 128-query tiles (D = 64) needs.
    // Only one version is compiled per kernel (kClearOutside, MayMask).
    auto fused_pass = [&](auto masked_tag) {
      int hi;
      int lo[2];
      limits(masked_tag, hi, lo);
      SIGATTN_PRAGMA_UNROLL
      for (int kk = 0; kk < kPSteps; ++kk)
        SIGATTN_PRAGMA_UNROLL
        for (int r = 0; r < 4; ++r) {
          float pr[2];
          float ds[2];
          SIGATTN_PRAGMA_UNROLL
          for (int e = 0; e < 2; ++e) {
            int const i = 8 * kk + 2 * r + e;
            pr[e] = sigmoid_at(masked_tag, i, hi, lo);
            ds[e] = grad_at(masked_tag, pr[e], i);
          }
          p_frag[kk][r] = detail::pack2<Element>(pr[0], pr[1]);
          ds_frag[kk][r] = detail::pack2<Element>(ds[0], ds[1]);
        }
    };
    // The split passes (64-query tiles): P^T as soon as S^T is done, into acc_s in place, while
    // the tensor cores still run dP^T; dS^T once dP^T is done, while they run dV += P^T dO.
    auto sigmoid_pass = [&](auto masked_tag) {
      int hi;
      int lo[2];
      limits(masked_tag, hi, lo);
      SIGATTN_PRAGMA_UNROLL
      for (int kk = 0; kk < kPSteps; ++kk)
        SIGATTN_PRAGMA_UNROLL
        for (int r = 0; r < 4; ++r) {
          int const i = 8 * kk + 2 * r;
          acc_s[i] = sigmoid_at(masked_tag, i, hi, lo);
          acc_s[i + 1] = sigmoid_at(masked_tag, i + 1, hi, lo);
          p_frag[kk][r] = detail::pack2<Element>(acc_s[i], acc_s[i + 1]);
        }
    };
    auto grad_pass = [&](auto masked_tag) {
      SIGATTN_PRAGMA_UNROLL
      for (int kk = 0; kk < kPSteps; ++kk)
        SIGATTN_PRAGMA_UNROLL
        for (int r = 0; r < 4; ++r) {
          int const i = 8 * kk + 2 * r;
          ds_frag[kk][r] = detail::pack2<Element>(grad_at(masked_tag, acc_s[i], i),
                                                  grad_at(masked_tag, acc_s[i + 1], i + 1));
        }
    };
    // In a tile that crosses a limit, after the unmasked pass: the elements outside the limits
    // cleared in the packed P^T and dS^T fragments (a whole 16-bit half, so that whatever the pass
    // computed there from padding, NaN included, becomes an exact 0, as the masked version's
    // selects give). A few instructions per pair, only in the masked tiles (those that cross q_len
    // or kv_len, and the causal diagonal's), instead of a masked version of the whole pass beside
    // the unmasked one: with both versions in the loop the unmasked tiles ran about 8% slower
    // (D = 64, docs/performance.md, session 10).
    auto clear_outside = [&] {
      int hi;
      int lo[2];
      limits(std::true_type{}, hi, lo);
      uint32_t const inside[2] = {columns_inside<kTileQ>(col0, lo[0], hi),
                                  columns_inside<kTileQ>(col0, lo[1], hi)};
      SIGATTN_PRAGMA_UNROLL
      for (int kk = 0; kk < kPSteps; ++kk)
        SIGATTN_PRAGMA_UNROLL
        for (int r = 0; r < 4; ++r) {
          // Register r of step kk holds sigmoid_at's elements 8 kk + 2 r and 8 kk + 2 r + 1: the
          // columns of bits 4 kk + 2 (r / 2) and the next of key row r % 2.
          uint32_t const keep = pair_keep(inside[r & 1], 4 * kk + 2 * (r / 2));
          p_frag[kk][r] &= keep;
          ds_frag[kk][r] &= keep;
        }
    };
    // acc += A B over the tile's queries, A from registers (k16 step kk: frag[kk]), B the
    // N-major query tile b_smem; one commit group. dV += P^T dO and dK += dS^T Q.
    auto issue_rs = [&](float(&acc)[kORegs], uint32_t const(&frag)[kPSteps][4],
                        char const* b_smem) {
      tile::fence_registers(acc);
      tile::wgmma_fence();
      SIGATTN_PRAGMA_UNROLL
      for (int kk = 0; kk < kPSteps; ++kk)
        tile::Wgmma<Element, kHeadDim>::rs(acc, frag[kk], tile::n_major_desc<kTileQ>(b_smem, kk));
      tile::wgmma_commit();
    };

    if constexpr (kSplitPasses) {
      tile::wgmma_wait<1>();  // S^T is complete; dP^T may still run
      tile::fence_registers(acc_s);
      SIGATTN_BWD_TRACE(kBtSReady, it);
      if (masked) {
        sigmoid_pass(std::true_type{});
      } else {
        sigmoid_pass(std::false_type{});
      }
      issue_rs(acc_dv, p_frag, do_smem);  // dV += P^T dO
      SIGATTN_BWD_TRACE(kBtSigEnd, it);
      // dP^T is complete; dV may still run. (The wait in a basic block of its own: otherwise
      // ptxas may hoist it above the sigmoid pass, see tile::wgmma_wait_in_own_block.)
      tile::wgmma_wait_in_own_block<1>(masked);
      tile::fence_registers(acc_s);
      tile::fence_registers(acc_dp);
      SIGATTN_BWD_TRACE(kBtDpReady, it);
      if (masked) {
        grad_pass(std::true_type{});
      } else {
        grad_pass(std::false_type{});
      }
      if constexpr (SIGATTN_BWD_TRACING) tile::fence_registers(ds_frag);
      SIGATTN_BWD_TRACE(kBtPassEnd, it);
    } else {
      tile::wgmma_wait<0>();
      tile::fence_registers(acc_s);
      tile::fence_registers(acc_dp);
      SIGATTN_BWD_TRACE(kBtSReady, it);
      if constexpr (!MayMask) {
        fused_pass(std::false_type{});
      } else if constexpr (kClearOutside) {
        fused_pass(std::false_type{});
        if (masked) clear_outside();
      } else {
        fused_pass(std::true_type{});
      }
      issue_rs(acc_dv, p_frag, do_smem);  // dV += P^T dO
      SIGATTN_BWD_TRACE(kBtPassEnd, it);
    }

    if constexpr (ComputeDq) {
      // dS^T to shared memory as [key][query] (buffer it % 2: see the turns above for why no
      // consumer still reads tile it - 2 there), before the dK product is issued: that one reads
      // ds_frag as its A operand, and an issued wgmma's registers must not be accessed until it
      // is waited for.
      char* const ds_smem = smem.ds(it & 1);
      SIGATTN_PRAGMA_UNROLL
      for (int kk = 0; kk < kPSteps; ++kk) {
        int const col = kk * 16 + (lane & 3) * 2;
        *reinterpret_cast<uint32_t*>(
            ds_smem + tile::swizzled_block_offset<kTileKV>(frag_row, col)) = ds_frag[kk][0];
        *reinterpret_cast<uint32_t*>(
            ds_smem + tile::swizzled_block_offset<kTileKV>(frag_row + 8, col)) = ds_frag[kk][1];
        *reinterpret_cast<uint32_t*>(
            ds_smem + tile::swizzled_block_offset<kTileKV>(frag_row, col + 8)) = ds_frag[kk][2];
        *reinterpret_cast<uint32_t*>(
            ds_smem + tile::swizzled_block_offset<kTileKV>(frag_row + 8, col + 8)) =
            ds_frag[kk][3];
      }
      // The rows are visible to both consumers' dQ products after the turns (bar.sync and
      // bar.arrive order them, as the writes of the other warps of this warpgroup), or without
      // turns after the barrier of both consumers (dq_join).
      tile::fence_proxy_async_shared();
    }
    turn_wait();
    SIGATTN_BWD_TRACE(kBtDkTurn, it);
    // With turns the dQ piece is issued first, so that its staging overlaps dK's product;
    // without, dK first, so that it runs while the consumers meet at the barrier before dQ.
    constexpr bool kDqFirst = ComputeDq && kTurns;
    if constexpr (!kDqFirst) issue_rs(acc_dk, ds_frag, q_smem);  // dK += dS^T Q

    if constexpr (ComputeDq) {
      // This iteration's dQ piece: of tile it, or with turns the leader's of tile it - 1.
      int const dq_tile = leader ? it - 1 : it;
      dq_join();
      float acc_dq[32];
      issue_dq(dq_tile, acc_dq);
      if constexpr (kDqFirst) issue_rs(acc_dk, ds_frag, q_smem);  // dK += dS^T Q
      turn_pass();
      SIGATTN_BWD_TRACE(kBtDkIssued, it);

      if constexpr (kDqFirst) {
        tile::wgmma_wait<1>();  // dV and the dQ piece done (all but dK)
        tile::fence_registers(acc_dq);
        if (dq_tile >= 0) stage_dq(dq_tile, acc_dq);
        SIGATTN_BWD_TRACE(kBtDqStaged, it);
        tile::wgmma_wait<0>();  // dK done: the Q/dO stage is free
        tile::fence_registers(acc_dv);
        tile::fence_registers(acc_dk);
        tile::mbarrier_arrive(smem.empty(s));
        SIGATTN_BWD_TRACE(kBtDkDv, it);
      } else {
        tile::wgmma_wait<1>();  // dV and dK done (all but the dQ group): the Q/dO stage is free
        tile::fence_registers(acc_dv);
        tile::fence_registers(acc_dk);
        tile::mbarrier_arrive(smem.empty(s));
        SIGATTN_BWD_TRACE(kBtDkDv, it);
        tile::wgmma_wait<0>();
        tile::fence_registers(acc_dq);
        if (dq_tile >= 0) stage_dq(dq_tile, acc_dq);
        SIGATTN_BWD_TRACE(kBtDqStaged, it);
      }
    } else {
      turn_pass();
      SIGATTN_BWD_TRACE(kBtDkIssued, it);
      tile::wgmma_wait<0>();
      tile::fence_registers(acc_dv);
      tile::fence_registers(acc_dk);
      tile::mbarrier_arrive(smem.empty(s));  // this thread is done with stage s
      SIGATTN_BWD_TRACE(kBtDkDv, it);
    }
  }

  // The leader's last two turns: an empty one, then its dQ piece of the last tile (after the
  // follower's turn for dK(n - 1), before which the follower wrote its rows of that tile).
  if (leader) {
    turn_wait();
    turn_pass();
    turn_wait();
    if constexpr (ComputeDq) {
      float acc_dq[32];
      issue_dq(iterations - 1, acc_dq);
      tile::wgmma_wait<0>();
      tile::fence_registers(acc_dq);
      stage_dq(iterations - 1, acc_dq);
      SIGATTN_BWD_TRACE(kBtDqStaged, iterations);
    }
  }

  // Epilogue: dK and dV through this warpgroup's rows of the K and V buffers (after a barrier:
  // every consumer's dQ products read all rows of K), then 16-byte stores; keys past kv_len -> 0.
  tile::named_barrier_sync(BwdBarrier::kConsumers, Traits::kConsumerThreads);
  SIGATTN_PRAGMA_UNROLL
  for (int j = 0; j < kORegs / 4; ++j) {
    int const col = j * 8 + (lane & 3) * 2;
    int const o0 = tile::swizzled_block_offset<kTileKV>(frag_row, col);
    int const o8 = tile::swizzled_block_offset<kTileKV>(frag_row + 8, col);
    *reinterpret_cast<uint32_t*>(smem.k() + o0) =
        detail::pack2<Element>(acc_dk[4 * j + 0], acc_dk[4 * j + 1]);
    *reinterpret_cast<uint32_t*>(smem.k() + o8) =
        detail::pack2<Element>(acc_dk[4 * j + 2], acc_dk[4 * j + 3]);
    *reinterpret_cast<uint32_t*>(smem.v() + o0) =
        detail::pack2<Element>(acc_dv[4 * j + 0], acc_dv[4 * j + 1]);
    *reinterpret_cast<uint32_t*>(smem.v() + o8) =
        detail::pack2<Element>(acc_dv[4 * j + 2], acc_dv[4 * j + 3]);
  }
  // This warpgroup's staged rows are complete before its threads read across lanes and warps.
  tile::named_barrier_sync(BwdBarrier::kGroup0 + consumer, 128);
  int const group_thread = consumer_thread & 127;
  constexpr int kChunksPerRow = kHeadDim / 8;
  Element* const dk = dk_tile();
  Element* const dv = dv_tile();
  for (int idx = group_thread; idx < 64 * kChunksPerRow; idx += 128) {
    int const r = consumer * 64 + idx / kChunksPerRow;
    int const col = (idx % kChunksPerRow) * 8;
    if (key0 + r >= p.max_kv_len) continue;
    uint4 k_out = make_uint4(0, 0, 0, 0);
    uint4 v_out = make_uint4(0, 0, 0, 0);
    // (Limits recomputed here, not kept from the prologue: nothing extra lives across the loop.)
    if (key0 + r < len.kv_len) {
      int const o = tile::swizzled_block_offset<kTileKV>(r, col);
      k_out = *reinterpret_cast<uint4 const*>(smem.k() + o);
      v_out = *reinterpret_cast<uint4 const*>(smem.v() + o);
    }
    *reinterpret_cast<uint4*>(dk + r * bp.dk_stride.token + col) = k_out;
    *reinterpret_cast<uint4*>(dv + r * bp.dv_stride.token + col) = v_out;
  }
  SIGATTN_BWD_TRACE(kBtEpiEnd, 0);
#elif defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
  // Built for sm_90 without the "a" features: never run silently empty.
  __trap();
#endif
}

}  // namespace sigattn::kernel::sm90

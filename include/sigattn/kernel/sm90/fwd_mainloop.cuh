// The Hopper forward for one work tile (TileQ query rows of one batch entry and head).
//
// Warpgroup 0 is the producer: after setmaxnreg.dec, one thread issues the TMA loads of the Q tile
// and of every K and V tile the rows need, into a ring of kStages stages (k_full / v_full complete
// on the TMA bytes; kv_empty completes when every consumer thread has finished with a stage).
// Warpgroups 1.. are consumers of 64 query rows each: S = Q K^T on wgmma (both operands in shared
// memory), the sigmoid in fp32 on the accumulator registers, P packed to 16 bits in registers as
// the A operand of O += P V (wgmma with A from registers, V N-major in shared memory).
//
// Padding: key tiles past the rows' last visible key are never loaded; only the tile that crosses
// a limit is masked (P = 0 by a select, so NaN in padded K rows never leaks). V rows past kv_len in
// the tile that crosses kv_len are zeroed in shared memory before the product (TMA zero-fills only
// outside the tensor, and P = 0 times a NaN would still be NaN).
#pragma once

#include "sigattn/detail/numeric.cuh"
#include "sigattn/kernel/fwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"
#include "sigattn/kernel/sm90/fwd_traits.cuh"
#include "sigattn/tile/load.cuh"
#include "sigattn/tile/store.cuh"
#include "sigattn/tile/tma.cuh"
#include "sigattn/tile/wgmma.cuh"

namespace sigattn::kernel::sm90 {

// Named barrier ids (0 is __syncthreads).
constexpr int kBarrierConsumers = 1;   // all consumer threads: V boundary rows zeroed
constexpr int kBarrierEpilogue0 = 2;   // + consumer index: one warpgroup's O tile staged

template <class Traits>
struct FwdSmemLayout {
  char* base;  // 1024-byte aligned

  SIGATTN_DEVICE char* q() const { return base; }
  SIGATTN_DEVICE char* k(int stage) const {
    return base + Traits::kQBytes + (2 * stage) * Traits::kKVBytes;
  }
  SIGATTN_DEVICE char* v(int stage) const {
    return base + Traits::kQBytes + (2 * stage + 1) * Traits::kKVBytes;
  }
  SIGATTN_DEVICE uint64_t* barriers() const {
    return reinterpret_cast<uint64_t*>(base + Traits::kQBytes +
                                       2 * Traits::kStages * Traits::kKVBytes);
  }
  SIGATTN_DEVICE uint64_t* q_full() const { return barriers(); }
  SIGATTN_DEVICE uint64_t* k_full(int s) const { return barriers() + 1 + s; }
  SIGATTN_DEVICE uint64_t* v_full(int s) const { return barriers() + 1 + Traits::kStages + s; }
  SIGATTN_DEVICE uint64_t* kv_empty(int s) const {
    return barriers() + 1 + 2 * Traits::kStages + s;
  }
};

template <class Traits, class Sigmoid>
SIGATTN_DEVICE void fwd_tile(FwdArgs const& args, FwdTmaArgs const& tma, char* smem_raw,
                             int64_t tile_index) {
#if SIGATTN_ARCH_SM90A
  using Element = typename Traits::Element;
  constexpr int kHeadDim = Traits::kHeadDim;
  constexpr int kTileQ = Traits::kTileQ;
  constexpr int kTileKV = Traits::kTileKV;
  constexpr int kStages = Traits::kStages;
  constexpr int kBlocks = kHeadDim / 64;  // 64-column blocks per row

  FwdParams const& p = args.p;
  int const thread = threadIdx.x;
  int const warp_group = thread / 128;

  TileCoord const tc = decode_tile(args, tile_index);
  SeqLens const len = read_seqlens(p, tc.b);
  int const row0 = tc.m * kTileQ;
  int const hk = tc.h / args.group;
  Element* o = static_cast<Element*>(p.o) + tc.b * p.o_stride.batch + tc.h * p.o_stride.head +
               row0 * p.o_stride.token;
  int const tile_rows = min(kTileQ, p.max_q_len - row0);
  using RowLayout = tile::SwizzledTile<kTileQ, kHeadDim>;  // row/chunk arithmetic of O stores

  if (row0 >= len.q_len) {  // a query tile past q_len only writes zeros
    tile::store_zero_rows<RowLayout, Traits::kThreads>(o, p.o_stride.token, tile_rows, thread);
    return;
  }
  int const q_rows = min(kTileQ, len.q_len - row0);
  int const key_end = len.key_end(row0 + q_rows - 1);
  int const unmasked_end = len.key_end(row0);
  int const n_tiles = (key_end + kTileKV - 1) / kTileKV;
  float const bias_t = len.kv_len > 0 ? read_bias(p, tc.b, len.kv_len) * args.bias_mul : 0.0f;

  uintptr_t aligned = (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023};
  FwdSmemLayout<Traits> const smem{reinterpret_cast<char*>(aligned)};
  if (thread == 0) {
    tile::mbarrier_init(smem.q_full(), 1);
    for (int s = 0; s < kStages; ++s) {
      tile::mbarrier_init(smem.k_full(s), 1);
      tile::mbarrier_init(smem.v_full(s), 1);
      tile::mbarrier_init(smem.kv_empty(s), Traits::kConsumerThreads);
    }
    tile::fence_barrier_init();
  }
  __syncthreads();  // barriers initialised before anyone waits on them or TMA completes on them

  if (warp_group == 0) {
    // ---------------- producer ----------------
    tile::setmaxnreg_dec<Traits::kProducerRegisters>();
    if (thread == 0 && n_tiles > 0) {
      tile::mbarrier_arrive_expect_tx(smem.q_full(), Traits::kQBytes);
      for (int blk = 0; blk < kBlocks; ++blk)
        tile::tma_load_4d(smem.q() + blk * kTileQ * 128, &tma.q_map, blk * 64, row0, tc.h, tc.b,
                          smem.q_full());
      for (int n = 0; n < n_tiles; ++n) {
        int const s = n % kStages;
        if (n >= kStages) tile::mbarrier_wait(smem.kv_empty(s), ((n / kStages) - 1) & 1);
        int const key0 = n * kTileKV;
        tile::mbarrier_arrive_expect_tx(smem.k_full(s), Traits::kKVBytes);
        for (int blk = 0; blk < kBlocks; ++blk)
          tile::tma_load_4d(smem.k(s) + blk * kTileKV * 128, &tma.k_map, blk * 64, key0, hk, tc.b,
                            smem.k_full(s));
        tile::mbarrier_arrive_expect_tx(smem.v_full(s), Traits::kKVBytes);
        for (int blk = 0; blk < kBlocks; ++blk)
          tile::tma_load_4d(smem.v(s) + blk * kTileKV * 128, &tma.v_map, blk * 64, key0, hk, tc.b,
                            smem.v_full(s));
      }
    }
    return;
  }

  // ---------------- consumers ----------------
  tile::setmaxnreg_inc<Traits::kConsumerRegisters>();
  int const consumer = warp_group - 1;
  int const consumer_thread = thread - 128;
  int const lane = thread & 31;
  int const warp_in_group = (thread / 32) & 3;
  // This thread's two query rows (tile-relative) in every accumulator fragment.
  int const frag_row = consumer * 64 + warp_in_group * 16 + (lane >> 2);

  constexpr int kSRegs = kTileKV / 2;
  constexpr int kORegs = kHeadDim / 2;
  constexpr int kPSteps = kTileKV / 16;
  float acc_o[kORegs];
  SIGATTN_PRAGMA_UNROLL
  for (int i = 0; i < kORegs; ++i) acc_o[i] = 0.0f;
  int const key_end_row[2] = {len.key_end(row0 + frag_row), len.key_end(row0 + frag_row + 8)};

  if (n_tiles > 0) tile::mbarrier_wait(smem.q_full(), 0);
  char const* q_rows_smem = smem.q() + consumer * 64 * 128;

  SIGATTN_PRAGMA_NO_UNROLL
  for (int n = 0; n < n_tiles; ++n) {
    int const s = n % kStages;
    uint32_t const parity = (n / kStages) & 1;
    int const key0 = n * kTileKV;

    // S = Q K^T
    float acc_s[kSRegs];
    SIGATTN_PRAGMA_UNROLL
    for (int i = 0; i < kSRegs; ++i) acc_s[i] = 0.0f;
    tile::mbarrier_wait(smem.k_full(s), parity);
    tile::fence_registers(acc_s);
    tile::wgmma_fence();
    SIGATTN_PRAGMA_UNROLL
    for (int k = 0; k < kHeadDim / 16; ++k)
      tile::Wgmma<Element, kTileKV>::ss(acc_s, tile::k_major_desc<kTileQ>(q_rows_smem, k),
                                        tile::k_major_desc<kTileKV>(smem.k(s), k), k > 0);
    tile::wgmma_commit();
    tile::wgmma_wait<0>();
    tile::fence_registers(acc_s);

    // P = sigmoid(S * scale + bias), masked only in a tile that crosses a limit.
    bool const masked = key0 + kTileKV > unmasked_end;
    SIGATTN_PRAGMA_UNROLL
    for (int i = 0; i < kSRegs; ++i) {
      float x = Sigmoid::apply(fmaf(acc_s[i], args.score_mul, bias_t));
      if (masked) {
        int const key = key0 + (i / 4) * 8 + (lane & 3) * 2 + (i & 1);
        if (key >= key_end_row[(i >> 1) & 1]) x = 0.0f;
      }
      acc_s[i] = x;
    }
    uint32_t p_frag[kPSteps][4];
    SIGATTN_PRAGMA_UNROLL
    for (int kk = 0; kk < kPSteps; ++kk) {
      p_frag[kk][0] = detail::pack2<Element>(acc_s[8 * kk + 0], acc_s[8 * kk + 1]);
      p_frag[kk][1] = detail::pack2<Element>(acc_s[8 * kk + 2], acc_s[8 * kk + 3]);
      p_frag[kk][2] = detail::pack2<Element>(acc_s[8 * kk + 4], acc_s[8 * kk + 5]);
      p_frag[kk][3] = detail::pack2<Element>(acc_s[8 * kk + 6], acc_s[8 * kk + 7]);
    }

    // O += P V
    tile::mbarrier_wait(smem.v_full(s), parity);
    if (key0 + kTileKV > len.kv_len) {
      // The tile that crosses kv_len: zero V's padded rows (all consumers share the work), make
      // the writes visible to the tensor cores, and let every consumer see them.
      int const first = max(len.kv_len - key0, 0);
      int const chunks = (kTileKV - first) * (kHeadDim / 8);
      for (int idx = consumer_thread; idx < chunks; idx += Traits::kConsumerThreads) {
        int const r = first + idx / (kHeadDim / 8);
        int const col = (idx % (kHeadDim / 8)) * 8;
        *reinterpret_cast<uint4*>(smem.v(s) + tile::swizzled_block_offset<kTileKV>(r, col)) =
            make_uint4(0, 0, 0, 0);
      }
      tile::fence_proxy_async_shared();
      tile::named_barrier_sync(kBarrierConsumers, Traits::kConsumerThreads);
    }
    tile::fence_registers(acc_o);
    tile::wgmma_fence();
    SIGATTN_PRAGMA_UNROLL
    for (int kk = 0; kk < kPSteps; ++kk)
      tile::Wgmma<Element, kHeadDim>::rs(acc_o, p_frag[kk],
                                         tile::n_major_desc<kTileKV>(smem.v(s), kk));
    tile::wgmma_commit();
    tile::wgmma_wait<0>();
    tile::fence_registers(acc_o);
    tile::mbarrier_arrive(smem.kv_empty(s));  // this thread is done with stage s
  }

  // Epilogue: O through this warpgroup's rows of the Q buffer (its wgmma reads are complete),
  // then 16-byte stores; rows past q_len are written as zeros.
  char* const o_smem = smem.q();
  SIGATTN_PRAGMA_UNROLL
  for (int j = 0; j < kORegs / 4; ++j) {
    int const col = j * 8 + (lane & 3) * 2;
    *reinterpret_cast<uint32_t*>(o_smem + tile::swizzled_block_offset<kTileQ>(frag_row, col)) =
        detail::pack2<Element>(acc_o[4 * j + 0], acc_o[4 * j + 1]);
    *reinterpret_cast<uint32_t*>(o_smem + tile::swizzled_block_offset<kTileQ>(frag_row + 8, col)) =
        detail::pack2<Element>(acc_o[4 * j + 2], acc_o[4 * j + 3]);
  }
  tile::named_barrier_sync(kBarrierEpilogue0 + consumer, 128);
  int const group_thread = consumer_thread & 127;
  constexpr int kChunksPerRow = kHeadDim / 8;
  for (int idx = group_thread; idx < 64 * kChunksPerRow; idx += 128) {
    int const r = consumer * 64 + idx / kChunksPerRow;
    int const col = (idx % kChunksPerRow) * 8;
    if (r >= tile_rows) continue;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < q_rows)
      v = *reinterpret_cast<uint4 const*>(o_smem + tile::swizzled_block_offset<kTileQ>(r, col));
    *reinterpret_cast<uint4*>(o + r * p.o_stride.token + col) = v;
  }
#elif defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
  // Built for sm_90 without the "a" features: never run silently empty.
  __trap();
#endif
}

}  // namespace sigattn::kernel::sm90

// The portable forward for one work tile (TileQ query rows of one batch entry and head):
// cp.async multi-stage loads of K/V tiles, S = Q K^T and O += P V on mma.sync m16n8k16, the
// sigmoid in fp32 between the two, P kept in registers as the A operand of the second product.
#pragma once

#include "sigattn/detail/numeric.cuh"
#include "sigattn/kernel/fwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"
#include "sigattn/kernel/sm80/fwd_traits.cuh"
#include "sigattn/tile/load.cuh"
#include "sigattn/tile/mma.cuh"
#include "sigattn/tile/store.cuh"

namespace sigattn::kernel::sm80 {

/// Shared memory of one CTA: the Q tile, then kStages pairs of (K tile, V tile).
template <class Traits>
struct FwdSmem {
  using Element = typename Traits::Element;
  char* base;

  SIGATTN_DEVICE Element* q() const { return reinterpret_cast<Element*>(base); }
  // Stages are addressed arithmetically: an array of stage pointers indexed by a run-time stage
  // would live in local memory.
  SIGATTN_DEVICE Element* k(int stage) const {
    return reinterpret_cast<Element*>(base + Traits::kSmemQ + (2 * stage) * Traits::kSmemKV);
  }
  SIGATTN_DEVICE Element* v(int stage) const {
    return reinterpret_cast<Element*>(base + Traits::kSmemQ + (2 * stage + 1) * Traits::kSmemKV);
  }
};

/// S = Q K^T for this warp's rows against one K tile in shared memory.
template <class Traits>
SIGATTN_DEVICE void warp_qk(float (&s)[Traits::kMTiles][Traits::kNTilesS][4],
                            typename Traits::Element const* q_smem,
                            typename Traits::Element const* k_smem, int warp_row0, int lane) {
  using Element = typename Traits::Element;
  using QL = typename Traits::QLayout;
  using KL = typename Traits::KVLayout;
  SIGATTN_PRAGMA_UNROLL
  for (int mi = 0; mi < Traits::kMTiles; ++mi)
    SIGATTN_PRAGMA_UNROLL
    for (int nj = 0; nj < Traits::kNTilesS; ++nj)
      SIGATTN_PRAGMA_UNROLL
      for (int c = 0; c < 4; ++c) s[mi][nj][c] = 0.0f;

  // ldmatrix address pattern (see tile/mma.cuh): lane l feeds row (l % 8) of matrix (l / 8).
  int a_row = (lane & 7) + ((lane >> 3) & 1) * 8;  // A: matrices (rows 0-7|8-15) x (cols 0-7|8-15)
  int a_col = (lane >> 4) * 8;
  int b_row = (lane & 7) + (lane >> 4) * 8;        // K: matrices (keys 0-7|8-15) x (d 0-7|8-15)
  int b_col = ((lane >> 3) & 1) * 8;

  SIGATTN_PRAGMA_NO_UNROLL
  for (int k = 0; k < Traits::kKStepsQK; ++k) {
    uint32_t a[Traits::kMTiles][4];
    SIGATTN_PRAGMA_UNROLL
    for (int mi = 0; mi < Traits::kMTiles; ++mi)
      tile::ldmatrix_x4(a[mi], q_smem + QL::offset(warp_row0 + mi * 16 + a_row, k * 16 + a_col));
    SIGATTN_PRAGMA_UNROLL
    for (int np = 0; np < Traits::kNTilesS / 2; ++np) {
      uint32_t b[4];
      tile::ldmatrix_x4(b, k_smem + KL::offset(np * 16 + b_row, k * 16 + b_col));
      SIGATTN_PRAGMA_UNROLL
      for (int mi = 0; mi < Traits::kMTiles; ++mi) {
        tile::mma_16816<Element>(s[mi][2 * np], a[mi], b[0], b[1]);
        tile::mma_16816<Element>(s[mi][2 * np + 1], a[mi], b[2], b[3]);
      }
    }
  }
}

/// O += P V for this warp's rows; P arrives as packed A fragments (one per m16 tile and k16 step).
template <class Traits>
SIGATTN_DEVICE void warp_pv(float (&o)[Traits::kMTiles][Traits::kNTilesO][4],
                            uint32_t const (&p)[Traits::kMTiles][Traits::kKStepsPV][4],
                            typename Traits::Element const* v_smem, int lane) {
  using Element = typename Traits::Element;
  using KL = typename Traits::KVLayout;
  // V is [key][d] in shared memory; the B operand wants (k = key, n = d), so ldmatrix.trans.
  int v_row = (lane & 7) + ((lane >> 3) & 1) * 8;  // matrices (keys 0-7|8-15) x (d 0-7|8-15)
  int v_col = (lane >> 4) * 8;
  SIGATTN_PRAGMA_UNROLL
  for (int kk = 0; kk < Traits::kKStepsPV; ++kk) {
    SIGATTN_PRAGMA_UNROLL
    for (int nd = 0; nd < Traits::kNTilesO / 2; ++nd) {
      uint32_t b[4];
      tile::ldmatrix_x4_trans(b, v_smem + KL::offset(kk * 16 + v_row, nd * 16 + v_col));
      SIGATTN_PRAGMA_UNROLL
      for (int mi = 0; mi < Traits::kMTiles; ++mi) {
        tile::mma_16816<Element>(o[mi][2 * nd], p[mi][kk], b[0], b[1]);
        tile::mma_16816<Element>(o[mi][2 * nd + 1], p[mi][kk], b[2], b[3]);
      }
    }
  }
}

/// Packs fp32 C fragments of a (rows x TileKV) product into the A fragments of the next product:
/// the C fragment of two adjacent n8 tiles is exactly the A fragment of one k16 step.
template <class Traits>
SIGATTN_DEVICE void pack_c_to_a(float const (&s)[Traits::kMTiles][Traits::kNTilesS][4],
                                uint32_t (&p)[Traits::kMTiles][Traits::kKStepsPV][4]) {
  using Element = typename Traits::Element;
  SIGATTN_PRAGMA_UNROLL
  for (int mi = 0; mi < Traits::kMTiles; ++mi)
    SIGATTN_PRAGMA_UNROLL
    for (int kk = 0; kk < Traits::kKStepsPV; ++kk) {
      p[mi][kk][0] = detail::pack2<Element>(s[mi][2 * kk][0], s[mi][2 * kk][1]);
      p[mi][kk][1] = detail::pack2<Element>(s[mi][2 * kk][2], s[mi][2 * kk][3]);
      p[mi][kk][2] = detail::pack2<Element>(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
      p[mi][kk][3] = detail::pack2<Element>(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
    }
}

/// P = sigmoid(S * score_mul + bias_t), zeroed where masked, packed as A fragments of P V.
/// `key0` is the first key of the tile, `row0` the first query row of this warp; when Masked,
/// keys at or past `len.key_end(row)` get P = 0.
template <class Traits, class Sigmoid, bool Masked>
SIGATTN_DEVICE void sigmoid_to_p(float (&s)[Traits::kMTiles][Traits::kNTilesS][4],
                                 uint32_t (&p)[Traits::kMTiles][Traits::kKStepsPV][4],
                                 float score_mul, float bias_t, int key0, int row0,
                                 SeqLens const& len, int lane) {
  SIGATTN_PRAGMA_UNROLL
  for (int mi = 0; mi < Traits::kMTiles; ++mi) {
    int key_end[2] = {0, 0};
    if constexpr (Masked) {
      key_end[0] = len.key_end(row0 + mi * 16 + (lane >> 2));
      key_end[1] = len.key_end(row0 + mi * 16 + (lane >> 2) + 8);
    }
    SIGATTN_PRAGMA_UNROLL
    for (int nj = 0; nj < Traits::kNTilesS; ++nj) {
      SIGATTN_PRAGMA_UNROLL
      for (int c = 0; c < 4; ++c) {
        float x = Sigmoid::apply(fmaf(s[mi][nj][c], score_mul, bias_t));
        if constexpr (Masked) {
          int key = key0 + nj * 8 + (lane & 3) * 2 + (c & 1);
          if (key >= key_end[c >> 1]) x = 0.0f;
        }
        s[mi][nj][c] = x;
      }
    }
  }
  pack_c_to_a<Traits>(s, p);
}

/// Computes and stores one work tile. `smem_raw` holds Traits::kSmemBytes; every thread of the
/// CTA calls this with the same tile.
template <class Traits, class Sigmoid>
SIGATTN_DEVICE void fwd_tile(FwdArgs const& args, char* smem_raw, int64_t tile_index) {
  using Element = typename Traits::Element;
  constexpr int kThreads = Traits::kThreads;
  constexpr int kTileQ = Traits::kTileQ;
  constexpr int kTileKV = Traits::kTileKV;
  constexpr int kStages = Traits::kStages;

  FwdParams const& p = args.p;
  int const thread = threadIdx.x;
  int const lane = thread & 31;
  int const warp = thread >> 5;

  TileCoord const tc = decode_tile(args, tile_index);
  SeqLens const len = read_seqlens(p, tc.b);
  int const row0 = tc.m * kTileQ;
  int const hk = tc.h / args.group;

  Element* o = static_cast<Element*>(p.o) + tc.b * p.o_stride.batch + tc.h * p.o_stride.head +
               row0 * p.o_stride.token;
  int const tile_rows = min(kTileQ, p.max_q_len - row0);

  // A query tile past q_len only writes zeros.
  if (row0 >= len.q_len) {
    tile::store_zero_rows<typename Traits::QLayout, kThreads>(o, p.o_stride.token, tile_rows,
                                                              thread);
    return;
  }

  int const q_rows = min(kTileQ, len.q_len - row0);
  // Keys this tile needs: up to the last real row's limit; unmasked tiles end before the first
  // row's limit (key_end is non-decreasing in the row).
  int const key_end = len.key_end(row0 + q_rows - 1);
  int const unmasked_end = len.key_end(row0);
  int const n_tiles = (key_end + kTileKV - 1) / kTileKV;
  float const bias_t = len.kv_len > 0 ? read_bias(p, tc.b, len.kv_len) * args.bias_mul : 0.0f;

  Element const* q = static_cast<Element const*>(p.q) + tc.b * p.q_stride.batch +
                     tc.h * p.q_stride.head + row0 * p.q_stride.token;
  Element const* k = static_cast<Element const*>(p.k) + tc.b * p.k_stride.batch +
                     hk * p.k_stride.head;
  Element const* v = static_cast<Element const*>(p.v) + tc.b * p.v_stride.batch +
                     hk * p.v_stride.head;

  FwdSmem<Traits> const smem{smem_raw};
  auto load_kv = [&](int n) {
    int stage = n % kStages;
    int key0 = n * kTileKV;
    int rows = min(kTileKV, len.kv_len - key0);  // zero-fill keys past kv_len (NaN-safe)
    tile::load_tile_async<typename Traits::KVLayout, kThreads>(
        smem.k(stage), k + key0 * p.k_stride.token, p.k_stride.token, rows, thread);
    tile::load_tile_async<typename Traits::KVLayout, kThreads>(
        smem.v(stage), v + key0 * p.v_stride.token, p.v_stride.token, rows, thread);
  };

  // Prologue: Q and the first kStages - 1 key/value tiles, one commit group per tile.
  tile::load_tile_async<typename Traits::QLayout, kThreads>(smem.q(), q, p.q_stride.token, q_rows,
                                                            thread);
  SIGATTN_PRAGMA_UNROLL
  for (int n = 0; n < kStages - 1; ++n) {
    if (n < n_tiles) load_kv(n);
    tile::cp_async_commit();
  }

  int const warp_row0 = warp * Traits::kWarpRows;
  float acc_o[Traits::kMTiles][Traits::kNTilesO][4];
  SIGATTN_PRAGMA_UNROLL
  for (int mi = 0; mi < Traits::kMTiles; ++mi)
    SIGATTN_PRAGMA_UNROLL
    for (int nd = 0; nd < Traits::kNTilesO; ++nd)
      SIGATTN_PRAGMA_UNROLL
      for (int c = 0; c < 4; ++c) acc_o[mi][nd][c] = 0.0f;

  SIGATTN_PRAGMA_NO_UNROLL
  for (int n = 0; n < n_tiles; ++n) {
    // Tile n has landed for this thread; the barrier makes every thread's copies visible and
    // guarantees that nobody still reads the stage the next prefetch overwrites.
    tile::cp_async_wait<kStages - 2>();
    __syncthreads();
    if (n + kStages - 1 < n_tiles) load_kv(n + kStages - 1);
    tile::cp_async_commit();

    int const stage = n % kStages;
    float acc_s[Traits::kMTiles][Traits::kNTilesS][4];
    warp_qk<Traits>(acc_s, smem.q(), smem.k(stage), warp_row0, lane);

    uint32_t p_frag[Traits::kMTiles][Traits::kKStepsPV][4];
    int const key0 = n * kTileKV;
    if (key0 + kTileKV <= unmasked_end) {
      sigmoid_to_p<Traits, Sigmoid, false>(acc_s, p_frag, args.score_mul, bias_t, key0,
                                           row0 + warp_row0, len, lane);
    } else {
      sigmoid_to_p<Traits, Sigmoid, true>(acc_s, p_frag, args.score_mul, bias_t, key0,
                                          row0 + warp_row0, len, lane);
    }
    warp_pv<Traits>(acc_o, p_frag, smem.v(stage), lane);
  }
  // With no key tile the loop never waited: the Q copies (issued by any thread) must land
  // before this warp overwrites its Q rows with O.
  tile::cp_async_wait<0>();
  __syncthreads();

  // Epilogue: this warp's rows of O go through its own rows of the Q buffer (only this warp
  // ever read them), then out with 16-byte stores; rows past q_len are written as zeros.
  using WarpLayout = tile::SwizzledTile<Traits::kWarpRows, Traits::kHeadDim>;
  Element* o_smem = smem.q() + warp_row0 * Traits::kHeadDim;
  SIGATTN_PRAGMA_UNROLL
  for (int mi = 0; mi < Traits::kMTiles; ++mi) {
    SIGATTN_PRAGMA_UNROLL
    for (int nd = 0; nd < Traits::kNTilesO; ++nd) {
      int r = mi * 16 + (lane >> 2);
      int c = nd * 8 + (lane & 3) * 2;
      *reinterpret_cast<uint32_t*>(o_smem + WarpLayout::offset(r, c)) =
          detail::pack2<Element>(acc_o[mi][nd][0], acc_o[mi][nd][1]);
      *reinterpret_cast<uint32_t*>(o_smem + WarpLayout::offset(r + 8, c)) =
          detail::pack2<Element>(acc_o[mi][nd][2], acc_o[mi][nd][3]);
    }
  }
  __syncwarp();  // the 16-byte reads below cross lanes
  int const warp_rows = max(0, min(Traits::kWarpRows, tile_rows - warp_row0));
  int const warp_valid = max(0, min(Traits::kWarpRows, q_rows - warp_row0));
  tile::store_rows<WarpLayout, 32>(o + warp_row0 * p.o_stride.token, p.o_stride.token, o_smem,
                                   warp_rows, warp_valid, lane);
}

}  // namespace sigattn::kernel::sm80

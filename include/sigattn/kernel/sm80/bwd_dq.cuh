// The portable backward, query-side pieces:
//  - bwd_dq_tile: the deterministic mode's dQ. A CTA owns a query tile (like the forward) and
//    walks the key tiles: S = Q K^T, dP = dO V^T, dS = P (1 - P) dP, dQ += dS K. Three products
//    on top of the key-side kernel's four, but every dQ element is summed by one thread in a
//    fixed order: bitwise-reproducible.
//  - dq_convert_chunk: the atomic mode's epilogue, fp32 workspace -> dQ, padded rows -> 0.
#pragma once

#include "sigattn/detail/numeric.cuh"
#include "sigattn/kernel/bwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"
#include "sigattn/kernel/sm80/fwd_mainloop.cuh"
#include "sigattn/tile/load.cuh"
#include "sigattn/tile/store.cuh"

namespace sigattn::kernel::sm80 {

/// Shared memory of the dQ kernel: the forward's (Q, then K/V stages) plus one dO tile.
template <class Traits>
struct DqSmem {
  static constexpr int kBytes = Traits::kSmemBytes + Traits::kSmemQ;
};

template <class Traits, class Sigmoid>
SIGATTN_DEVICE void bwd_dq_tile(BwdArgs const& args, char* smem_raw, int64_t tile_index) {
  using Element = typename Traits::Element;
  using QL = typename Traits::QLayout;
  constexpr int kThreads = Traits::kThreads;
  constexpr int kTileQ = Traits::kTileQ;
  constexpr int kTileKV = Traits::kTileKV;
  constexpr int kStages = Traits::kStages;

  BwdParams const& bp = args.p;
  FwdParams const& p = bp.fwd;
  int const thread = threadIdx.x;
  int const lane = thread & 31;
  int const warp = thread >> 5;

  int64_t const bh_count = static_cast<int64_t>(p.batch) * p.num_heads;
  int const m = args.num_tiles_q - 1 - static_cast<int>(tile_index / bh_count);
  int const b = static_cast<int>((tile_index % bh_count) / p.num_heads);
  int const h = static_cast<int>(tile_index % p.num_heads);
  int const hk = h / args.group;
  SeqLens const len = read_seqlens(p, b);
  int const row0 = m * kTileQ;
  int const tile_rows = min(kTileQ, p.max_q_len - row0);
  Element* dq = static_cast<Element*>(bp.dq) + b * bp.dq_stride.batch + h * bp.dq_stride.head +
                row0 * bp.dq_stride.token;
  if (row0 >= len.q_len) {
    tile::store_zero_rows<QL, kThreads>(dq, bp.dq_stride.token, tile_rows, thread);
    return;
  }
  int const q_rows = min(kTileQ, len.q_len - row0);
  int const key_end = len.key_end(row0 + q_rows - 1);
  int const unmasked_end = len.key_end(row0);
  int const n_tiles = (key_end + kTileKV - 1) / kTileKV;
  float const bias_t = len.kv_len > 0 ? read_bias(p, b, len.kv_len) * args.bias_mul : 0.0f;

  FwdSmem<Traits> const smem{smem_raw};
  Element* const do_smem = reinterpret_cast<Element*>(smem_raw + Traits::kSmemBytes);
  Element const* q = static_cast<Element const*>(p.q) + b * p.q_stride.batch +
                     h * p.q_stride.head + row0 * p.q_stride.token;
  Element const* dout = static_cast<Element const*>(bp.dout) + b * bp.dout_stride.batch +
                        h * bp.dout_stride.head + row0 * bp.dout_stride.token;
  Element const* k = static_cast<Element const*>(p.k) + b * p.k_stride.batch +
                     hk * p.k_stride.head;
  Element const* v = static_cast<Element const*>(p.v) + b * p.v_stride.batch +
                     hk * p.v_stride.head;
  auto load_kv = [&](int n) {
    int stage = n % kStages;
    int key0 = n * kTileKV;
    int rows = min(kTileKV, len.kv_len - key0);
    tile::load_tile_async<typename Traits::KVLayout, kThreads>(
        smem.k(stage), k + key0 * p.k_stride.token, p.k_stride.token, rows, thread);
    tile::load_tile_async<typename Traits::KVLayout, kThreads>(
        smem.v(stage), v + key0 * p.v_stride.token, p.v_stride.token, rows, thread);
  };
  tile::load_tile_async<QL, kThreads>(smem.q(), q, p.q_stride.token, q_rows, thread);
  tile::load_tile_async<QL, kThreads>(do_smem, dout, bp.dout_stride.token, q_rows, thread);
  SIGATTN_PRAGMA_UNROLL
  for (int n = 0; n < kStages - 1; ++n) {
    if (n < n_tiles) load_kv(n);
    tile::cp_async_commit();
  }

  int const warp_row0 = warp * Traits::kWarpRows;
  float acc_dq[Traits::kMTiles][Traits::kNTilesO][4];
  SIGATTN_PRAGMA_UNROLL
  for (int mi = 0; mi < Traits::kMTiles; ++mi)
    SIGATTN_PRAGMA_UNROLL
    for (int nd = 0; nd < Traits::kNTilesO; ++nd)
      SIGATTN_PRAGMA_UNROLL
      for (int c = 0; c < 4; ++c) acc_dq[mi][nd][c] = 0.0f;

  SIGATTN_PRAGMA_NO_UNROLL
  for (int n = 0; n < n_tiles; ++n) {
    tile::cp_async_wait<kStages - 2>();
    __syncthreads();  // tile n visible to all; the stage refilled next is no longer read
    if (n + kStages - 1 < n_tiles) load_kv(n + kStages - 1);
    tile::cp_async_commit();
    int const stage = n % kStages;
    int const key0 = n * kTileKV;

    float prob[Traits::kMTiles][Traits::kNTilesS][4];
    uint32_t frag[Traits::kMTiles][Traits::kKStepsPV][4];
    warp_qk<Traits>(prob, smem.q(), smem.k(stage), warp_row0, lane);
    if (key0 + kTileKV <= unmasked_end)
      sigmoid_to_p<Traits, Sigmoid, false>(prob, frag, args.score_mul, bias_t, key0,
                                           row0 + warp_row0, len, lane);
    else
      sigmoid_to_p<Traits, Sigmoid, true>(prob, frag, args.score_mul, bias_t, key0,
                                          row0 + warp_row0, len, lane);
    float dp[Traits::kMTiles][Traits::kNTilesS][4];
    warp_qk<Traits>(dp, do_smem, smem.v(stage), warp_row0, lane);
    SIGATTN_PRAGMA_UNROLL
    for (int mi = 0; mi < Traits::kMTiles; ++mi)
      SIGATTN_PRAGMA_UNROLL
      for (int nj = 0; nj < Traits::kNTilesS; ++nj)
        SIGATTN_PRAGMA_UNROLL
        for (int c = 0; c < 4; ++c) {
          float x = prob[mi][nj][c];
          dp[mi][nj][c] = x * (1.0f - x) * dp[mi][nj][c] * args.ds_scale;
        }
    pack_c_to_a<Traits>(dp, frag);
    warp_pv<Traits>(acc_dq, frag, smem.k(stage), lane);  // dQ += dS K (K read like V)
  }
  // With no key tile the loop never waited: the Q and dO copies must land before this warp
  // overwrites its Q rows with dQ.
  tile::cp_async_wait<0>();
  __syncthreads();

  using WarpLayout = tile::SwizzledTile<Traits::kWarpRows, Traits::kHeadDim>;
  Element* dq_smem = smem.q() + warp_row0 * Traits::kHeadDim;
  SIGATTN_PRAGMA_UNROLL
  for (int mi = 0; mi < Traits::kMTiles; ++mi)
    SIGATTN_PRAGMA_UNROLL
    for (int nd = 0; nd < Traits::kNTilesO; ++nd)
      SIGATTN_PRAGMA_UNROLL
      for (int half = 0; half < 2; ++half) {
        int r = mi * 16 + (lane >> 2) + half * 8;
        int c = nd * 8 + (lane & 3) * 2;
        *reinterpret_cast<uint32_t*>(dq_smem + WarpLayout::offset(r, c)) = detail::pack2<Element>(
            acc_dq[mi][nd][2 * half], acc_dq[mi][nd][2 * half + 1]);
      }
  __syncwarp();
  int const warp_rows = max(0, min(Traits::kWarpRows, tile_rows - warp_row0));
  int const warp_valid = max(0, min(Traits::kWarpRows, q_rows - warp_row0));
  tile::store_rows<WarpLayout, 32>(dq + warp_row0 * bp.dq_stride.token, bp.dq_stride.token,
                                   dq_smem, warp_rows, warp_valid, lane);
}

/// fp32 dQ workspace -> dQ in the element type, 8 elements per thread; padded rows -> 0.
template <class Element>
SIGATTN_DEVICE void dq_convert_chunk(BwdArgs const& args, int64_t chunk) {
  BwdParams const& bp = args.p;
  FwdParams const& p = bp.fwd;
  int const chunks_per_row = p.head_dim / 8;
  int64_t const row = chunk / chunks_per_row;  // ((b * Sq + i) * Hq + h)
  int const col = static_cast<int>(chunk % chunks_per_row) * 8;
  int const h = static_cast<int>(row % p.num_heads);
  int const i = static_cast<int>((row / p.num_heads) % p.max_q_len);
  int const b = static_cast<int>(row / (static_cast<int64_t>(p.num_heads) * p.max_q_len));
  int const q_len = clamp_len(p.q_lens, b, p.max_q_len);
  uint4 out = make_uint4(0, 0, 0, 0);
  if (i < q_len) {
    float4 const* src = reinterpret_cast<float4 const*>(args.dq_accum + row * p.head_dim + col);
    float4 lo = src[0];
    float4 hi = src[1];
    out = make_uint4(detail::pack2<Element>(lo.x, lo.y), detail::pack2<Element>(lo.z, lo.w),
                     detail::pack2<Element>(hi.x, hi.y), detail::pack2<Element>(hi.z, hi.w));
  }
  Element* dst = static_cast<Element*>(bp.dq) + b * bp.dq_stride.batch + i * bp.dq_stride.token +
                 h * bp.dq_stride.head + col;
  *reinterpret_cast<uint4*>(dst) = out;
}

}  // namespace sigattn::kernel::sm80

// The portable backward, key-side: one CTA owns TileKV keys of one (batch, kv head), keeps their
// dK and dV rows in registers, and walks every query tile of every query head of its group: five
// products per tile (S^T = K Q^T, dV += P^T dO, dP^T = V dO^T, dK += dS^T Q, dQ += dS K). dQ goes
// out through fp32 atomics into the workspace (or, in the deterministic mode, is left to the
// query-side kernel in bwd_dq.cuh).
#pragma once

#include "sigattn/detail/numeric.cuh"
#include "sigattn/kernel/bwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"
#include "sigattn/kernel/sm80/bwd_traits.cuh"
#include "sigattn/kernel/sm80/fwd_mainloop.cuh"
#include "sigattn/tile/load.cuh"
#include "sigattn/tile/mma.cuh"
#include "sigattn/tile/store.cuh"

namespace sigattn::kernel::sm80 {

/// Adds two fp32 values to consecutive addresses (a vector atomic where the hardware has one).
SIGATTN_DEVICE void atomic_add2(float* addr, float x, float y) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(addr), make_float2(x, y));
#else
  atomicAdd(addr, x);
  atomicAdd(addr + 1, y);
#endif
}

/// dQ[rows of this warp] += dS K for one query tile: dS^T sits in shared memory as [key][query]
/// (so the A operand comes through ldmatrix.trans), K as [key][d] (B through ldmatrix.trans).
template <class Traits>
SIGATTN_DEVICE void warp_dq_atomic(typename Traits::Element const* ds_smem,
                                   typename Traits::Element const* k_smem, float* dq_rows,
                                   int64_t dq_row_stride, int valid_rows, int warp, int lane) {
  using Element = typename Traits::Element;
  using DsL = typename Traits::DsLayout;
  using KL = typename Traits::QLayout;
  constexpr int kChunkTiles = Traits::kDqColChunk / 8;
  // A = dS (query rows, key k): matrices (q 0-7|8-15) x (keys 0-7|8-15), stored [key][query].
  int a_key = (lane & 7) + (lane >> 4) * 8;
  int a_query = ((lane >> 3) & 1) * 8;
  // B = K (key k, d n): stored [key][d], as V in the forward.
  int b_key = (lane & 7) + ((lane >> 3) & 1) * 8;
  int b_col = (lane >> 4) * 8;
  int const q_base = warp * Traits::kDqRows;

  SIGATTN_PRAGMA_UNROLL
  for (int chunk = 0; chunk < Traits::kHeadDim / Traits::kDqColChunk; ++chunk) {
    float acc[Traits::kDqMTiles][kChunkTiles][4];
    SIGATTN_PRAGMA_UNROLL
    for (int mi = 0; mi < Traits::kDqMTiles; ++mi)
      SIGATTN_PRAGMA_UNROLL
      for (int nd = 0; nd < kChunkTiles; ++nd)
        SIGATTN_PRAGMA_UNROLL
        for (int c = 0; c < 4; ++c) acc[mi][nd][c] = 0.0f;
    SIGATTN_PRAGMA_UNROLL
    for (int ks = 0; ks < Traits::kDqKSteps; ++ks) {
      uint32_t a[Traits::kDqMTiles][4];
      SIGATTN_PRAGMA_UNROLL
      for (int mi = 0; mi < Traits::kDqMTiles; ++mi)
        tile::ldmatrix_x4_trans(a[mi],
                                ds_smem + DsL::offset(ks * 16 + a_key, q_base + mi * 16 + a_query));
      SIGATTN_PRAGMA_UNROLL
      for (int np = 0; np < kChunkTiles / 2; ++np) {
        uint32_t b[4];
        tile::ldmatrix_x4_trans(
            b, k_smem + KL::offset(ks * 16 + b_key, chunk * Traits::kDqColChunk + np * 16 + b_col));
        SIGATTN_PRAGMA_UNROLL
        for (int mi = 0; mi < Traits::kDqMTiles; ++mi) {
          tile::mma_16816<Element>(acc[mi][2 * np], a[mi], b[0], b[1]);
          tile::mma_16816<Element>(acc[mi][2 * np + 1], a[mi], b[2], b[3]);
        }
      }
    }
    SIGATTN_PRAGMA_UNROLL
    for (int mi = 0; mi < Traits::kDqMTiles; ++mi)
      SIGATTN_PRAGMA_UNROLL
      for (int half = 0; half < 2; ++half) {
        int r = q_base + mi * 16 + (lane >> 2) + half * 8;
        if (r >= valid_rows) continue;
        float* out = dq_rows + r * dq_row_stride + chunk * Traits::kDqColChunk + (lane & 3) * 2;
        SIGATTN_PRAGMA_UNROLL
        for (int nd = 0; nd < kChunkTiles; ++nd)
          atomic_add2(out + nd * 8, acc[mi][nd][2 * half], acc[mi][nd][2 * half + 1]);
      }
  }
}

/// Computes and stores dK and dV for one key tile (and adds its share of dQ when ComputeDq).
template <class Traits, class Sigmoid, bool ComputeDq>
SIGATTN_DEVICE void bwd_dkdv_tile(BwdArgs const& args, char* smem_raw, int64_t tile_index) {
  using Element = typename Traits::Element;
  using OwnedL = typename Traits::QLayout;
  using StreamL = typename Traits::KVLayout;
  constexpr int kThreads = Traits::kThreads;
  constexpr int kTileQ = Traits::kTileQ;
  constexpr int kTileKV = Traits::kTileKV;
  constexpr int kStages = Traits::kStages;

  BwdParams const& bp = args.p;
  FwdParams const& p = bp.fwd;
  int const thread = threadIdx.x;
  int const lane = thread & 31;
  int const warp = thread >> 5;

  // Key tiles in increasing order: under a causal mask the first key tiles see the most queries.
  int64_t const bh_count = static_cast<int64_t>(p.batch) * p.num_kv_heads;
  int const n = static_cast<int>(tile_index / bh_count);
  int const b = static_cast<int>((tile_index % bh_count) / p.num_kv_heads);
  int const g = static_cast<int>(tile_index % p.num_kv_heads);
  SeqLens const len = read_seqlens(p, b);
  int const key0 = n * kTileKV;
  int const tile_rows = min(kTileKV, p.max_kv_len - key0);

  Element* dk = static_cast<Element*>(bp.dk) + b * bp.dk_stride.batch + g * bp.dk_stride.head +
                key0 * bp.dk_stride.token;
  Element* dv = static_cast<Element*>(bp.dv) + b * bp.dv_stride.batch + g * bp.dv_stride.head +
                key0 * bp.dv_stride.token;
  if (key0 >= len.kv_len) {  // a key tile past kv_len only writes zeros
    tile::store_zero_rows<OwnedL, kThreads>(dk, bp.dk_stride.token, tile_rows, thread);
    tile::store_zero_rows<OwnedL, kThreads>(dv, bp.dv_stride.token, tile_rows, thread);
    return;
  }
  int const kv_rows = min(kTileKV, len.kv_len - key0);
  float const bias_t = read_bias(p, b, len.kv_len) * args.bias_mul;

  // Queries that see a key of this tile: i < q_len and, when causal, i + diag_offset >= key0.
  int const q_begin = len.causal ? min(max(key0 - len.diag_offset, 0), len.q_len) : 0;
  int const m_begin = q_begin / kTileQ;
  int const m_count = (len.q_len + kTileQ - 1) / kTileQ - m_begin;
  int const iterations = m_count * args.group;

  char* const owned = smem_raw;
  Element* const k_smem = reinterpret_cast<Element*>(owned);
  Element* const v_smem = reinterpret_cast<Element*>(owned + Traits::kSmemOwned);
  char* const streamed = owned + 2 * Traits::kSmemOwned;
  auto q_stage = [&](int s) {
    return reinterpret_cast<Element*>(streamed + (2 * s) * Traits::kSmemStreamed);
  };
  auto do_stage = [&](int s) {
    return reinterpret_cast<Element*>(streamed + (2 * s + 1) * Traits::kSmemStreamed);
  };
  Element* const ds_smem =
      reinterpret_cast<Element*>(streamed + 2 * kStages * Traits::kSmemStreamed);

  auto load_q_do = [&](int it) {
    int h = g * args.group + it / m_count;
    int q0 = (m_begin + it % m_count) * kTileQ;
    int rows = min(kTileQ, len.q_len - q0);  // zero-fill queries past q_len (NaN-safe)
    Element const* q = static_cast<Element const*>(p.q) + b * p.q_stride.batch +
                       h * p.q_stride.head + q0 * p.q_stride.token;
    Element const* dout = static_cast<Element const*>(bp.dout) + b * bp.dout_stride.batch +
                          h * bp.dout_stride.head + q0 * bp.dout_stride.token;
    int s = it % kStages;
    tile::load_tile_async<StreamL, kThreads>(q_stage(s), q, p.q_stride.token, rows, thread);
    tile::load_tile_async<StreamL, kThreads>(do_stage(s), dout, bp.dout_stride.token, rows,
                                             thread);
  };

  // Prologue: the owned K and V tiles ride in the first commit group.
  Element const* k = static_cast<Element const*>(p.k) + b * p.k_stride.batch +
                     g * p.k_stride.head + key0 * p.k_stride.token;
  Element const* v = static_cast<Element const*>(p.v) + b * p.v_stride.batch +
                     g * p.v_stride.head + key0 * p.v_stride.token;
  tile::load_tile_async<OwnedL, kThreads>(k_smem, k, p.k_stride.token, kv_rows, thread);
  tile::load_tile_async<OwnedL, kThreads>(v_smem, v, p.v_stride.token, kv_rows, thread);
  SIGATTN_PRAGMA_UNROLL
  for (int it = 0; it < kStages - 1; ++it) {
    if (it < iterations) load_q_do(it);
    tile::cp_async_commit();
  }

  int const warp_row0 = warp * Traits::kWarpRows;
  float acc_dk[Traits::kMTiles][Traits::kNTilesO][4];
  float acc_dv[Traits::kMTiles][Traits::kNTilesO][4];
  SIGATTN_PRAGMA_UNROLL
  for (int mi = 0; mi < Traits::kMTiles; ++mi)
    SIGATTN_PRAGMA_UNROLL
    for (int nd = 0; nd < Traits::kNTilesO; ++nd)
      SIGATTN_PRAGMA_UNROLL
      for (int c = 0; c < 4; ++c) acc_dk[mi][nd][c] = acc_dv[mi][nd][c] = 0.0f;

  SIGATTN_PRAGMA_NO_UNROLL
  for (int it = 0; it < iterations; ++it) {
    // Tile `it` has landed; after the barrier nobody still reads the stage (nor, with ComputeDq,
    // the dS^T tile) that this iteration overwrites.
    tile::cp_async_wait<kStages - 2>();
    __syncthreads();
    if (it + kStages - 1 < iterations) load_q_do(it + kStages - 1);
    tile::cp_async_commit();

    int const s = it % kStages;
    int const h = g * args.group + it / m_count;
    int const q0 = (m_begin + it % m_count) * kTileQ;
    Element const* q_tile = q_stage(s);
    Element const* do_tile = do_stage(s);

    // S^T = K Q^T, then P^T in fp32 (kept for dS) and packed (the A operand of dV += P^T dO).
    float pt[Traits::kMTiles][Traits::kNTilesS][4];
    warp_qk<Traits>(pt, k_smem, q_tile, warp_row0, lane);
    bool const masked = q0 + kTileQ > len.q_len || key0 + kTileKV > len.kv_len ||
                        (len.causal && key0 + kTileKV - 1 > q0 + len.diag_offset);
    SIGATTN_PRAGMA_UNROLL
    for (int mi = 0; mi < Traits::kMTiles; ++mi)
      SIGATTN_PRAGMA_UNROLL
      for (int nj = 0; nj < Traits::kNTilesS; ++nj)
        SIGATTN_PRAGMA_UNROLL
        for (int c = 0; c < 4; ++c) {
          float x = Sigmoid::apply(fmaf(pt[mi][nj][c], args.score_mul, bias_t));
          if (masked) {
            int key = key0 + warp_row0 + mi * 16 + (lane >> 2) + (c >> 1) * 8;
            int query = q0 + nj * 8 + (lane & 3) * 2 + (c & 1);
            if (query >= len.q_len || key >= len.key_end(query)) x = 0.0f;
          }
          pt[mi][nj][c] = x;
        }
    uint32_t frag[Traits::kMTiles][Traits::kKStepsPV][4];
    pack_c_to_a<Traits>(pt, frag);
    warp_pv<Traits>(acc_dv, frag, do_tile, lane);

    // dP^T = V dO^T, dS^T = P (1 - P) dP * scale, then dK += dS^T Q.
    float dpt[Traits::kMTiles][Traits::kNTilesS][4];
    warp_qk<Traits>(dpt, v_smem, do_tile, warp_row0, lane);
    SIGATTN_PRAGMA_UNROLL
    for (int mi = 0; mi < Traits::kMTiles; ++mi)
      SIGATTN_PRAGMA_UNROLL
      for (int nj = 0; nj < Traits::kNTilesS; ++nj)
        SIGATTN_PRAGMA_UNROLL
        for (int c = 0; c < 4; ++c) {
          float prob = pt[mi][nj][c];
          dpt[mi][nj][c] = prob * (1.0f - prob) * dpt[mi][nj][c] * args.ds_scale;
        }
    pack_c_to_a<Traits>(dpt, frag);
    warp_pv<Traits>(acc_dk, frag, q_tile, lane);

    if constexpr (ComputeDq) {
      // dS^T goes to shared memory ([key][query]) so that every warp can read a query slice.
      using DsL = typename Traits::DsLayout;
      SIGATTN_PRAGMA_UNROLL
      for (int mi = 0; mi < Traits::kMTiles; ++mi)
        SIGATTN_PRAGMA_UNROLL
        for (int kk = 0; kk < Traits::kKStepsPV; ++kk) {
          int r = warp_row0 + mi * 16 + (lane >> 2);
          int c = kk * 16 + (lane & 3) * 2;
          auto* base = reinterpret_cast<uint32_t*>(ds_smem);
          base[DsL::offset(r, c) / 2] = frag[mi][kk][0];
          base[DsL::offset(r + 8, c) / 2] = frag[mi][kk][1];
          base[DsL::offset(r, c + 8) / 2] = frag[mi][kk][2];
          base[DsL::offset(r + 8, c + 8) / 2] = frag[mi][kk][3];
        }
      __syncthreads();  // dS^T complete before any warp reads another warp's keys
      float* dq_rows = args.dq_accum +
                       ((static_cast<int64_t>(b) * p.max_q_len + q0) * p.num_heads + h) *
                           p.head_dim;
      warp_dq_atomic<Traits>(ds_smem, k_smem, dq_rows,
                             static_cast<int64_t>(p.num_heads) * p.head_dim, len.q_len - q0, warp,
                             lane);
    }
  }
  tile::cp_async_wait<0>();
  __syncthreads();  // every warp is done reading K and V (the dQ product reads all keys)

  // Epilogue: dK and dV through this warp's rows of the K and V buffers; keys past kv_len -> 0.
  using WarpLayout = tile::SwizzledTile<Traits::kWarpRows, Traits::kHeadDim>;
  Element* dk_smem = k_smem + warp_row0 * Traits::kHeadDim;
  Element* dv_smem = v_smem + warp_row0 * Traits::kHeadDim;
  SIGATTN_PRAGMA_UNROLL
  for (int mi = 0; mi < Traits::kMTiles; ++mi)
    SIGATTN_PRAGMA_UNROLL
    for (int nd = 0; nd < Traits::kNTilesO; ++nd)
      SIGATTN_PRAGMA_UNROLL
      for (int half = 0; half < 2; ++half) {
        int r = mi * 16 + (lane >> 2) + half * 8;
        int c = nd * 8 + (lane & 3) * 2;
        *reinterpret_cast<uint32_t*>(dk_smem + WarpLayout::offset(r, c)) = detail::pack2<Element>(
            acc_dk[mi][nd][2 * half], acc_dk[mi][nd][2 * half + 1]);
        *reinterpret_cast<uint32_t*>(dv_smem + WarpLayout::offset(r, c)) = detail::pack2<Element>(
            acc_dv[mi][nd][2 * half], acc_dv[mi][nd][2 * half + 1]);
      }
  __syncwarp();  // the 16-byte reads below cross lanes
  int const warp_rows = max(0, min(Traits::kWarpRows, tile_rows - warp_row0));
  int const warp_valid = max(0, min(Traits::kWarpRows, kv_rows - warp_row0));
  tile::store_rows<WarpLayout, 32>(dk + warp_row0 * bp.dk_stride.token, bp.dk_stride.token,
                                   dk_smem, warp_rows, warp_valid, lane);
  tile::store_rows<WarpLayout, 32>(dv + warp_row0 * bp.dv_stride.token, bp.dv_stride.token,
                                   dv_smem, warp_rows, warp_valid, lane);
}

}  // namespace sigattn::kernel::sm80

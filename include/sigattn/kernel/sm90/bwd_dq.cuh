// The Hopper backward's query side for the deterministic mode: dQ with no atomics. A CTA owns a
// query tile of one (batch entry, head) and walks the key tiles its rows see, as the forward
// does: S = Q K^T and dP = dO V^T on wgmma (operands in shared memory), dS = P (1 - P) dP * scale
// in fp32 on the accumulator registers, packed to 16 bits as the A operand of dQ += dS K (wgmma
// with A from registers; K read N-major, as the forward reads V). Every dQ element is the sum of
// one accumulator over the key tiles in order, so the result is the same bits on every run.
//
// Warpgroup 0 is the producer (one thread issues the TMA loads: Q and dO once, then K and V of
// each key tile into a ring of kStages stages; after setmaxnreg.dec); warpgroups 1 and 2 are
// consumers of 64 query rows each, with two S / dP accumulator pairs. A consumer's step is
//   issue S(n+1), dP(n+1) into the other pair;  dS(n) from S(n), dP(n) while they run;
//   issue dQ += dS(n) K(n);  wait for all three
// so that its own products of the next tile run during its dS, and the other warpgroup's fill
// the rest. No group stays in flight across the loop's back edge (with one in flight there,
// ptxas serialised every wgmma of the kernel: C7515).
//
// Padding: key tiles past the rows' last visible key are never loaded; scores past a row's last
// visible key give dS = 0 by a select (every tile that crosses kv_len takes the masked pass), and
// in that tile the consumers zero K's padded rows in shared memory, since TMA zero-fills only
// outside the tensor and 0 * NaN is NaN in dS K. They zero V's padded rows as well, which the
// select makes redundant (a NaN that they put into dP never reaches dS); left as tested. Query
// rows past q_len are computed with the rest of their tile (each dQ row depends on its own dS
// row only) and written as zeros; a tile with no real row or no visible key loads nothing and
// writes zeros.
#pragma once

#include <type_traits>

#include "sigattn/detail/numeric.cuh"
#include "sigattn/kernel/bwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"
#include "sigattn/tile/load.cuh"
#include "sigattn/tile/sigmoid.cuh"
#include "sigattn/tile/store.cuh"
#include "sigattn/tile/tma.cuh"
#include "sigattn/tile/wgmma.cuh"

namespace sigattn::kernel::sm90 {

/// Shape of the deterministic dQ kernel: 128 query rows (two consumer warpgroups of 64), key
/// tiles of 64 (each of the two S and dP accumulator pairs takes 64 registers of a consumer
/// thread, dQ HeadDim / 2), and 4 (D=128) or 5 (D=64) K/V stages.
template <int HeadDim, class ElementT>
struct BwdDqTraits {
  using Element = ElementT;
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kTileQ = 128;
  static constexpr int kTileKV = 64;
  static constexpr int kStages = HeadDim == 128 ? 4 : 5;
  static constexpr int kConsumers = kTileQ / 64;
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kConsumerThreads = 128 * kConsumers;
  // setmaxnreg: the producer gives back what the consumers take (168 -> 24 and 240).
  static constexpr int kProducerRegisters = 24;
  static constexpr int kConsumerRegisters = 240;

  static constexpr int kQBytes = kTileQ * HeadDim * 2;  // one Q or one dO tile
  static constexpr int kKVBytes = kTileKV * HeadDim * 2;  // one K or one V tile
  static constexpr int kDoOffset = kQBytes;
  static constexpr int kStagesOffset = 2 * kQBytes;
  static constexpr int kBarrierOffset = kStagesOffset + 2 * kStages * kKVBytes;
  // q_full, then kv_full and kv_empty per stage; the base is aligned to 1024 bytes at run time.
  static constexpr int kSmemBytes = kBarrierOffset + 8 * (1 + 2 * kStages) + 1024;

  static_assert(HeadDim == 64 || HeadDim == 128, "head dims 64 and 128");
  static_assert(128 * kProducerRegisters + kConsumerThreads * kConsumerRegisters <=
                    kThreads * ((65536 / kThreads) & ~7),
                "setmaxnreg: the register budgets fit the launch's allocation");
  static_assert(kSmemBytes <= 227 * 1024, "fits the sm_90 shared-memory limit per block");
};

/// The dQ kernel's tensor maps: Q and dO in boxes of {64, TileQ}, K and V of {64, TileKV}.
struct DqTmaArgs {
  CUtensorMap q_map;
  CUtensorMap do_map;
  CUtensorMap k_map;
  CUtensorMap v_map;
};

/// One CTA: the query tile `tile_index` (query tiles from the last, then batch entries, then heads:
/// under a causal mask the tiles with the most key tiles start first).
template <class Traits, class Sigmoid>
SIGATTN_DEVICE void bwd_dq_tile_sm90(BwdArgs const& args, DqTmaArgs const& tma, char* smem_raw,
                                     int64_t tile_index) {
#if SIGATTN_ARCH_SM90A
  using Element = typename Traits::Element;
  constexpr int kHeadDim = Traits::kHeadDim;
  constexpr int kTileQ = Traits::kTileQ;
  constexpr int kTileKV = Traits::kTileKV;
  constexpr int kStages = Traits::kStages;
  constexpr int kBlocks = kHeadDim / 64;
  constexpr int kChunksPerRow = kHeadDim / 8;
  constexpr int kSRegs = kTileKV / 2;
  constexpr int kDqRegs = kHeadDim / 2;
  constexpr int kDsSteps = kTileKV / 16;

  BwdParams const& bp = args.p;
  FwdParams const& p = bp.fwd;
  int64_t const bh_count = static_cast<int64_t>(p.batch) * p.num_heads;
  int const m = args.num_tiles_q - 1 - static_cast<int>(tile_index / bh_count);
  int const b = static_cast<int>((tile_index % bh_count) / p.num_heads);
  int const h = static_cast<int>(tile_index % p.num_heads);
  SeqLens const len = read_seqlens(p, b);
  int const row0 = m * kTileQ;
  int const tile_rows = min(kTileQ, p.max_q_len - row0);
  int const q_rows = max(min(kTileQ, len.q_len - row0), 0);
  int const n_tiles =
      q_rows > 0 ? (len.key_end(row0 + q_rows - 1) + kTileKV - 1) / kTileKV : 0;
  Element* const dq = static_cast<Element*>(bp.dq) + b * bp.dq_stride.batch +
                      h * bp.dq_stride.head + row0 * bp.dq_stride.token;

  if (n_tiles == 0) {
    // No real row, or no key visible to any: dQ is zero. Nothing is loaded, no barrier is used.
    using RowLayout = tile::SwizzledTile<kTileQ, kHeadDim>;  // row/chunk arithmetic only
    tile::store_zero_rows<RowLayout, Traits::kThreads>(dq, bp.dq_stride.token, tile_rows,
                                                       static_cast<int>(threadIdx.x));
    return;
  }

  char* const base = tile::align_shared_1024(smem_raw);
  uint64_t* const bars = reinterpret_cast<uint64_t*>(base + Traits::kBarrierOffset);
  uint64_t* const q_full = bars;
  auto kv_full = [&](int s) { return bars + 1 + s; };
  auto kv_empty = [&](int s) { return bars + 1 + kStages + s; };
  auto k_tile = [&](int s) { return base + Traits::kStagesOffset + 2 * s * Traits::kKVBytes; };
  auto v_tile = [&](int s) { return k_tile(s) + Traits::kKVBytes; };

  if (threadIdx.x == 0) {
    tile::mbarrier_init(q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      tile::mbarrier_init(kv_full(s), 1);
      tile::mbarrier_init(kv_empty(s), Traits::kConsumerThreads);
    }
    tile::fence_barrier_init();
  }
  __syncthreads();

  if (threadIdx.x < 128) {
    tile::setmaxnreg_dec<Traits::kProducerRegisters>();
    if (threadIdx.x == 0) {
      tile::mbarrier_arrive_expect_tx(q_full, 2 * Traits::kQBytes);
      for (int blk = 0; blk < kBlocks; ++blk) {
        tile::tma_load_4d(base + blk * kTileQ * 128, &tma.q_map, blk * 64, row0, h, b, q_full);
        tile::tma_load_4d(base + Traits::kDoOffset + blk * kTileQ * 128, &tma.do_map, blk * 64,
                          row0, h, b, q_full);
      }
      int const hk = h / args.group;
      for (int n = 0; n < n_tiles; ++n) {
        int const s = n % kStages;
        if (n >= kStages) tile::mbarrier_wait(kv_empty(s), ((n / kStages) - 1) & 1);
        tile::mbarrier_arrive_expect_tx(kv_full(s), 2 * Traits::kKVBytes);
        for (int blk = 0; blk < kBlocks; ++blk) {
          tile::tma_load_4d(k_tile(s) + blk * kTileKV * 128, &tma.k_map, blk * 64, n * kTileKV,
                            hk, b, kv_full(s));
          tile::tma_load_4d(v_tile(s) + blk * kTileKV * 128, &tma.v_map, blk * 64, n * kTileKV,
                            hk, b, kv_full(s));
        }
      }
    }
    return;
  }
  tile::setmaxnreg_inc<Traits::kConsumerRegisters>();

  int const thread = threadIdx.x;
  int const consumer = __shfl_sync(0xffffffffu, thread / 128, 0) - 1;
  int const consumer_thread = thread - 128;
  int const lane = thread & 31;
  int const warp_in_group = (thread / 32) & 3;
  // This thread's two rows (tile-relative) in every accumulator fragment: frag_row and + 8.
  int const frag_row = consumer * 64 + warp_in_group * 16 + (lane >> 2);
  uint32_t const smem_units = tile::shared_address(base) >> 4;
  uint32_t const q_units = smem_units + ((consumer * 64 * 128) >> 4);
  uint32_t const do_units = q_units + (Traits::kDoOffset >> 4);
  float const bias_t = len.kv_len > 0 ? read_bias(p, b, len.kv_len) * args.bias_mul : 0.0f;
  int const unmasked_end = len.key_end(row0);  // tiles below it need no mask

  // Two S / dP accumulator pairs: tile n + 1's products run while tile n's dS is computed.
  float acc_s0[kSRegs], acc_dp0[kSRegs], acc_s1[kSRegs], acc_dp1[kSRegs];
  float acc_dq[kDqRegs];
  using Set0 = std::integral_constant<int, 0>;
  using Set1 = std::integral_constant<int, 1>;
  uint32_t ds_frag[kDsSteps][4];
  SIGATTN_PRAGMA_UNROLL
  for (int i = 0; i < kDqRegs; ++i) acc_dq[i] = 0.0f;

  // Key tile n landed, and in the tile that crosses kv_len its padded K and V rows zeroed by
  // both consumers, made visible to the tensor cores, and seen by both.
  auto wait_kv = [&](int n) {
    int const s = n % kStages;
    tile::mbarrier_wait(kv_full(s), (n / kStages) & 1);
    int const key0 = n * kTileKV;
    if (key0 + kTileKV > len.kv_len) {
      // (One loop over both tiles: two calls of tile::zero_tail_rows, one per tile, made ptxas
      // spill 8 bytes in the D = 128 kernels.)
      int const first = max(len.kv_len - key0, 0);
      int const chunks = (kTileKV - first) * kChunksPerRow;
      for (int idx = consumer_thread; idx < 2 * chunks; idx += Traits::kConsumerThreads) {
        int const j = idx < chunks ? idx : idx - chunks;
        char* const t = idx < chunks ? k_tile(s) : v_tile(s);
        *reinterpret_cast<uint4*>(t + tile::swizzled_block_offset<kTileKV>(
                                          first + j / kChunksPerRow, (j % kChunksPerRow) * 8)) =
            make_uint4(0, 0, 0, 0);
      }
      tile::fence_proxy_async_shared();
      tile::named_barrier_sync(1, Traits::kConsumerThreads);
    }
  };
  // S(n) = Q K(n)^T and dP(n) = dO V(n)^T for this warpgroup's 64 rows, one commit group.
  auto issue_s_dp = [&](int n, auto set) {
    auto& acc_s = tile::pick<decltype(set)::value == 0>(acc_s0, acc_s1);
    auto& acc_dp = tile::pick<decltype(set)::value == 0>(acc_dp0, acc_dp1);
    int const s = n % kStages;
    uint32_t const k_units = smem_units + ((Traits::kStagesOffset + 2 * s * Traits::kKVBytes) >> 4);
    uint32_t const v_units = k_units + (Traits::kKVBytes >> 4);
    tile::fence_registers(acc_s);
    tile::fence_registers(acc_dp);
    tile::wgmma_fence();
    SIGATTN_PRAGMA_UNROLL
    for (int k = 0; k < kHeadDim / 16; ++k)
      tile::Wgmma<Element, kTileKV>::ss(
          acc_s, tile::smem_desc_from_units<16>(q_units + (tile::k_major_step<kTileQ>(k) >> 4)),
          tile::smem_desc_from_units<16>(k_units + (tile::k_major_step<kTileKV>(k) >> 4)), k > 0);
    SIGATTN_PRAGMA_UNROLL
    for (int k = 0; k < kHeadDim / 16; ++k)
      tile::Wgmma<Element, kTileKV>::ss(
          acc_dp, tile::smem_desc_from_units<16>(do_units + (tile::k_major_step<kTileQ>(k) >> 4)),
          tile::smem_desc_from_units<16>(v_units + (tile::k_major_step<kTileKV>(k) >> 4)), k > 0);
    tile::wgmma_commit();
  };
  // dS(n) = P (1 - P) dP * scale with P = sigmoid(S * scale + bias) in fp32, zero past each row's
  // last visible key, packed to 16 bits in ds_frag. (Two loops, as the forward's sigmoid: one
  // loop with the condition inside would carry the mask's select into every tile.)
  auto compute_ds = [&](int n, auto set) {
    auto& acc_s = tile::pick<decltype(set)::value == 0>(acc_s0, acc_s1);
    auto& acc_dp = tile::pick<decltype(set)::value == 0>(acc_dp0, acc_dp1);
    tile::fence_registers(acc_s);
    tile::fence_registers(acc_dp);
    int const key0 = n * kTileKV;
    auto ds_of = [&](int i) {
      float const prob = Sigmoid::template apply<tile::Reciprocal::kMufu>(
          fmaf(acc_s[i], args.score_mul, bias_t));
      return prob * (1.0f - prob) * acc_dp[i] * args.ds_scale;
    };
    // (dS goes straight into the packed fragment: writing it back into the S accumulator, whose
    // next wgmma group may be in flight by then, made ptxas serialise the wgmma pipeline.)
    if (key0 + kTileKV > unmasked_end) {
      int const key_end_row[2] = {len.key_end(row0 + frag_row), len.key_end(row0 + frag_row + 8)};
      auto masked = [&](int i) {
        int const key = key0 + (i / 4) * 8 + (lane & 3) * 2 + (i & 1);
        float const ds = ds_of(i);
        return key >= key_end_row[(i >> 1) & 1] ? 0.0f : ds;
      };
      SIGATTN_PRAGMA_UNROLL
      for (int kk = 0; kk < kDsSteps; ++kk)
        SIGATTN_PRAGMA_UNROLL
        for (int q = 0; q < 4; ++q)
          ds_frag[kk][q] = detail::pack2<Element>(masked(8 * kk + 2 * q),
                                                  masked(8 * kk + 2 * q + 1));
    } else {
      SIGATTN_PRAGMA_UNROLL
      for (int kk = 0; kk < kDsSteps; ++kk)
        SIGATTN_PRAGMA_UNROLL
        for (int q = 0; q < 4; ++q)
          ds_frag[kk][q] = detail::pack2<Element>(ds_of(8 * kk + 2 * q), ds_of(8 * kk + 2 * q + 1));
    }
  };
  // dQ += dS(n) K(n), K N-major (D contiguous) over the tile's keys.
  auto issue_dq = [&](int n) {
    int const s = n % kStages;
    uint32_t const k_units = smem_units + ((Traits::kStagesOffset + 2 * s * Traits::kKVBytes) >> 4);
    tile::fence_registers(acc_dq);
    tile::fence_registers(ds_frag);
    tile::wgmma_fence();
    SIGATTN_PRAGMA_UNROLL
    for (int kk = 0; kk < kDsSteps; ++kk)
      tile::Wgmma<Element, kHeadDim>::rs(
          acc_dq, ds_frag[kk],
          tile::smem_desc_from_units<kTileKV * 128>(k_units + (tile::n_major_step(kk) >> 4)));
    tile::wgmma_commit();
  };

  // Tile n in accumulator set n % 2, its S and dP complete on entry: S(n + 1) and dP(n + 1) are
  // issued into the other set, dS(n) is computed while they run, dQ(n) follows them, and the
  // step ends with nothing in flight. (With groups still in flight across the loop's back edge,
  // ptxas serialised every wgmma of the kernel: C7515.)
  auto step = [&](int n, auto set, auto next_set) {
    wait_kv(n + 1);
    issue_s_dp(n + 1, next_set);
    compute_ds(n, set);
    issue_dq(n);
    tile::wgmma_wait<0>();
    tile::fence_registers(acc_dq);
    tile::mbarrier_arrive(kv_empty(n % kStages));  // this thread is done with K(n) and V(n)
  };
  auto last = [&](int n, auto set) {
    compute_ds(n, set);
    issue_dq(n);
    tile::wgmma_wait<0>();
  };
  tile::mbarrier_wait(q_full, 0);
  wait_kv(0);
  issue_s_dp(0, Set0{});
  tile::wgmma_wait<0>();
  int n = 0;
  SIGATTN_PRAGMA_NO_UNROLL
  for (; n + 2 < n_tiles; n += 2) {
    step(n, Set0{}, Set1{});
    step(n + 1, Set1{}, Set0{});
  }
  if (n + 1 < n_tiles) {
    step(n, Set0{}, Set1{});
    last(n + 1, Set1{});
  } else {
    last(n, Set0{});
  }
  tile::wgmma_wait<0>();
  tile::fence_registers(acc_dq);

  // dQ from the accumulator fragment: each thread its two rows, 4 bytes per column pair; rows
  // past q_len as zeros, rows past max_q_len not at all.
  SIGATTN_PRAGMA_UNROLL
  for (int half = 0; half < 2; ++half) {
    int const r = frag_row + 8 * half;
    if (r < tile_rows) {
      bool const real = r < q_rows;
      Element* const row = dq + r * bp.dq_stride.token + (lane & 3) * 2;
      SIGATTN_PRAGMA_UNROLL
      for (int j = 0; j < kDqRegs / 4; ++j)
        *reinterpret_cast<uint32_t*>(row + j * 8) =
            real ? detail::pack2<Element>(acc_dq[4 * j + 2 * half], acc_dq[4 * j + 2 * half + 1])
                 : 0u;
    }
  }
#elif defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
  // Built for sm_90 without the "a" features: never run silently empty.
  __trap();
#endif
}

}  // namespace sigattn::kernel::sm90

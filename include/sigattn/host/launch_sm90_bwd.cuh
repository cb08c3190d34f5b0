// Launcher of the Hopper (sm_90a) backward of one registry row. Included at the end of launch.cuh
// (which declares launch_sm90_bwd for launch_bwd_row); it uses launch.cuh's helpers.
//
// Atomic mode (the default): zero the real rows of the fp32 dQ workspace, run the Hopper
// key-side kernel (dK, dV and the dQ sums, added to the workspace by TMA tensor reductions
// through a fifth tensor map, kernel/sm90/bwd_mainloop.cuh), then the portable convert kernel.
// Deterministic mode: the Hopper key-side kernel without dQ, then the Hopper query-side dQ
// kernel (kernel/sm90/bwd_dq.cuh: a CTA per query tile walks the key tiles in order, so every dQ
// element is summed in the same order on every run; no workspace, no atomics).
#pragma once

#include <climits>
#include <type_traits>

#include "sigattn/host/launch.cuh"
#include "sigattn/kernel/bwd_kernel.cuh"
#include "sigattn/kernel/sm90/bwd_traits.cuh"
#include "sigattn/tile/tma.cuh"

namespace sigattn::detail {

template <class Traits, class Sigmoid, bool ComputeDq, bool MayMask>
struct Sm90BwdTag {};
template <class Traits, class Sigmoid>
struct Sm90DqTag {};

/// The tensor maps of Q and dO ([B, Sq, Hq, D] through their strides) in boxes of {64, tile_q},
/// as make_kv_tensor_maps makes K's and V's.
inline CUresult make_q_do_tensor_maps(CUtensorMap* q_map, CUtensorMap* do_map,
                                      BwdParams const& bp, bool bf16, int tile_q) {
  FwdParams const& p = bp.fwd;
  CUresult const e = tile::make_bshd_tensor_map(q_map, bf16, p.q, p.batch, p.max_q_len,
                                                p.num_heads, p.head_dim, p.q_stride.batch,
                                                p.q_stride.token, p.q_stride.head, tile_q);
  if (e != CUDA_SUCCESS) return e;
  return tile::make_bshd_tensor_map(do_map, bf16, bp.dout, p.batch, p.max_q_len, p.num_heads,
                                    p.head_dim, bp.dout_stride.batch, bp.dout_stride.token,
                                    bp.dout_stride.head, tile_q);
}

/// Prepares and (unless `dry_run`) launches the Hopper backward of one registry row. Returns
/// kErrorNotSupported (and launches nothing) for what its tensor maps cannot express, so that
/// Path::kAuto falls back to the portable path.
template <size_t Row>
Result launch_sm90_bwd(BwdParams const& bp, void* workspace, int device, cudaStream_t stream,
                       bool dry_run) {
  constexpr KernelConfig c = kKernelConfigs[Row];
  using Element = ElementOf<c.dtype>;
  using Traits =
      kernel::sm90::BwdTraits<c.head_dim, Element, c.tile.tile_q, c.tile.tile_kv, c.tile.stages>;
  static_assert(c.tile.warps * 32 == Traits::kThreads, "the row's warps count all warpgroups");
  using DqTraits = kernel::sm90::BwdDqTraits<c.head_dim, Element>;
  FwdParams const& p = bp.fwd;

  auto run = [&](auto sigmoid_tag) -> Result {
    using Sigmoid = decltype(sigmoid_tag);
    // The key-side kernel: with dQ by reductions or without (deterministic), and at D = 64
    // (128-query tiles, the fused pass) without masks for a launch without a causal mask
    // (kernel::sm90::bwd_tile). Elsewhere the unmasked choice names the masked kernel itself,
    // so that no further kernel is instantiated.
    constexpr bool kHasUnmasked = Traits::kTileQ == 128;
    bool const unmasked = kHasUnmasked && p.causal == Causal::kNone;
    using KernelFn = void (*)(kernel::BwdArgs, kernel::sm90::BwdTmaArgs);
    KernelFn key_kernel = nullptr;
    auto select = [&](auto compute_dq, auto may_mask) -> Result {
      constexpr bool kDq = decltype(compute_dq)::value;
      constexpr bool kMask = decltype(may_mask)::value;
      key_kernel = kernel::sm90_bwd_kernel<Traits, Sigmoid, kDq, kMask>;
      return prepare_kernel<Sm90BwdTag<Traits, Sigmoid, kDq, kMask>>(
          key_kernel, device, Traits::kSmemBytes, c.min_cc);
    };
    using Unmasked = std::bool_constant<!kHasUnmasked>;  // MayMask of the unmasked choice
    auto select_mask = [&](auto compute_dq) -> Result {
      return unmasked ? select(compute_dq, Unmasked{}) : select(compute_dq, std::true_type{});
    };
    Result r = bp.deterministic ? select_mask(std::false_type{}) : select_mask(std::true_type{});
    auto const dq_kernel = kernel::sm90_bwd_dq_kernel<DqTraits, Sigmoid>;
    if (r)
      r = bp.deterministic ? prepare_kernel<Sm90DqTag<DqTraits, Sigmoid>>(
                                 dq_kernel, device, DqTraits::kSmemBytes, c.min_cc)
                           : prepare_dq_clear_and_convert<Element>(device);
    if (!r) return r;

    kernel::BwdArgs const args =
        make_bwd_args<Sigmoid>(bp, workspace, Traits::kTileQ, Traits::kTileKV);
    // The deterministic dQ kernel's: one CTA per query tile of every (batch, head).
    kernel::BwdArgs dq_args = args;
    dq_args.num_tiles_q = (p.max_q_len + DqTraits::kTileQ - 1) / DqTraits::kTileQ;
    dq_args.num_tiles = int64_t{dq_args.num_tiles_q} * p.batch * p.num_heads;
    // One CTA per key tile and per query tile (their barriers are set up once): more tiles than a
    // grid holds is refused (the automatic path then takes the portable kernels, which loop).
    if (args.num_tiles > INT_MAX || (bp.deterministic && dq_args.num_tiles > INT_MAX))
      return Result{Status::kErrorNotSupported, cudaSuccess};

    kernel::sm90::BwdTmaArgs tma{};
    bool const bf16 = p.dtype == DType::kBF16;
    // One side may be empty (no query rows or heads, or no keys; its pointers null and strides
    // anything): nothing of it is ever loaded, and its maps are copies of the other side's, which
    // TMA accepts and nothing reads. (Both sides empty is an empty problem, handled before.)
    CUresult e = CUDA_SUCCESS;
    bool const has_q = p.max_q_len > 0 && p.num_heads > 0;
    bool const has_kv = p.max_kv_len > 0 && p.num_kv_heads > 0;
    if (has_q) e = make_q_do_tensor_maps(&tma.q_map, &tma.do_map, bp, bf16, Traits::kTileQ);
    if (has_kv && e == CUDA_SUCCESS)
      e = make_kv_tensor_maps(&tma.k_map, &tma.v_map, p, bf16, Traits::kTileKV);
    if (!has_q) tma.q_map = tma.do_map = tma.k_map;
    if (!has_kv) tma.k_map = tma.v_map = tma.q_map;
    // The fp32 dQ workspace [B, Sq, Hq, D] (row-major, as the convert kernel reads it), the target
    // of the kernel's dQ tensor reductions, in boxes of {32 floats, TileQ queries}. Without one
    // (the deterministic mode, or no query rows) a copy of another map that nothing reads. A dry
    // run has no workspace: Q's base (16-byte aligned, validated) stands in, so that the map is
    // still checked.
    if (has_q && !bp.deterministic) {
      void const* const dq_base = workspace != nullptr ? workspace : p.q;
      int64_t const token_stride = int64_t{p.num_heads} * p.head_dim;
      if (e == CUDA_SUCCESS)
        e = tile::make_bshd_f32_tensor_map(
            &tma.dq_map, static_cast<float const*>(dq_base), p.batch, p.max_q_len, p.num_heads,
            p.head_dim, p.max_q_len * token_stride, token_stride, p.head_dim, Traits::kTileQ);
    } else {
      tma.dq_map = tma.q_map;
    }
    // The deterministic dQ kernel's own maps: Q and dO in boxes of its query tile, K and V of its
    // key tile (copies of Q's where there are no keys: it then loads nothing).
    kernel::sm90::DqTmaArgs dq_tma{};
    if (bp.deterministic && has_q) {
      if (e == CUDA_SUCCESS)
        e = make_q_do_tensor_maps(&dq_tma.q_map, &dq_tma.do_map, bp, bf16, DqTraits::kTileQ);
      if (has_kv && e == CUDA_SUCCESS)
        e = make_kv_tensor_maps(&dq_tma.k_map, &dq_tma.v_map, p, bf16, DqTraits::kTileKV);
      if (!has_kv) dq_tma.k_map = dq_tma.v_map = dq_tma.q_map;
    }
    // The driver refuses a map it cannot express (a zero stride of a dimension longer than 1,
    // strides beyond 2^40 bytes, ...).
    if (e != CUDA_SUCCESS) return Result{Status::kErrorNotSupported, cudaSuccess};
    if (dry_run) return Result{};

    if (Result z = clear_dq_accum(args, stream); !z) return z;
    // Key side.
    if (args.num_tiles > 0) {
      cudaLaunchConfig_t config =
          launch_config(args.num_tiles, Traits::kThreads, Traits::kSmemBytes, stream);
      cudaError_t const err = cudaLaunchKernelEx(&config, key_kernel, args, tma);
      if (err != cudaSuccess) return launch_result(err);
    }
    if (!bp.deterministic) return launch_dq_convert<Element>(args, stream);
    if (dq_args.num_tiles == 0) return Result{};
    cudaLaunchConfig_t config =
        launch_config(dq_args.num_tiles, DqTraits::kThreads, DqTraits::kSmemBytes, stream);
    return launch_result(cudaLaunchKernelEx(&config, dq_kernel, dq_args, dq_tma));
  };
  return p.sigmoid == SigmoidMode::kFast ? run(tile::SigmoidFast{}) : run(tile::SigmoidAccurate{});
}

}  // namespace sigattn::detail

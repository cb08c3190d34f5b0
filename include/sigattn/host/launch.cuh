// Launchers: from a registry row and the user's parameters to one kernel launch. Also the
// per-device, per-kernel preparation (the dynamic shared-memory opt-in), cached per device id.
#pragma once

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <type_traits>

#include "sigattn/api.hpp"
#include "sigattn/host/dispatch.cuh"
#include "sigattn/host/validate.hpp"
#include "sigattn/kernel/bwd_kernel.cuh"
#include "sigattn/kernel/fwd_kernel.cuh"
#include "sigattn/tile/sigmoid.cuh"

namespace sigattn::detail {

/// Makes sure `kernel` has real code for `device` and may use `smem_bytes` of dynamic shared
/// memory there. The kernel image must have been compiled for a virtual architecture of at least
/// `min_cc`: kernel bodies are guarded by architecture, so PTX of an older one (compute_75, say)
/// would JIT to an empty kernel, which is refused here as kErrorArchMismatch rather than run. The
/// opt-in is a per-device attribute: it is set, and remembered (one bit per device in a static of
/// the calling instantiation, `KernelTag`), only when `device` is the current device; for another
/// device (can_implement) the checks run without the attribute and nothing is cached.
///
/// The cache is keyed by the kernel's address as well: without relocatable device code, every
/// translation unit that instantiates a kernel template has a copy of its own (with its own host
/// stub), while this function's statics are shared by all of them. A per-tag cache alone let the
/// second translation unit launch its copy without the shared-memory opt-in (the launch then
/// failed with cudaErrorInvalidValue; seen in bench/tune, and tests/gpu/test_multi_tu.cu guards
/// it). Up to kSlots copies are cached per tag; beyond that the checks simply run every time.
template <class KernelTag, class Kernel>
Result prepare_kernel(Kernel kernel, int device, int smem_bytes, int min_cc) {
  constexpr int kMaxDevices = 256;
  constexpr int kSlots = 8;
  struct Slot {
    std::atomic<void const*> kernel{nullptr};
    std::atomic<uint64_t> ready[kMaxDevices / 64] = {};
  };
  static Slot slots[kSlots];
  void const* const key = reinterpret_cast<void const*>(kernel);
  Slot* slot = nullptr;
  for (Slot& s : slots) {
    void const* held = s.kernel.load(std::memory_order_acquire);
    if (held == nullptr) {  // claim a free slot (or find that another thread took it for `key`)
      if (s.kernel.compare_exchange_strong(held, key, std::memory_order_acq_rel) || held == key) {
        slot = &s;
        break;
      }
    } else if (held == key) {
      slot = &s;
      break;
    }
  }
  int current = -1;
  cudaError_t e = cudaGetDevice(&current);
  if (e != cudaSuccess) return Result{Status::kErrorCuda, e};
  bool const is_current = device == current;
  bool const cacheable = slot != nullptr && is_current && device >= 0 && device < kMaxDevices;
  uint64_t const bit = cacheable ? (uint64_t{1} << (device % 64)) : 0;
  if (cacheable && (slot->ready[device / 64].load(std::memory_order_acquire) & bit))
    return Result{};

  int optin = 0;
  e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return Result{Status::kErrorCuda, e};
  if (smem_bytes > optin) return Result{Status::kErrorArchMismatch, cudaSuccess};
  if (!is_current) return Result{};  // the image can only be inspected on the current device

  cudaFuncAttributes attr{};
  e = cudaFuncGetAttributes(&attr, kernel);
  if (e == cudaErrorInvalidDeviceFunction || e == cudaErrorNoKernelImageForDevice) {
    (void)cudaGetLastError();  // not sticky: leave no trace of the probe for the caller
    return Result{Status::kErrorArchMismatch, e};
  }
  if (e != cudaSuccess) return Result{Status::kErrorCuda, e};
  // (0 would mean "not recorded": nothing to compare then.)
  if (attr.ptxVersion != 0 && attr.ptxVersion < min_cc)
    return Result{Status::kErrorArchMismatch, cudaSuccess};
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (e != cudaSuccess) return Result{Status::kErrorCuda, e};

  if (cacheable) slot->ready[device / 64].fetch_or(bit, std::memory_order_acq_rel);
  return Result{};
}

/// The result of a launch. A failed launch's error is also cleared from the runtime's last-error
/// slot, so that it is reported once, through the Result, and not again to the caller's next
/// cudaGetLastError.
inline Result launch_result(cudaError_t e) {
  if (e == cudaSuccess) return Result{};
  (void)cudaGetLastError();
  return Result{Status::kErrorCuda, e};
}

inline cudaLaunchConfig_t launch_config(int64_t blocks, int threads, int smem, cudaStream_t s) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(blocks < INT_MAX ? blocks : INT_MAX));
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = smem;
  config.stream = s;
  return config;
}

// validate.hpp rejects a scale or scalar bias that the sigmoid's prescale would make infinite; it
// is host-only and cannot include tile/sigmoid.cuh, so it keeps its own copy of the largest one.
template <class Sigmoid>
constexpr bool kPrescaleValidated = Sigmoid::kPrescale <= validate_impl::kMaxPrescale;

/// The arguments every forward kernel takes, for query tiles of `tile_q` rows.
template <class Sigmoid>
kernel::FwdArgs make_fwd_args(FwdParams const& p, int tile_q) {
  static_assert(kPrescaleValidated<Sigmoid>, "validate.hpp's kMaxPrescale is below this one");
  kernel::FwdArgs args{};
  args.p = p;
  args.score_mul = effective_scale(p) * Sigmoid::kPrescale;
  args.bias_mul = Sigmoid::kPrescale;
  args.num_q_tiles = (p.max_q_len + tile_q - 1) / tile_q;
  args.group = p.num_heads / p.num_kv_heads;
  args.num_tiles = int64_t{args.num_q_tiles} * p.batch * p.num_heads;
  return args;
}

/// The backward kernels' arguments, for key-side tiles of tile_kv keys streaming query tiles of
/// tile_q rows (one work tile per key tile of each (batch, kv head)).
template <class Sigmoid>
kernel::BwdArgs make_bwd_args(BwdParams const& bp, void* workspace, int tile_q, int tile_kv) {
  static_assert(kPrescaleValidated<Sigmoid>, "validate.hpp's kMaxPrescale is below this one");
  FwdParams const& p = bp.fwd;
  kernel::BwdArgs args{};
  args.p = bp;
  float const scale = effective_scale(p);
  args.score_mul = scale * Sigmoid::kPrescale;
  args.bias_mul = Sigmoid::kPrescale;
  args.ds_scale = scale;
  args.group = p.num_heads / p.num_kv_heads;
  args.dq_accum = bp.deterministic ? nullptr : static_cast<float*>(workspace);
  args.num_tiles_q = (p.max_q_len + tile_q - 1) / tile_q;
  args.num_tiles_kv = (p.max_kv_len + tile_kv - 1) / tile_kv;
  args.num_tiles = int64_t{args.num_tiles_kv} * p.batch * p.num_kv_heads;
  return args;
}

template <class Traits, class Sigmoid>
struct Sm80FwdTag {};

/// Prepares and (unless `dry_run`) launches the portable forward of one registry row.
template <size_t Row>
Result launch_sm80_fwd(FwdParams const& p, int device, cudaStream_t stream, bool dry_run) {
  constexpr KernelConfig c = kKernelConfigs[Row];
  using Element = ElementOf<c.dtype>;
  using Traits = kernel::sm80::FwdTraits<c.head_dim, Element, c.tile.tile_q, c.tile.tile_kv,
                                         c.tile.warps, c.tile.stages>;

  auto run = [&](auto sigmoid_tag) -> Result {
    using Sigmoid = decltype(sigmoid_tag);
    auto kernel = kernel::sm80_fwd_kernel<Traits, Sigmoid>;
    Result r = prepare_kernel<Sm80FwdTag<Traits, Sigmoid>>(kernel, device, Traits::kSmemBytes,
                                                           c.min_cc);
    if (!r || dry_run) return r;

    kernel::FwdArgs const args = make_fwd_args<Sigmoid>(p, Traits::kTileQ);

    // Work tiles beyond the grid limit are looped over inside the kernel.
    cudaLaunchConfig_t config =
        launch_config(args.num_tiles, Traits::kThreads, Traits::kSmemBytes, stream);
    return launch_result(cudaLaunchKernelEx(&config, kernel, args));
  };
  return p.sigmoid == SigmoidMode::kFast ? run(tile::SigmoidFast{}) : run(tile::SigmoidAccurate{});
}

template <class Traits, class Sigmoid>
struct Sm90FwdTag {};
struct Sm90FwdClearTag {};
constexpr int kFwdClearThreads = 512;
static_assert(kernel::sm90::kMaxSplitCtas * 4 <= kFwdClearThreads * 4, "a few flags a thread");

/// The TMA maps of K and V ([B, Skv, Hkv, D] with the user's strides, boxes of `tile_kv` rows)
/// that both Hopper launchers use; stops at the first map the driver refuses.
inline CUresult make_kv_tensor_maps(CUtensorMap* k_map, CUtensorMap* v_map, FwdParams const& p,
                                    bool bf16, int tile_kv) {
  CUresult e = tile::make_bshd_tensor_map(k_map, bf16, p.k, p.batch, p.max_kv_len, p.num_kv_heads,
                                          p.head_dim, p.k_stride.batch, p.k_stride.token,
                                          p.k_stride.head, tile_kv);
  if (e != CUDA_SUCCESS) return e;
  return tile::make_bshd_tensor_map(v_map, bf16, p.v, p.batch, p.max_kv_len, p.num_kv_heads,
                                    p.head_dim, p.v_stride.batch, p.v_stride.token,
                                    p.v_stride.head, tile_kv);
}

/// The forward's workspace holds the Hopper forward's split tail (sm90/fwd_scheduler.cuh): a flag
/// per consumer warpgroup of each CTA in its first kFwdSplitFlagBytes, then a partial-sum slot of
/// TileQ x D floats per CTA.
constexpr size_t kFwdSplitFlagBytes = 4096;
static_assert(kernel::sm90::kMaxSplitCtas * 4 * sizeof(unsigned) <= kFwdSplitFlagBytes,
              "a flag for each of up to four consumer warpgroups of every CTA");

/// workspace_bytes(FwdParams): the split tail's, for a non-causal call that may run on a Hopper
/// row of this build (the largest tile of those rows at this head dim and dtype, whatever
/// max_q_len picks, so that one workspace serves every call of the head dim); otherwise 0.
inline size_t fwd_workspace_bytes(FwdParams const& p) {
  if (p.causal != Causal::kNone || p.path == Path::kPortable) return 0;
  size_t tile = 0;
  for (KernelConfig const& c : kKernelConfigs)
    if (is_enabled(c) && c.direction == Direction::kForward && c.path == Path::kHopper &&
        c.head_dim == p.head_dim && c.dtype == p.dtype)
      tile = std::max(tile, static_cast<size_t>(c.tile.tile_q) * c.head_dim);
  if (tile == 0) return 0;
  return kFwdSplitFlagBytes + kernel::sm90::kMaxSplitCtas * tile * sizeof(float);
}

/// The order of the Hopper forward's work tiles under a causal mask
/// (kernel/sm90/fwd_scheduler.cuh): kAuto is the library's rule (causal_level_block); kHeads and
/// kLevels force head by head or by levels, and a value k >= 2 (causal_levels_in_blocks) by
/// levels in blocks of k levels, for bench/tune's measurements and the tests (the result is the
/// same bits in every order: each tile is computed whole by one CTA).
enum class CausalOrder : int { kAuto = -1, kHeads = 0, kLevels = 1 };

/// The order by levels in blocks of `k` levels (k >= 1; 1 is CausalOrder::kLevels).
constexpr CausalOrder causal_levels_in_blocks(int k) { return static_cast<CausalOrder>(k); }

/// Prepares and (unless `dry_run`) launches the Hopper forward with the shape `Traits` (a
/// kernel::sm90::FwdTraits) and the causal tile order `order`. The registry's rows go through
/// launch_sm90_fwd below; tuning tools call this (or launch_sm90_fwd_traits, the library's order)
/// directly with shapes that no row names. With a `workspace` of fwd_workspace_bytes(p) (or at
/// least kFwdSplitFlagBytes plus a TileQ x D float slot per SM) a non-causal call splits its last
/// waves' tiles along the keys.
template <class Traits>
Result launch_sm90_fwd_traits_ordered(FwdParams const& p, void* workspace, int device,
                                      cudaStream_t stream, bool dry_run, CausalOrder order) {
  constexpr bool kBF16 = std::is_same_v<typename Traits::Element, __nv_bfloat16>;
  if (p.head_dim != Traits::kHeadDim || (p.dtype == DType::kBF16) != kBF16)
    return Result{Status::kErrorNotSupported, cudaSuccess};
  auto run = [&](auto sigmoid_tag) -> Result {
    using Sigmoid = decltype(sigmoid_tag);
    auto kernel = kernel::sm90_fwd_kernel<Traits, Sigmoid>;
    Result r = prepare_kernel<Sm90FwdTag<Traits, Sigmoid>>(kernel, device, Traits::kSmemBytes,
                                                           /*min_cc=*/90);
    if (r && workspace != nullptr)
      r = prepare_kernel<Sm90FwdClearTag>(kernel::sm90_fwd_split_clear_kernel<kFwdClearThreads>,
                                          device, 0, /*min_cc=*/90);
    if (!r) return r;

    kernel::FwdArgs args = make_fwd_args<Sigmoid>(p, Traits::kTileQ);
    // Persistent: one CTA per SM (the shared memory allows no more), or fewer when there are
    // fewer work tiles.
    int sms = 0;
    if (cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
        e != cudaSuccess)
      return launch_result(e);
    // The kernel counts a CTA's work items in int (its producer threads are short of registers):
    // at most num_tiles / sms + 4 of them.
    if (args.num_tiles / std::max(sms, 1) >= INT_MAX - 4)
      return Result{Status::kErrorNotSupported, cudaSuccess};

    kernel::sm90::FwdTmaArgs tma{};
    CUresult e = tile::make_bshd_tensor_map(&tma.q_map, kBF16, p.q, p.batch, p.max_q_len,
                                            p.num_heads, p.head_dim, p.q_stride.batch,
                                            p.q_stride.token, p.q_stride.head, Traits::kTileQ);
    // O in boxes of one consumer warpgroup's 64 rows, stored from the staged tile (a kernel that
    // stores O from registers gets Q's map, which it never uses).
    tma.o_map = tma.q_map;
    if (e == CUDA_SUCCESS && Traits::kStagedO)
      e = tile::make_bshd_tensor_map(&tma.o_map, kBF16, p.o, p.batch, p.max_q_len, p.num_heads,
                                     p.head_dim, p.o_stride.batch, p.o_stride.token,
                                     p.o_stride.head, 64);
    if (p.max_kv_len == 0) {
      // No key is ever loaded (K and V may be null, their strides anything): the kernel only
      // writes zeros, and the K and V maps are Q's, which TMA accepts and nothing reads.
      tma.k_map = tma.q_map;
      tma.v_map = tma.q_map;
    } else if (e == CUDA_SUCCESS) {
      e = make_kv_tensor_maps(&tma.k_map, &tma.v_map, p, kBF16, Traits::kTileKV);
    }
    // The driver refuses a map it cannot express (strides beyond 2^40 bytes, for example).
    if (e != CUDA_SUCCESS) return Result{Status::kErrorNotSupported, cudaSuccess};
    if (dry_run) return Result{};

    int64_t grid = std::min<int64_t>(args.num_tiles, sms);
    // A cut gains less than one tile's key tiles a CTA (kernel::sm90::split_pays), so with at
    // most kSplitCostUnits key tiles a tile it never pays: no split, no flags to clear.
    bool const may_pay = (int64_t{p.max_kv_len} + Traits::kTileKV - 1) / Traits::kTileKV >
                         kernel::sm90::kSplitCostUnits;
    if (workspace != nullptr && p.causal == Causal::kNone && may_pay &&
        sms <= kernel::sm90::kMaxSplitCtas) {
      // The split tail: every SM takes part, however few the tiles (a tail shorter than a wave
      // is spread over more CTAs than it has tiles). The flags start at zero on every call: a
      // one-block clear kernel, with the forward launched as its programmatic dependent, so that
      // the forward starts at once and waits for the clear only before its first flag access.
      grid = sms;
      args.split_flags = static_cast<unsigned*>(workspace);
      args.split_partials =
          reinterpret_cast<float*>(static_cast<char*>(workspace) + kFwdSplitFlagBytes);
      int const flags = static_cast<int>(grid) * Traits::kConsumers;
      cudaLaunchConfig_t clear = launch_config(1, kFwdClearThreads, 0, stream);
      if (cudaError_t e =
              cudaLaunchKernelEx(&clear, kernel::sm90_fwd_split_clear_kernel<kFwdClearThreads>,
                                 args.split_flags, flags);
          e != cudaSuccess)
        return launch_result(e);
    }
    int const block =
        order == CausalOrder::kAuto
            ? kernel::sm90::causal_level_block(true, args.num_q_tiles, static_cast<int>(grid))
            : static_cast<int>(order);
    args.causal_levels = p.causal != Causal::kNone ? block : 0;
    cudaLaunchConfig_t config = launch_config(grid, Traits::kThreads, Traits::kSmemBytes, stream);
    cudaLaunchAttribute pdl{};
    pdl.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    pdl.val.programmaticStreamSerializationAllowed = 1;
    if (args.split_flags != nullptr) {
      config.attrs = &pdl;
      config.numAttrs = 1;
    }
    return launch_result(cudaLaunchKernelEx(&config, kernel, args, tma));
  };
  return p.sigmoid == SigmoidMode::kFast ? run(tile::SigmoidFast{}) : run(tile::SigmoidAccurate{});
}

/// The Hopper forward in the shape `Traits` (FwdTraits), the tile order by the library's rule.
template <class Traits>
Result launch_sm90_fwd_traits(FwdParams const& p, void* workspace, int device, cudaStream_t stream,
                              bool dry_run) {
  return launch_sm90_fwd_traits_ordered<Traits>(p, workspace, device, stream, dry_run,
                                                CausalOrder::kAuto);
}

/// Prepares and (unless `dry_run`) launches the Hopper forward of one registry row.
template <size_t Row>
Result launch_sm90_fwd(FwdParams const& p, void* workspace, int device, cudaStream_t stream,
                       bool dry_run) {
  constexpr KernelConfig c = kKernelConfigs[Row];
  static_assert(c.min_cc == 90, "Hopper rows need compute capability 9.0");
  using Traits = kernel::sm90::FwdTraits<c.head_dim, ElementOf<c.dtype>, c.tile.tile_q,
                                         c.tile.tile_kv, c.tile.stages>;
  static_assert(c.tile.warps * 32 == Traits::kThreads, "the row's warp count matches its tile");
  return launch_sm90_fwd_traits<Traits>(p, workspace, device, stream, dry_run);
}

/// The launcher of any forward row (the portable path takes no workspace).
template <size_t Row>
Result launch_fwd_row(FwdParams const& p, void* workspace, int device, cudaStream_t stream,
                      bool dry_run) {
  constexpr KernelConfig c = kKernelConfigs[Row];
  static_assert(c.direction == Direction::kForward);
  if constexpr (c.path == Path::kPortable) {
    return launch_sm80_fwd<Row>(p, device, stream, dry_run);
  } else {
    return launch_sm90_fwd<Row>(p, workspace, device, stream, dry_run);
  }
}

/// Bytes of the fp32 dQ accumulator the atomic-mode backward needs ([B, Sq, Hq, D]).
inline size_t dq_accum_bytes(FwdParams const& p) {
  if (p.batch <= 0 || p.max_q_len <= 0 || p.num_heads <= 0 || p.head_dim <= 0) return 0;
  return static_cast<size_t>(p.batch) * p.max_q_len * p.num_heads * p.head_dim * sizeof(float);
}

template <class Traits, class Sigmoid, bool ComputeDq>
struct Sm80DkdvTag {};
template <class Traits, class Sigmoid>
struct Sm80DqTag {};
template <class Element>
struct Sm80ConvertTag {};
struct DqClearTag {};
constexpr int kDqClearThreads = 256;

/// Prepares the atomic mode's kernels around the key side (portable code, sm_80 and newer): the
/// clearing of the fp32 dQ workspace and its conversion to `Element`.
template <class Element>
Result prepare_dq_clear_and_convert(int device) {
  constexpr int kPortableCc = 80;
  Result const r = prepare_kernel<DqClearTag>(kernel::dq_accum_clear_kernel<kDqClearThreads>,
                                              device, 0, kPortableCc);
  if (!r) return r;
  return prepare_kernel<Sm80ConvertTag<Element>>(kernel::sm80_dq_convert_kernel<Element>, device,
                                                 0, kPortableCc);
}

/// Prepares the kernels around the key side (portable code, sm_80 and newer): in atomic mode the
/// clearing of the dQ workspace and its conversion, in deterministic mode the query-side dQ kernel
/// of launch_bwd_query_side.
template <class DqTraits, class Element, class Sigmoid>
Result prepare_bwd_query_side(bool deterministic, int device) {
  constexpr int kPortableCc = 80;
  if (deterministic)
    return prepare_kernel<Sm80DqTag<DqTraits, Sigmoid>>(
        kernel::sm80_bwd_dq_kernel<DqTraits, Sigmoid>, device,
        kernel::sm80::DqSmem<DqTraits>::kBytes, kPortableCc);
  return prepare_dq_clear_and_convert<Element>(device);
}

/// Atomic mode: zeroes the real query rows of the fp32 dQ accumulator in the workspace (on
/// `stream`) before the key-side kernel adds into it. Its padded rows are never read, so they are
/// not written either: a ragged batch pays for its real rows only. Nothing in deterministic mode.
/// `args` is the key side's.
inline Result clear_dq_accum(kernel::BwdArgs const& args, cudaStream_t stream) {
  FwdParams const& p = args.p.fwd;
  if (args.p.deterministic || dq_accum_bytes(p) == 0) return Result{};
  // About four float4 stores per thread in a full-length sequence; y covers the batch.
  int64_t const vecs = int64_t{p.max_q_len} * p.num_heads * p.head_dim / 4;
  int64_t const per_block = int64_t{kDqClearThreads} * 4;
  cudaLaunchConfig_t config = launch_config(
      std::min<int64_t>((vecs + per_block - 1) / per_block, int64_t{1} << 20), kDqClearThreads, 0,
      stream);
  config.gridDim.y = static_cast<unsigned>(std::min(p.batch, 65535));
  return launch_result(
      cudaLaunchKernelEx(&config, kernel::dq_accum_clear_kernel<kDqClearThreads>, args));
}

/// The atomic mode's conversion of the fp32 dQ accumulator to `Element` (padded rows as zeros),
/// after the key side. `args` is the key side's, reused.
template <class Element>
Result launch_dq_convert(kernel::BwdArgs args, cudaStream_t stream) {
  args.num_tiles = static_cast<int64_t>(dq_accum_bytes(args.p.fwd) / sizeof(float) / 8);
  if (args.num_tiles == 0) return Result{};
  int64_t const blocks = (args.num_tiles + 255) / 256;
  cudaLaunchConfig_t config = launch_config(blocks, 256, 0, stream);
  return launch_result(
      cudaLaunchKernelEx(&config, kernel::sm80_dq_convert_kernel<Element>, args));
}

/// The query side of every backward, after its key-side kernel: the portable query-side dQ kernel
/// (deterministic mode, `DqTraits` tiles) or the conversion of the fp32 dQ accumulator to
/// `Element` (atomic mode). Both were prepared by the caller. `args` is the key side's, reused.
template <class DqTraits, class Element, class Sigmoid>
Result launch_bwd_query_side(kernel::BwdArgs args, bool deterministic, cudaStream_t stream) {
  FwdParams const& p = args.p.fwd;
  if (deterministic) {
    args.num_tiles_q = (p.max_q_len + DqTraits::kTileQ - 1) / DqTraits::kTileQ;
    args.num_tiles_kv = (p.max_kv_len + DqTraits::kTileKV - 1) / DqTraits::kTileKV;
    args.num_tiles = int64_t{args.num_tiles_q} * p.batch * p.num_heads;
    if (args.num_tiles == 0) return Result{};
    cudaLaunchConfig_t config = launch_config(args.num_tiles, DqTraits::kThreads,
                                              kernel::sm80::DqSmem<DqTraits>::kBytes, stream);
    return launch_result(
        cudaLaunchKernelEx(&config, kernel::sm80_bwd_dq_kernel<DqTraits, Sigmoid>, args));
  }
  return launch_dq_convert<Element>(args, stream);
}

/// The portable backward of one registry row. Atomic mode: zero the real rows of the fp32 dQ
/// workspace, run the key-side kernel with dQ atomics, convert. Deterministic mode: the key-side
/// kernel without dQ, then the query-side dQ kernel (no atomics at all).
template <size_t Row>
Result launch_sm80_bwd(BwdParams const& bp, void* workspace, int device, cudaStream_t stream,
                       bool dry_run) {
  constexpr KernelConfig c = kKernelConfigs[Row];
  using Element = ElementOf<c.dtype>;
  using Traits = kernel::sm80::BwdTraits<c.head_dim, Element, c.tile.tile_q, c.tile.tile_kv,
                                         c.tile.warps, c.tile.stages>;
  // The deterministic dQ kernel has the forward's structure: 4 warps x 16 query rows.
  using DqTraits = kernel::sm80::FwdTraits<c.head_dim, Element, 64, 64, 4, 2>;
  // Without dQ the key-side kernel needs no dS^T tile.
  constexpr int kDkdvSmemPlain = Traits::kSmemBytes - Traits::kSmemDs;
  FwdParams const& p = bp.fwd;

  auto run = [&](auto sigmoid_tag) -> Result {
    using Sigmoid = decltype(sigmoid_tag);
    auto dkdv_atomic = kernel::sm80_bwd_dkdv_kernel<Traits, Sigmoid, true>;
    auto dkdv_plain = kernel::sm80_bwd_dkdv_kernel<Traits, Sigmoid, false>;
    Result r = bp.deterministic
                   ? prepare_kernel<Sm80DkdvTag<Traits, Sigmoid, false>>(
                         dkdv_plain, device, kDkdvSmemPlain, c.min_cc)
                   : prepare_kernel<Sm80DkdvTag<Traits, Sigmoid, true>>(
                         dkdv_atomic, device, Traits::kSmemBytes, c.min_cc);
    if (r) r = prepare_bwd_query_side<DqTraits, Element, Sigmoid>(bp.deterministic, device);
    if (!r || dry_run) return r;

    kernel::BwdArgs const args =
        make_bwd_args<Sigmoid>(bp, workspace, Traits::kTileQ, Traits::kTileKV);

    if (Result z = clear_dq_accum(args, stream); !z) return z;
    // Key side.
    if (args.num_tiles > 0) {
      cudaLaunchConfig_t config = launch_config(
          args.num_tiles, Traits::kThreads,
          bp.deterministic ? kDkdvSmemPlain : Traits::kSmemBytes, stream);
      cudaError_t e = bp.deterministic ? cudaLaunchKernelEx(&config, dkdv_plain, args)
                                       : cudaLaunchKernelEx(&config, dkdv_atomic, args);
      if (e != cudaSuccess) return launch_result(e);
    }
    return launch_bwd_query_side<DqTraits, Element, Sigmoid>(args, bp.deterministic, stream);
  };
  return p.sigmoid == SigmoidMode::kFast ? run(tile::SigmoidFast{}) : run(tile::SigmoidAccurate{});
}

/// The Hopper backward of one registry row: host/launch_sm90_bwd.cuh (included at the end).
template <size_t Row>
Result launch_sm90_bwd(BwdParams const& bp, void* workspace, int device, cudaStream_t stream,
                       bool dry_run);

/// The launcher of any backward row.
template <size_t Row>
Result launch_bwd_row(BwdParams const& p, void* workspace, int device, cudaStream_t stream,
                      bool dry_run) {
  constexpr KernelConfig c = kKernelConfigs[Row];
  static_assert(c.direction == Direction::kBackward);
  if constexpr (c.path == Path::kPortable) {
    return launch_sm80_bwd<Row>(p, workspace, device, stream, dry_run);
  } else {
    return launch_sm90_bwd<Row>(p, workspace, device, stream, dry_run);
  }
}

}  // namespace sigattn::detail

#include "sigattn/host/launch_sm90_bwd.cuh"

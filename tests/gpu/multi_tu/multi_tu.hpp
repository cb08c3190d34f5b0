// Shared by the two translation units of test_multi_tu: one launcher call for the bf16 D=128
// forward row of a path. The functions here have internal linkage (`static`), so each unit keeps
// its own copy and, through it, its own copy of the kernel (with its own host stub) instead of the
// linker choosing one unit's copy for both.
#pragma once

#include <sigattn/sigattn.cuh>

namespace sigattn::test {

/// Index of the general forward registry row of `path` for bf16 at head dim 128.
constexpr size_t forward_row(Path path) {
  for (size_t i = 0; i < kNumKernelConfigs; ++i) {
    KernelConfig const& c = kKernelConfigs[i];
    if (c.direction == Direction::kForward && c.path == path && c.head_dim == 128 &&
        c.dtype == DType::kBF16 && !serves_some_calls_only(c))
      return i;
  }
  return kNumKernelConfigs;
}

/// The launcher of that row, called directly (the dispatcher would instantiate every row).
static inline Result launch_forward_row(FwdParams const& p, bool hopper, int device,
                                        cudaStream_t stream) {
#if SIGATTN_ENABLE_SM90A && SIGATTN_ENABLE_HDIM_128 && SIGATTN_ENABLE_BF16
  if (hopper)
    return detail::launch_sm90_fwd<forward_row(Path::kHopper)>(p, nullptr, device, stream, false);
#endif
#if SIGATTN_ENABLE_HDIM_128 && SIGATTN_ENABLE_BF16
  if (!hopper)
    return detail::launch_sm80_fwd<forward_row(Path::kPortable)>(p, device, stream, false);
#endif
  (void)p, (void)device, (void)stream;
  return Result{Status::kErrorNotSupported, cudaSuccess};
}

/// The host address of this unit's copy of that row's kernel (accurate sigmoid), or null.
static inline void const* forward_kernel_address(bool hopper) {
#if SIGATTN_ENABLE_SM90A && SIGATTN_ENABLE_HDIM_128 && SIGATTN_ENABLE_BF16
  if (hopper) {
    constexpr KernelConfig c = kKernelConfigs[forward_row(Path::kHopper)];
    using Traits =
        kernel::sm90::FwdTraits<128, __nv_bfloat16, c.tile.tile_q, c.tile.tile_kv, c.tile.stages>;
    return reinterpret_cast<void const*>(&kernel::sm90_fwd_kernel<Traits, tile::SigmoidAccurate>);
  }
#endif
#if SIGATTN_ENABLE_HDIM_128 && SIGATTN_ENABLE_BF16
  if (!hopper) {
    constexpr KernelConfig c = kKernelConfigs[forward_row(Path::kPortable)];
    using Traits = kernel::sm80::FwdTraits<128, __nv_bfloat16, c.tile.tile_q, c.tile.tile_kv,
                                           c.tile.warps, c.tile.stages>;
    return reinterpret_cast<void const*>(&kernel::sm80_fwd_kernel<Traits, tile::SigmoidAccurate>);
  }
#endif
  (void)hopper;
  return nullptr;
}

/// Defined in other_tu.cu: the same two calls, made from that unit.
Result launch_forward_from_other_tu(FwdParams const& p, bool hopper, int device,
                                    cudaStream_t stream);
void const* kernel_address_in_other_tu(bool hopper);

}  // namespace sigattn::test

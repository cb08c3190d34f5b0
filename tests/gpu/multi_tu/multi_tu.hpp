// Shared by the two translation units of test_multi_tu: one launcher call for the bf16 D=128
// forward row of a path, compiled (with its kernel) into each file that calls it.
#pragma once

#include <sigattn/sigattn.cuh>

namespace sigattn::test {

/// Index of the forward registry row of `path` for bf16 at head dim 128.
constexpr size_t forward_row(Path path) {
  for (size_t i = 0; i < kNumKernelConfigs; ++i) {
    KernelConfig const& c = kKernelConfigs[i];
    if (c.direction == Direction::kForward && c.path == path && c.head_dim == 128 &&
        c.dtype == DType::kBF16)
      return i;
  }
  return kNumKernelConfigs;
}

/// The launcher of that row, called directly (the dispatcher would instantiate every row).
inline Result launch_forward_row(FwdParams const& p, bool hopper, int device, cudaStream_t stream) {
#if SIGATTN_ENABLE_SM90A && SIGATTN_ENABLE_HDIM_128 && SIGATTN_ENABLE_BF16
  if (hopper) return detail::launch_sm90_fwd<forward_row(Path::kHopper)>(p, device, stream, false);
#endif
#if SIGATTN_ENABLE_HDIM_128 && SIGATTN_ENABLE_BF16
  if (!hopper)
    return detail::launch_sm80_fwd<forward_row(Path::kPortable)>(p, device, stream, false);
#endif
  (void)p, (void)device, (void)stream;
  return Result{Status::kErrorNotSupported, cudaSuccess};
}

/// Defined in other_tu.cu.
Result launch_forward_from_other_tu(FwdParams const& p, bool hopper, int device,
                                    cudaStream_t stream);

}  // namespace sigattn::test

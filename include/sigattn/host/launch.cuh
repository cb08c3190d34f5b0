// Launchers: from a registry row and the user's parameters to one kernel launch. Also the
// per-device, per-kernel preparation (the dynamic shared-memory opt-in), cached per device id.
#pragma once

#include <atomic>
#include <climits>
#include <cmath>

#include "sigattn/api.hpp"
#include "sigattn/host/dispatch.cuh"
#include "sigattn/host/validate.hpp"
#include "sigattn/kernel/fwd_kernel.cuh"
#include "sigattn/tile/sigmoid.cuh"

namespace sigattn::detail {

/// Makes sure `kernel` has an image for `device` and may use `smem_bytes` of dynamic shared
/// memory there. The opt-in is a per-device attribute, so it is remembered per device id (one bit
/// per device in a static of the calling instantiation, `KernelTag`). A missing image (the
/// program was not built for this architecture) is kErrorArchMismatch, not a launch failure.
template <class KernelTag, class Kernel>
Result prepare_kernel(Kernel kernel, int device, int smem_bytes) {
  constexpr int kMaxDevices = 256;
  static std::atomic<uint64_t> ready[kMaxDevices / 64] = {};
  bool cacheable = device >= 0 && device < kMaxDevices;
  uint64_t bit = cacheable ? (uint64_t{1} << (device % 64)) : 0;
  if (cacheable && (ready[device / 64].load(std::memory_order_acquire) & bit)) return Result{};

  cudaFuncAttributes attr{};
  cudaError_t e = cudaFuncGetAttributes(&attr, kernel);
  if (e == cudaErrorInvalidDeviceFunction || e == cudaErrorNoKernelImageForDevice) {
    (void)cudaGetLastError();  // not sticky: leave no trace of the probe for the caller
    return Result{Status::kErrorArchMismatch, e};
  }
  if (e != cudaSuccess) return Result{Status::kErrorCuda, e};

  int optin = 0;
  e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return Result{Status::kErrorCuda, e};
  if (smem_bytes > optin) return Result{Status::kErrorArchMismatch, cudaSuccess};
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (e != cudaSuccess) return Result{Status::kErrorCuda, e};

  if (cacheable) ready[device / 64].fetch_or(bit, std::memory_order_acq_rel);
  return Result{};
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
    Result r = prepare_kernel<Sm80FwdTag<Traits, Sigmoid>>(kernel, device, Traits::kSmemBytes);
    if (!r || dry_run) return r;

    kernel::FwdArgs args{};
    args.p = p;
    args.score_mul = effective_scale(p) * Sigmoid::kPrescale;
    args.bias_mul = Sigmoid::kPrescale;
    args.num_q_tiles = (p.max_q_len + Traits::kTileQ - 1) / Traits::kTileQ;
    args.group = p.num_heads / p.num_kv_heads;
    args.num_tiles = int64_t{args.num_q_tiles} * p.batch * p.num_heads;

    cudaLaunchConfig_t config{};
    // Work tiles beyond the grid limit are looped over inside the kernel.
    config.gridDim = dim3(static_cast<unsigned>(args.num_tiles < INT_MAX ? args.num_tiles : INT_MAX));
    config.blockDim = dim3(Traits::kThreads);
    config.dynamicSmemBytes = Traits::kSmemBytes;
    config.stream = stream;
    cudaError_t e = cudaLaunchKernelEx(&config, kernel, args);
    return e == cudaSuccess ? Result{} : Result{Status::kErrorCuda, e};
  };
  return p.sigmoid == SigmoidMode::kFast ? run(tile::SigmoidFast{}) : run(tile::SigmoidAccurate{});
}

/// The launcher of any forward row.
template <size_t Row>
Result launch_fwd_row(FwdParams const& p, int device, cudaStream_t stream, bool dry_run) {
  constexpr KernelConfig c = kKernelConfigs[Row];
  static_assert(c.direction == Direction::kForward);
  if constexpr (c.path == Path::kPortable) {
    return launch_sm80_fwd<Row>(p, device, stream, dry_run);
  } else {
    return Result{Status::kErrorNotSupported, cudaSuccess};
  }
}

}  // namespace sigattn::detail

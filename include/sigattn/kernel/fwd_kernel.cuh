// Thin __global__ entry points of the forward kernels.
#pragma once

#include "sigattn/kernel/fwd_args.cuh"
#include "sigattn/kernel/sm80/fwd_mainloop.cuh"
#include "sigattn/kernel/sm90/fwd_mainloop.cuh"

namespace sigattn::kernel {

/// Portable forward: one CTA per work tile; the loop only matters when there are more tiles than
/// a grid may have blocks (2^31 - 1).
template <class Traits, class Sigmoid>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSm)
    sm80_fwd_kernel(__grid_constant__ FwdArgs const args) {
#if SIGATTN_ARCH_SM80_PLUS
  extern __shared__ __align__(128) char smem[];
  for (int64_t t = blockIdx.x; t < args.num_tiles; t += gridDim.x) {
    sm80::fwd_tile<Traits, Sigmoid>(args, smem, t);
    __syncthreads();  // the next tile's loads overwrite shared memory this one still reads
  }
#endif
}

/// Hopper forward: a persistent grid (at most one CTA per SM) of a producer and
/// Traits::kConsumers consumer warpgroups each.
template <class Traits, class Sigmoid>
__global__ void __launch_bounds__(Traits::kThreads, 1)
    sm90_fwd_kernel(__grid_constant__ FwdArgs const args,
                    __grid_constant__ sm90::FwdTmaArgs const tma) {
  // (Dynamic shared memory is one symbol per program; the tile base is rounded up to 1024 bytes
  // inside, so the declared alignment stays the one every kernel uses.)
  extern __shared__ __align__(128) char smem[];
  sm90::fwd_persistent<Traits, Sigmoid>(args, tma, smem);
}

}  // namespace sigattn::kernel

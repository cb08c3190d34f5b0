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

/// The Hopper forward's split flags zeroed before its launch (`n` of them, one block). It lets its
/// dependent grid (the forward, launched with programmatic stream serialization) start at once:
/// the forward waits for this grid's completion (griddepcontrol.wait) only before its first flag
/// access, at the end of its work, so the clear costs the stream nothing.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sm90_fwd_split_clear_kernel(unsigned* __restrict__ flags, int n) {
#if SIGATTN_ARCH_SM90A
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  for (int i = threadIdx.x; i < n; i += Threads) flags[i] = 0u;
#elif defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
  __trap();
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

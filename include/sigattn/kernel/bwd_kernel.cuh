// Thin __global__ entry points of the backward kernels.
#pragma once

#include "sigattn/kernel/bwd_args.cuh"
#include "sigattn/kernel/sm80/bwd_dkdv.cuh"
#include "sigattn/kernel/sm80/bwd_dq.cuh"
#include "sigattn/kernel/sm90/bwd_mainloop.cuh"

namespace sigattn::kernel {

/// Portable backward, key side: one CTA per (key tile, batch, kv head).
template <class Traits, class Sigmoid, bool ComputeDq>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinBlocksPerSm)
    sm80_bwd_dkdv_kernel(__grid_constant__ BwdArgs const args) {
#if SIGATTN_ARCH_SM80_PLUS
  extern __shared__ __align__(128) char smem[];
  for (int64_t t = blockIdx.x; t < args.num_tiles; t += gridDim.x) {
    sm80::bwd_dkdv_tile<Traits, Sigmoid, ComputeDq>(args, smem, t);
    __syncthreads();  // the next tile's loads overwrite shared memory this one still reads
  }
#endif
}

/// Portable backward, query side (deterministic mode): one CTA per (query tile, batch, head).
template <class Traits, class Sigmoid>
__global__ void __launch_bounds__(Traits::kThreads, 1)
    sm80_bwd_dq_kernel(__grid_constant__ BwdArgs const args) {
#if SIGATTN_ARCH_SM80_PLUS
  extern __shared__ __align__(128) char smem[];
  for (int64_t t = blockIdx.x; t < args.num_tiles; t += gridDim.x) {
    sm80::bwd_dq_tile<Traits, Sigmoid>(args, smem, t);
    __syncthreads();
  }
#endif
}

/// Hopper backward, key side: one CTA per (key tile, batch, kv head), a producer and
/// Traits::kConsumers consumer warpgroups; dQ added to the fp32 workspace by TMA tensor reductions
/// when ComputeDq. MayMask false: a launch without a causal mask, at D = 64 only (see
/// sm90::bwd_tile).
template <class Traits, class Sigmoid, bool ComputeDq, bool MayMask = true>
__global__ void __launch_bounds__(Traits::kThreads, 1)
    sm90_bwd_kernel(__grid_constant__ BwdArgs const args,
                    __grid_constant__ sm90::BwdTmaArgs const tma) {
  // (The tile base is rounded up to 1024 bytes inside, as in the Hopper forward.)
  extern __shared__ __align__(128) char smem[];
  sm90::bwd_tile<Traits, Sigmoid, ComputeDq, MayMask>(args, tma, smem, blockIdx.x);
}

/// fp32 dQ workspace -> dQ (atomic mode); args.num_tiles counts 8-element chunks.
template <class Element>
__global__ void __launch_bounds__(256)
    sm80_dq_convert_kernel(__grid_constant__ BwdArgs const args) {
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < args.num_tiles;
       c += int64_t{gridDim.x} * blockDim.x)
    sm80::dq_convert_chunk<Element>(args, c);
}

}  // namespace sigattn::kernel

// Thin __global__ entry points of the backward kernels.
#pragma once

#include "sigattn/kernel/bwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"
#include "sigattn/kernel/sm80/bwd_dkdv.cuh"
#include "sigattn/kernel/sm80/bwd_dq.cuh"
#include "sigattn/kernel/sm90/bwd_dq.cuh"
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

/// Hopper backward, query side (deterministic mode): one CTA per (query tile, batch, head), a
/// producer and two consumer warpgroups (sm90::bwd_dq_tile_sm90).
template <class Traits, class Sigmoid>
__global__ void __launch_bounds__(Traits::kThreads, 1)
    sm90_bwd_dq_kernel(__grid_constant__ BwdArgs const args,
                       __grid_constant__ sm90::DqTmaArgs const tma) {
  extern __shared__ __align__(128) char smem[];
  sm90::bwd_dq_tile_sm90<Traits, Sigmoid>(args, tma, smem, blockIdx.x);
}

/// Atomic mode, before the key side: zeroes the real query rows (i < q_len) of the fp32 dQ
/// workspace [B, Sq, Hq, D], where a sequence's rows are contiguous. Its padded rows are left as
/// they are: the key side may add into them, and the conversion writes their zeros without
/// reading them. x strides over a sequence's float4s, y over the batch.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    dq_accum_clear_kernel(__grid_constant__ BwdArgs const args) {
  FwdParams const& p = args.p.fwd;
  int64_t const row_vecs = int64_t{p.num_heads} * p.head_dim / 4;  // head_dim % 8 == 0
  for (int b = blockIdx.y; b < p.batch; b += gridDim.y) {
    int64_t const vecs = clamp_len(p.q_lens, b, p.max_q_len) * row_vecs;
    float4* const seq =
        reinterpret_cast<float4*>(args.dq_accum) + int64_t{b} * p.max_q_len * row_vecs;
    for (int64_t v = blockIdx.x * int64_t{Threads} + threadIdx.x; v < vecs;
         v += int64_t{gridDim.x} * Threads)
      seq[v] = make_float4(0.f, 0.f, 0.f, 0.f);
  }
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

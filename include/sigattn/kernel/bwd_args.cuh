// What the backward kernels receive (by __grid_constant__).
#pragma once

#include "sigattn/api.hpp"
#include "sigattn/detail/config.cuh"

namespace sigattn::kernel {

struct BwdArgs {
  BwdParams p;
  float score_mul;   // scale * Sigmoid::kPrescale
  float bias_mul;    // Sigmoid::kPrescale
  float ds_scale;    // scale: dQ = scale * dS K and dK = scale * dS^T Q, folded into dS
  int num_tiles_q;   // ceil(max_q_len / TileQ) of the kernel at hand
  int num_tiles_kv;  // ceil(max_kv_len / TileKV) of the kernel at hand
  int group;         // num_heads / num_kv_heads
  int64_t num_tiles; // work tiles of the kernel at hand
  float* dq_accum;   // fp32 [B, Sq, Hq, D] in the workspace (atomic mode), else null
};

}  // namespace sigattn::kernel

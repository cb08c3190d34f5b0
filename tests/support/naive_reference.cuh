// A deliberately simple fp32 reference on the GPU, for shapes too large for the fp64 CPU one:
// one warp per output row, keys visited one at a time. It reads the same device tensors and
// length arrays as the kernel under test; it is itself checked against the fp64 reference.
#pragma once

#include <sigattn/api.hpp>

namespace sigattn::test {

/// Writes O (fp32, contiguous [B, Sq, Hq, D]) for the problem `p` describes; padded query rows are
/// 0. Reads p.q, p.k, p.v, the length and bias arrays; ignores p.o and p.sigmoid (it uses the
/// exact logistic function). Synchronous; returns the first CUDA error.
cudaError_t naive_forward(FwdParams const& p, float* o);

/// Writes dQ (contiguous [B, Sq, Hq, D]), dK and dV (contiguous [B, Skv, Hkv, D]) in fp32 for the
/// backward `p` describes. Synchronous; returns the first CUDA error.
cudaError_t naive_backward(BwdParams const& p, float* dq, float* dk, float* dv);

}  // namespace sigattn::test

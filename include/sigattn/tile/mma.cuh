// Warp-level tensor-core building blocks for sm_80+: ldmatrix and mma.sync m16n8k16 with fp32
// accumulators. Fragment layouts follow the PTX ISA ("Matrix fragments for mma.m16n8k16"):
//   A (16x16): a0 = (r, c..c+1), a1 = (r+8, c..), a2 = (r, c+8..), a3 = (r+8, c+8..)
//   B (16x8):  b0 = (k..k+1, n), b1 = (k+8.., n)
//   C (16x8):  c0,c1 = (r, c..c+1), c2,c3 = (r+8, c..c+1)
// with r = lane / 4, c = k = 2 * (lane % 4), n = lane / 4.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "sigattn/detail/config.cuh"

namespace sigattn::tile {

/// Loads four 8x8 matrices of 16-bit elements; lane l supplies the shared address of row (l % 8)
/// of matrix (l / 8). Register i receives matrix i in the mma fragment layout.
SIGATTN_DEVICE void ldmatrix_x4(uint32_t (&r)[4], void const* smem_row) {
#if SIGATTN_ARCH_SM80_PLUS
  uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

/// As ldmatrix_x4, with each 8x8 matrix transposed on the way (rows become columns).
SIGATTN_DEVICE void ldmatrix_x4_trans(uint32_t (&r)[4], void const* smem_row) {
#if SIGATTN_ARCH_SM80_PLUS
  uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

/// D = A * B + D for one m16n8k16 tile, 16-bit inputs, fp32 accumulators.
template <class Element>
SIGATTN_DEVICE void mma_16816(float (&d)[4], uint32_t const (&a)[4], uint32_t b0, uint32_t b1);

template <>
SIGATTN_DEVICE void mma_16816<__nv_bfloat16>(float (&d)[4], uint32_t const (&a)[4], uint32_t b0,
                                             uint32_t b1) {
#if SIGATTN_ARCH_SM80_PLUS
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

template <>
SIGATTN_DEVICE void mma_16816<__half>(float (&d)[4], uint32_t const (&a)[4], uint32_t b0,
                                      uint32_t b1) {
#if SIGATTN_ARCH_SM80_PLUS
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

}  // namespace sigattn::tile

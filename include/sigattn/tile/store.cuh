// Shared -> global stores of row tiles, 16 bytes per thread per step, coalesced along rows, and
// register -> shared stores at 32-bit shared addresses.
#pragma once

#include "sigattn/detail/config.cuh"

namespace sigattn::tile {

/// Stores two fp32 values to 8 consecutive bytes (8-byte aligned) of shared memory at the 32-bit
/// shared-window address `addr` (tile::shared_address) with st.shared: the address arithmetic
/// stays 32-bit, and the store is an STS whatever the compiler knows about the pointer it came
/// from.
SIGATTN_DEVICE void st_shared_f32x2(uint32_t addr, float x, float y) {
#if SIGATTN_ARCH_SM80_PLUS
  asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(addr), "f"(x), "f"(y) : "memory");
#endif
}

/// Copies rows [0, rows) of a Layout tile from shared to global memory by `Threads` threads
/// starting at `thread`; rows in [valid_rows, rows) are written as zeros instead of read.
template <class Layout, int Threads, class Element>
SIGATTN_DEVICE void store_rows(Element* gmem, int64_t row_stride, Element const* smem, int rows,
                               int valid_rows, int thread) {
  constexpr int kChunks = Layout::kRows * Layout::kChunksPerRow;
  SIGATTN_PRAGMA_UNROLL
  for (int i = 0; i < (kChunks + Threads - 1) / Threads; ++i) {
    int c = thread + i * Threads;
    if (kChunks % Threads != 0 && c >= kChunks) break;
    int row = c / Layout::kChunksPerRow;
    int col = (c % Layout::kChunksPerRow) * 8;
    if (row >= rows) continue;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (row < valid_rows) v = *reinterpret_cast<uint4 const*>(smem + Layout::offset(row, col));
    *reinterpret_cast<uint4*>(gmem + row * row_stride + col) = v;
  }
}

/// Writes zeros to rows [0, rows) of a Layout-shaped global tile.
template <class Layout, int Threads, class Element>
SIGATTN_DEVICE void store_zero_rows(Element* gmem, int64_t row_stride, int rows, int thread) {
  constexpr int kChunks = Layout::kRows * Layout::kChunksPerRow;
  SIGATTN_PRAGMA_UNROLL
  for (int i = 0; i < (kChunks + Threads - 1) / Threads; ++i) {
    int c = thread + i * Threads;
    if (kChunks % Threads != 0 && c >= kChunks) break;
    int row = c / Layout::kChunksPerRow;
    int col = (c % Layout::kChunksPerRow) * 8;
    if (row < rows)
      *reinterpret_cast<uint4*>(gmem + row * row_stride + col) = make_uint4(0, 0, 0, 0);
  }
}

}  // namespace sigattn::tile

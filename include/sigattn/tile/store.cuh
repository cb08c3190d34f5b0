// Shared -> global stores of row tiles, 16 bytes per thread per step, coalesced along rows.
#pragma once

#include "sigattn/detail/config.cuh"

namespace sigattn::tile {

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

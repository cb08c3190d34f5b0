// Global -> shared tile loads with cp.async (sm_80+), in the swizzled row-major layout that
// tile/mma.cuh reads. Knows nothing about attention: a tile is `Rows` rows of `Cols` 16-bit
// elements, row r of the source at `base + r * row_stride`.
#pragma once

#include "sigattn/detail/config.cuh"

namespace sigattn::tile {

/// Shared-memory layout of a Rows x Cols tile of 16-bit elements: row-major, with the 16-byte
/// chunk index XOR-ed with (row % 8). ldmatrix reads 8 rows of one chunk column at a time; rows
/// are 128 or 256 bytes long, so without the XOR those 8 addresses would sit in the same four
/// banks (an 8-way conflict). With it they cover all 32 banks. Needs at least 8 chunks per row.
template <int Rows, int Cols>
struct SwizzledTile {
  static constexpr int kRows = Rows;
  static constexpr int kCols = Cols;
  static constexpr int kChunksPerRow = Cols / 8;
  static constexpr int kElements = Rows * Cols;
  static constexpr int kBytes = kElements * 2;
  static_assert(Cols % 64 == 0, "rows must hold a multiple of 8 chunks of 16 bytes");

  /// Element offset of (row, col); col must be a multiple of 8 for a 16-byte access, and any
  /// column works for a narrower one inside a chunk.
  SIGATTN_HOST_DEVICE static int offset(int row, int col) {
    int chunk = (col >> 3) ^ (row & 7);
    return row * Cols + (chunk << 3) + (col & 7);
  }
};

/// 16-byte asynchronous copy; when `valid` is false the 16 shared bytes are zero-filled and the
/// source is not read (src-size 0), so a padded row never enters shared memory.
SIGATTN_DEVICE void cp_async_16(void* smem, void const* gmem, bool valid) {
#if SIGATTN_ARCH_SM80_PLUS
  uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem),
               "r"(src_bytes));
#endif
}

SIGATTN_DEVICE void cp_async_commit() {
#if SIGATTN_ARCH_SM80_PLUS
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

/// Waits until at most `Pending` committed groups of this thread are still in flight.
template <int Pending>
SIGATTN_DEVICE void cp_async_wait() {
#if SIGATTN_ARCH_SM80_PLUS
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
#endif
}

/// Issues the cp.async copies of a Layout tile by a CTA of `Threads` threads. Rows at or past
/// `valid_rows` are zero-filled. `row_stride` is in elements; the offsets are 64-bit.
template <class Layout, int Threads, class Element>
SIGATTN_DEVICE void load_tile_async(Element* smem, Element const* gmem, int64_t row_stride,
                                    int valid_rows, int thread) {
  constexpr int kChunks = Layout::kRows * Layout::kChunksPerRow;
  static_assert(kChunks % Threads == 0, "every thread copies the same number of chunks");
  SIGATTN_PRAGMA_UNROLL
  for (int i = 0; i < kChunks / Threads; ++i) {
    int c = thread + i * Threads;
    int row = c / Layout::kChunksPerRow;
    int col = (c % Layout::kChunksPerRow) * 8;
    bool valid = row < valid_rows;
    // Padded rows point the (unread) source at the tile base, which is always a valid address.
    Element const* src = gmem + (valid ? row * row_stride + col : 0);
    cp_async_16(smem + Layout::offset(row, col), src, valid);
  }
}

}  // namespace sigattn::tile

// The Hopper backward's column masks (include/sigattn/kernel/sm90/bwd_mainloop.cuh) on the host.
// In a tile that crosses a limit, the fused pass's clear (clear_outside) zeroes the packed P^T and
// dS^T halves whose query columns lie outside [lo, hi) of their key row; it is built from
// columns_inside (a thread's columns inside the limits, one bit each) and pair_keep (two bits to
// two 16-bit halves). Here both are checked against the definition, for every lane's columns and
// limits beyond both ends of the tile, together with the fragment layout the clear assumes
// (element i of a thread: column col0 + 8 (i / 4) + i % 2 of key row (i / 2) % 2, packed in pairs
// of consecutive elements, the first in the low half). The GPU tests check the clear itself
// through the gradients, with NaN in every padded row.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

#include "sigattn/kernel/sm90/bwd_mainloop.cuh"

namespace {

using sigattn::kernel::sm90::columns_inside;
using sigattn::kernel::sm90::pair_keep;

/// The column of element i of a thread whose first column is col0 (the fragment layout).
int column_of(int col0, int i) { return col0 + 8 * (i / 4) + i % 2; }

template <int TileQ>
void check_columns_inside() {
  INFO("TileQ = " << TileQ);
  int mismatches = 0;
  int first_col0 = 0, first_lo = 0, first_hi = 0;
  for (int col0 : {0, 2, 4, 6})
    for (int lo = -2 * TileQ; lo <= 2 * TileQ; ++lo)
      for (int hi = -2 * TileQ; hi <= 2 * TileQ; ++hi) {
        uint32_t want = 0;
        for (int i = 0; i < TileQ / 2; i += 2) {  // one element per column of key row 0
          int const b = 2 * (i / 4) + i % 2;
          for (int e = 0; e < 2; ++e) {
            int const col = column_of(col0, i + e);
            if (col >= lo && col < hi) want |= 1u << (b + e);
          }
        }
        if (columns_inside<TileQ>(col0, lo, hi) != want && mismatches++ == 0) {
          first_col0 = col0;
          first_lo = lo;
          first_hi = hi;
        }
      }
  INFO("first mismatch: col0 " << first_col0 << ", lo " << first_lo << ", hi " << first_hi);
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("columns_inside marks exactly a thread's columns inside [lo, hi)", "[bwd][masks]") {
  check_columns_inside<128>();
  check_columns_inside<64>();
  // A few values written out: lane 0 (col0 = 0) of a 128-query tile holds columns 0, 1, 8, 9,
  // ..., 120, 121 as bits 0..31.
  CHECK(columns_inside<128>(0, 0, 128) == 0xFFFFFFFFu);
  CHECK(columns_inside<128>(0, 0, 1) == 0x1u);
  CHECK(columns_inside<128>(0, 1, 9) == 0x6u);        // columns 1 and 8
  CHECK(columns_inside<128>(6, 0, 8) == 0x3u);        // columns 6 and 7
  CHECK(columns_inside<128>(0, 128, 0) == 0u);        // a key past kv_len: lo = TileQ
  CHECK(columns_inside<128>(2, -50, 500) == 0xFFFFFFFFu);
}

TEST_CASE("pair_keep keeps the half of each set bit and clears the other", "[bwd][masks]") {
  std::mt19937 rng(20261129);
  for (int trial = 0; trial < 2000; ++trial) {
    uint32_t const inside = rng();
    for (int b = 0; b < 32; b += 2) {
      uint32_t const want = ((inside >> b) & 1u ? 0x0000FFFFu : 0u) |
                            ((inside >> (b + 1)) & 1u ? 0xFFFF0000u : 0u);
      if (pair_keep(inside, b) != want) {
        INFO("inside " << inside << ", b " << b);
        REQUIRE(pair_keep(inside, b) == want);
      }
    }
  }
  CHECK(pair_keep(0x1u, 0) == 0x0000FFFFu);
  CHECK(pair_keep(0x2u, 0) == 0xFFFF0000u);
  CHECK(pair_keep(0x80000000u, 30) == 0xFFFF0000u);
  CHECK(pair_keep(0x40000000u, 30) == 0x0000FFFFu);
}

TEST_CASE("the clear's registers and the pass's elements name the same columns", "[bwd][masks]") {
  // clear_outside keeps the halves of register r of k16 step kk by bits 4 kk + 2 (r / 2) and the
  // next of key row r % 2; sigmoid_at's elements 8 kk + 2 r + e sit in that register (e = 0 low).
  int mismatches = 0;
  for (int col0 : {0, 2, 4, 6})
    for (int lo = -4; lo <= 132; ++lo)
      for (int hi = lo; hi <= 132; ++hi)
        for (int kk = 0; kk < 8; ++kk)
          for (int r = 0; r < 4; ++r) {
            uint32_t const keep =
                pair_keep(columns_inside<128>(col0, lo, hi), 4 * kk + 2 * (r / 2));
            for (int e = 0; e < 2; ++e) {
              int const i = 8 * kk + 2 * r + e;
              bool const in = column_of(col0, i) >= lo && column_of(col0, i) < hi;
              uint32_t const half = e == 0 ? 0x0000FFFFu : 0xFFFF0000u;
              if ((keep & half) != (in ? half : 0u)) ++mismatches;
            }
          }
  CHECK(mismatches == 0);
}

// The Hopper forward shapes that sigattn_tune_sm90 times, one X(id, head_dim, tile_q, tile_kv,
// stages, prefer_staged_o, carry_min_key_tiles, mufu_eighths) per shape. The last two are
// FwdTraits' CarryMinKeyTiles (-1 the traits' own rule, 0 never carry, 1 carry out of every tile
// that can) and MufuEighths (-1 the traits' rule, else how many of every 8 scores take the
// sigmoid's reciprocal on MUFU).
#pragma once

#define SIGATTN_TUNE_SM90_FWD_VARIANTS(X) \
  X(0, 128, 128, 128, 2, true, 16, 0)     \
  X(1, 128, 128, 128, 2, true, 0, 0)      \
  X(2, 128, 128, 128, 2, true, 0, 4)      \
  X(3, 128, 128, 128, 2, true, 0, 6)      \
  X(4, 128, 128, 128, 2, true, 0, 8)      \
  X(5, 128, 128, 128, 2, true, 16, 8)     \
  X(6, 64, 192, 128, 3, true, -1, 0)      \
  X(7, 64, 192, 128, 3, true, -1, 2)      \
  X(8, 64, 192, 128, 3, true, -1, 4)      \
  X(9, 64, 192, 128, 3, true, -1, 8)      \
  X(10, 64, 128, 128, 2, true, 0, 4)

namespace sigattn_tune {

/// One shape of the Hopper forward, with its launcher (sigattn::detail::launch_sm90_fwd_traits).
struct Variant {
  int head_dim;
  int tile_q;
  int tile_kv;
  int stages;
  bool staged_o;            ///< FwdTraits::kStagedO: O leaves through shared memory
  int carry_min_key_tiles;  ///< FwdTraits::kCarryMinKeyTiles (0: the carry is off)
  int mufu_eighths;         ///< FwdTraits::kMufuEighths
  int smem_bytes;
  sigattn::Result (*launch)(sigattn::FwdParams const&, int, cudaStream_t, bool);
};

template <int Id>
Variant variant();

}  // namespace sigattn_tune

// The Hopper forward shapes that sigattn_tune_sm90 times, one X(id, head_dim, tile_q, tile_kv,
// stages, prefer_staged_o, mufu_eighths) per shape. The last is FwdTraits' MufuEighths (-1 the
// traits' rule, else how many of every 8 scores take the sigmoid's reciprocal on MUFU).
// (Until session 7 a column chose the carry across work tiles, since removed: docs/design.md.)
#pragma once

#define SIGATTN_TUNE_SM90_FWD_VARIANTS(X) \
  X(0, 128, 128, 128, 2, true, 0)         \
  X(1, 128, 128, 128, 2, true, 2)         \
  X(2, 128, 128, 128, 2, true, 4)         \
  X(3, 128, 128, 128, 2, true, 6)         \
  X(4, 64, 192, 128, 3, true, 0)          \
  X(5, 64, 192, 128, 3, true, 2)          \
  X(6, 64, 192, 128, 3, true, 3)          \
  X(7, 64, 192, 128, 3, true, 4)          \
  X(8, 64, 192, 128, 3, true, 6)          \
  X(9, 64, 128, 128, 3, true, -1)         \
  X(10, 64, 128, 128, 2, true, -1)        \
  X(11, 128, 192, 64, 3, true, -1)        \
  X(12, 128, 128, 128, 2, true, -1)       \
  X(13, 64, 256, 64, 4, true, -1)         \
  X(14, 64, 256, 64, 4, true, 2)          \
  X(15, 64, 256, 64, 4, true, 5)          \
  X(16, 128, 128, 64, 4, true, -1)

namespace sigattn_tune {

/// One shape of the Hopper forward, with its launcher (sigattn::detail::launch_sm90_fwd_traits).
struct Variant {
  int head_dim;
  int tile_q;
  int tile_kv;
  int stages;
  bool staged_o;     ///< FwdTraits::kStagedO: O leaves through shared memory
  int mufu_eighths;  ///< FwdTraits::kMufuEighths
  int smem_bytes;
  /// launch_sm90_fwd_traits_ordered: parameters, workspace (the split tail's, or null), device,
  /// stream, dry run, the causal tile order.
  sigattn::Result (*launch)(sigattn::FwdParams const&, void*, int, cudaStream_t, bool,
                            sigattn::detail::CausalOrder);
};

template <int Id>
Variant variant();

}  // namespace sigattn_tune

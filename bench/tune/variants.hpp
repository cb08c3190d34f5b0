// The Hopper forward shapes that sigattn_tune_sm90 times, one X(id, head_dim, tile_q, tile_kv,
// stages, prefer_staged_o) per shape. Each id is compiled in a translation unit of its own
// (variant.cu), so the sweep builds in parallel. docs/tuning.md says what each one tests.
#pragma once

#define SIGATTN_TUNE_SM90_FWD_VARIANTS(X) \
  X(0, 128, 128, 128, 2, true)            \
  X(1, 128, 128, 128, 2, false)           \
  X(2, 128, 128, 160, 2, true)            \
  X(3, 128, 128, 176, 2, true)            \
  X(4, 64, 128, 128, 3, true)             \
  X(5, 64, 192, 128, 2, true)             \
  X(6, 64, 192, 128, 3, true)

namespace sigattn_tune {

/// One shape of the Hopper forward, with its launcher (sigattn::detail::launch_sm90_fwd_traits).
struct Variant {
  int head_dim;
  int tile_q;
  int tile_kv;
  int stages;
  bool staged_o;  ///< FwdTraits::kStagedO: O leaves through shared memory
  int smem_bytes;
  sigattn::Result (*launch)(sigattn::FwdParams const&, int, cudaStream_t, bool);
};

template <int Id>
Variant variant();

}  // namespace sigattn_tune

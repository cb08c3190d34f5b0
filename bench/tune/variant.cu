// One Hopper forward shape of variants.hpp: the one at index SIGATTN_TUNE_ID (CMakeLists.txt
// compiles this file once per shape).
#include <sigattn/sigattn.cuh>

#include "variants.hpp"

#ifndef SIGATTN_TUNE_ID
#error "SIGATTN_TUNE_ID selects the shape of variants.hpp that this file compiles"
#endif

namespace sigattn_tune {
namespace {

struct Shape {
  int id, head_dim, tile_q, tile_kv, stages;
  bool prefer_staged_o;
  int mufu_eighths;
};
#define SIGATTN_TUNE_SHAPE(id, d, q, kv, st, so, mufu) Shape{id, d, q, kv, st, so, mufu},
constexpr Shape kShapes[] = {SIGATTN_TUNE_SM90_FWD_VARIANTS(SIGATTN_TUNE_SHAPE)};
#undef SIGATTN_TUNE_SHAPE
constexpr Shape kShape = kShapes[SIGATTN_TUNE_ID];
static_assert(kShape.id == SIGATTN_TUNE_ID, "variants.hpp lists its ids in order from 0");

}  // namespace

template <>
Variant variant<SIGATTN_TUNE_ID>() {
  using Traits =
      sigattn::kernel::sm90::FwdTraits<kShape.head_dim, __nv_bfloat16, kShape.tile_q,
                                       kShape.tile_kv, kShape.stages, kShape.prefer_staged_o,
                                       kShape.mufu_eighths>;
  return Variant{kShape.head_dim,    kShape.tile_q,
                 kShape.tile_kv,     kShape.stages,
                 Traits::kStagedO,   Traits::kMufuEighths,
                 Traits::kSmemBytes, &sigattn::detail::launch_sm90_fwd_traits_ordered<Traits>};
}

}  // namespace sigattn_tune

// A shape of variants.hpp that this build leaves out (SIGATTN_TUNE_IDS, CMakeLists.txt): its
// variant<SIGATTN_TUNE_ID>() has no launcher, so sigattn_tune_sm90 skips it and refuses an --ids
// that names it. Nothing here includes the kernels, so the file compiles in seconds.
#include <cuda_runtime_api.h>

#include <sigattn/api.hpp>

namespace sigattn::detail {
enum class CausalOrder : int;  // (defined in sigattn/host/launch.cuh)
}  // namespace sigattn::detail

#include "variants.hpp"

#ifndef SIGATTN_TUNE_ID
#error "SIGATTN_TUNE_ID selects the shape of variants.hpp that this file stands in for"
#endif

namespace sigattn_tune {

template <>
Variant variant<SIGATTN_TUNE_ID>() {
  return Variant{};
}

}  // namespace sigattn_tune

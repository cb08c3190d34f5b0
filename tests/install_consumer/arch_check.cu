// Compiled twice by CMakeLists.txt, for 90a-real and for 80-real, never run: linking
// sigattn::sigattn turns the Hopper rows on exactly when the target's CUDA_ARCHITECTURES names 90a.
#include <sigattn/host/registry.hpp>

static_assert(SIGATTN_ENABLE_SM90A == SIGATTN_EXPECT_SM90A,
              "SIGATTN_ENABLE_SM90A does not follow the target's CUDA_ARCHITECTURES");

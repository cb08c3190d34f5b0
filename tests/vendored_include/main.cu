// A program built from a bare copy of include/ with plain nvcc, the way a vendoring project or a
// prototype would: header-only mode (inline definitions), no CMake, no generated files.
// run.cmake compiles and links it (one registry row, sm_80, to stay quick); it is not run.
#include <sigattn/sigattn.cuh>

#include <cstdio>

int main() {
  std::printf("sigattn %s\n", SIGATTN_VERSION_STRING);
  sigattn::FwdParams p{};
  p.head_dim = 64;
  p.num_kv_heads = 1;
  sigattn::Result r = sigattn::can_implement(p, 0);  // empty problem: valid, nothing to launch
  std::printf("can_implement: %s\n", sigattn::to_string(r));
  return r ? 0 : 1;
}

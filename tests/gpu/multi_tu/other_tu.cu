// The second translation unit of test_multi_tu: it instantiates and launches the same forward
// kernels as test_multi_tu.cu, and so holds copies of its own of them (no relocatable device code).
#include <sigattn/sigattn.cuh>

#include "multi_tu.hpp"

namespace sigattn::test {

Result launch_forward_from_other_tu(FwdParams const& p, bool hopper, int device,
                                    cudaStream_t stream) {
  return launch_forward_row(p, hopper, device, stream);
}

void const* kernel_address_in_other_tu(bool hopper) { return forward_kernel_address(hopper); }

}  // namespace sigattn::test

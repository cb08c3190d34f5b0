// The same kernel instantiation launched from two translation units. Without relocatable device
// code each unit has its own copy of a kernel template; the per-kernel preparation (the dynamic
// shared-memory opt-in) must reach both copies. Before the fix the second unit's launch failed
// with cudaErrorInvalidValue (bench/tune hit it first).
#include <catch2/catch.hpp>

#include "multi_tu/multi_tu.hpp"
#include "support/gpu_problem.cuh"
#include "support/gpu_test.cuh"

namespace sigattn::test {
uint64_t const kSeedBase = 0x6D756C7469ull;
}

using namespace sigattn;
using namespace sigattn::test;

TEST_CASE("forward: the same kernel launched from two translation units", "[forward][small]") {
  int device = 0;
  REQUIRE(cudaGetDevice(&device) == cudaSuccess);
  for (KernelConfig const& c : runnable_configs(Direction::kForward)) {
    if (c.head_dim != 128 || c.dtype != DType::kBF16) continue;
    bool const hopper = c.path == Path::kHopper;
    INFO("path " << to_string(c.path));
    ProblemSpec s = base_spec(c);
    s.seed = next_seed();
    s.batch = 2;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 300;
    s.q_lens = s.kv_lens = {300, 211};
    DeviceProblem prob(s);
    // The case only tests something when the two units really hold different copies (nvcc gives
    // each unit its own host stub for a kernel template by default).
    if (forward_kernel_address(hopper) == kernel_address_in_other_tu(hopper))
      WARN("both translation units share one copy of the kernel: nothing to test here");

    // This unit first (it prepares its copy), then the other, then this one again.
    Result first = launch_forward_row(prob.params(), hopper, device, nullptr);
    REQUIRE(first.status == Status::kSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    std::vector<float> const o_first = prob.o().download(s.dtype);

    Result other = launch_forward_from_other_tu(prob.params(), hopper, device, nullptr);
    INFO("other unit: " << to_string(other));
    REQUIRE(other.status == Status::kSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(same_bits(prob.o().download(s.dtype), o_first));

    REQUIRE(launch_forward_row(prob.params(), hopper, device, nullptr).status == Status::kSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  }
}

// SPEC section 2: the default sigmoid is accurate to 5e-4 relative over the whole fp32 range
// (wherever the exact value is a normal float); the fast one is an opt-in with known error.
#include <catch2/catch.hpp>

#include <sigattn/tile/sigmoid.cuh>

#include <cmath>
#include <utility>
#include <vector>

#include "../support/gpu_problem.cuh"

namespace {

using sigattn::tile::Reciprocal;

template <class Sigmoid, Reciprocal Unit>
__global__ void eval_sigmoid(float const* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = Sigmoid::template apply<Unit>(x[i] * Sigmoid::kPrescale);
}

/// Largest relative error against the exact logistic function over x in [lo, hi].
template <class Sigmoid, Reciprocal Unit = Reciprocal::kFma>
double max_rel_error(float lo, float hi) {
  constexpr int kN = 1 << 20;
  std::vector<float> x(kN);
  for (int i = 0; i < kN; ++i) x[i] = lo + (hi - lo) * (static_cast<float>(i) / (kN - 1));
  sigattn::test::DeviceBuffer dx(kN * 4), dy(kN * 4);
  SIGATTN_TEST_CUDA(cudaMemcpy(dx.get(), x.data(), kN * 4, cudaMemcpyHostToDevice));
  eval_sigmoid<Sigmoid, Unit>
      <<<kN / 256, 256>>>(static_cast<float*>(dx.get()), static_cast<float*>(dy.get()), kN);
  SIGATTN_TEST_CUDA(cudaGetLastError());
  std::vector<float> y(kN);
  SIGATTN_TEST_CUDA(cudaMemcpy(y.data(), dy.get(), kN * 4, cudaMemcpyDeviceToHost));
  double worst = 0.0;
  for (int i = 0; i < kN; ++i) {
    double exact = 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])));
    worst = std::fmax(worst, std::fabs(y[i] - exact) / exact);
  }
  return worst;
}

}  // namespace

// exp(-87) is about the smallest normal float; beyond +20 the value is 1 in fp32.
constexpr std::pair<float, float> kRanges[] = {
    {-87.0f, -12.0f}, {-12.0f, -6.0f}, {-6.0f, 0.0f}, {0.0f, 6.0f}, {6.0f, 88.0f}};

TEST_CASE("accurate sigmoid: relative error <= 5e-4 over the fp32 range", "[sigmoid][small]") {
  using sigattn::tile::SigmoidAccurate;
  for (auto range : kRanges) {
    double err = max_rel_error<SigmoidAccurate, Reciprocal::kFma>(range.first, range.second);
    INFO("FMA-pipe reciprocal, x in [" << range.first << ", " << range.second
                                       << "]: max relative error " << err);
    CHECK(err <= 5e-4);
    CHECK(err > 1e-6);  // the quadratic start and one Newton step: about 1e-4, not exact
  }
  for (auto range : kRanges) {
    double err = max_rel_error<SigmoidAccurate, Reciprocal::kMufu>(range.first, range.second);
    INFO("MUFU reciprocal, x in [" << range.first << ", " << range.second
                                   << "]: max relative error " << err);
    CHECK(err <= 1e-5);  // rcp.approx and ex2.approx: a few ulp
  }
}

TEST_CASE("fast sigmoid: tanh.approx error as documented", "[sigmoid][small]") {
  using sigattn::tile::SigmoidFast;
  double near = max_rel_error<SigmoidFast>(-6.0f, 20.0f);
  double tail = max_rel_error<SigmoidFast>(-11.0f, -6.0f);
  INFO("max relative error on [-6, 20]: " << near << ", on [-11, -6]: " << tail);
  CHECK(near <= 1e-3);
  CHECK(tail <= 2e-2);
  CHECK(tail > 5e-4);  // the reason it is not the default
}

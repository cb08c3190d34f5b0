// sigmoid_warps: cycles of the forward's elementwise passes on one SM sub-partition with 1, 2 or 4
// warps at once (a microbenchmark; docs/performance.md, session 22):
// - the pack of 64 fp32 values per thread into 32 bf16x2 registers, by F2FP (cvt.rn.bf16x2.f32)
//   or by integer rounding (add 0x8000 to the bits, keep the high halves);
// - the accurate sigmoid of 64 values per thread (the D=128 consumer's tile), for several shares k
//   of 8 on MUFU (tile::apply_split).
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Iinclude tools/sigmoid_warps.cu
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <sigattn/tile/sigmoid.cuh>

template <int K, sigattn::tile::Reciprocal Form>
__global__ void run(float* out, long long* cycles, float mul, int reps) {
  float v[64];
  for (int i = 0; i < 64; ++i) v[i] = (threadIdx.x * 64 + i) * 1e-3f - 9.0f;
  __syncthreads();
  long long const t0 = clock64();
  for (int r = 0; r < reps; ++r) {
#pragma unroll
    for (int i = 0; i < 64; ++i)
      v[i] = sigattn::tile::apply_split<sigattn::tile::SigmoidAccurate, K, Form>(
          i, fmaf(v[i], mul, -12.0f));
  }
  long long const t1 = clock64();
  float s = 0;
  for (int i = 0; i < 64; ++i) s += v[i];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

// Runs `launch(warps)` twice (132 blocks of `warps` warps: 1, 2 or 4 per sub-partition) and
// returns the second launch's mean of the blocks' cycle counts.
template <class Launch>
double mean_cycles(Launch launch, int warps, long long* cyc) {
  launch(warps);
  launch(warps);
  cudaDeviceSynchronize();
  long long h[132];
  cudaMemcpy(h, cyc, sizeof h, cudaMemcpyDeviceToHost);
  double mean = 0;
  for (long long x : h) mean += x / 132.0;
  return mean;
}

template <int K, sigattn::tile::Reciprocal Form>
void measure(char const* name, float* out, long long* cyc) {
  int const reps = 200;
  for (int warps = 4; warps <= 16; warps *= 2) {  // 1, 2, 4 warps per sub-partition
    double const per =  // cycles per 64 values per warp, all warps at once
        mean_cycles([&](int w) { run<K, Form><<<132, w * 32>>>(out, cyc, 0.25f, reps); }, warps,
                    cyc) /
        reps;
    std::printf("%-16s warps/SMSP %d: %7.0f cycles per 64-value sigmoid; %.2f values/clk/SM\n",
                name, warps / 4, per, 64.0 * 32 * warps / per);
  }
}

// The pack of 64 fp32 values per thread into 32 bf16x2 registers (fwd_consumer's pack_p), by
// F2FP (cvt.rn.bf16x2.f32) or by integer rounding (add 0x8000, take the high halves: PRMT).
template <bool Integer>
__global__ void pack(unsigned* out, long long* cycles, int reps) {
  float v[64];
  for (int i = 0; i < 64; ++i) v[i] = (threadIdx.x * 64 + i) * 1e-3f;
  unsigned acc = 0;
  __syncthreads();
  long long const t0 = clock64();
  for (int r = 0; r < reps; ++r) {
    unsigned p[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      if constexpr (Integer) {
        p[i] = __byte_perm(__float_as_uint(v[2 * i]) + 0x8000u,
                           __float_as_uint(v[2 * i + 1]) + 0x8000u, 0x7632);
      } else {
        __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
        p[i] = *reinterpret_cast<unsigned*>(&h);
      }
    }
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      acc ^= p[i];
      v[2 * i] = __uint_as_float(__float_as_uint(v[2 * i]) ^ (p[i] & 1u));
    }
  }
  long long const t1 = clock64();
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

template <bool Integer>
void measure_pack(char const* name, unsigned* out, long long* cyc) {
  int const reps = 200;
  for (int warps = 4; warps <= 16; warps *= 2) {
    double const mean =
        mean_cycles([&](int w) { pack<Integer><<<132, w * 32>>>(out, cyc, reps); }, warps, cyc);
    std::printf("%-16s warps/SMSP %d: %7.0f cycles per 32 packs (and 64 xor)\n", name, warps / 4,
                mean / reps);
  }
}

int main() {
  float* out;
  long long* cyc;
  cudaMalloc(&out, 132 * 512 * 4);
  cudaMalloc(&cyc, 132 * 8);
  using R = sigattn::tile::Reciprocal;
  measure_pack<false>("pack F2FP", reinterpret_cast<unsigned*>(out), cyc);
  measure_pack<true>("pack integer", reinterpret_cast<unsigned*>(out), cyc);
  measure<8, R::kFma>("8/8 MUFU", out, cyc);
  measure<6, R::kFma>("6/8 +Newton", out, cyc);
  measure<4, R::kFma>("4/8 +Newton", out, cyc);
  measure<0, R::kFma>("0/8 Newton", out, cyc);
  measure<6, R::kFmaShort>("6/8 +short", out, cyc);
  measure<4, R::kFmaShort>("4/8 +short", out, cyc);
  measure<3, R::kFmaShort>("3/8 +short", out, cyc);
  measure<0, R::kFmaShort>("0/8 short", out, cyc);
  cudaError_t e = cudaGetLastError();
  std::printf("%s\n", cudaGetErrorString(e));
  return 0;
}

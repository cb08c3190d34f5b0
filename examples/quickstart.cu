// sigattn quickstart: sigmoid attention over a padded batch of variable-length sequences.
//
// Builds a random batch (lengths drawn between S/4 and S, bf16, [B, S, H, D]), runs the forward
// with the workspace it asks for (workspace_bytes: on Hopper the last waves of work may then be cut
// along the keys; elsewhere it is 0 and a null workspace is fine), checks a few output rows against
// the fp64 reference and prints the error and the speed on the real tokens. Exits non-zero, with a
// message, when a call or a check fails (1) or when there is no usable GPU (2: the test suite
// reports that as skipped).
#include <sigattn/reference.hpp>
#include <sigattn/sigattn.cuh>

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#define CHECK_CUDA(expr)                                                                 \
  do {                                                                                   \
    cudaError_t err_ = (expr);                                                           \
    if (err_ != cudaSuccess) {                                                           \
      std::fprintf(stderr, "quickstart: %s failed: %s\n", #expr, cudaGetErrorString(err_)); \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

int main() {
  int device_count = 0;
  if (cudaGetDeviceCount(&device_count) != cudaSuccess || device_count == 0) {
    std::fprintf(stderr, "quickstart: no CUDA device found; this example needs an NVIDIA GPU "
                         "of compute capability 8.0 or newer.\n");
    return 2;
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (prop.major < 8) {
    std::fprintf(stderr,
                 "quickstart: %s is compute capability %d.%d; this example needs 8.0 or "
                 "newer.\n",
                 prop.name, prop.major, prop.minor);
    return 2;
  }

  constexpr int kBatch = 8;
  constexpr int kSeq = 2048;
  constexpr int kHeads = 16;
  constexpr int kDim = 128;

  // Real lengths, uniform in [S/4, S]; the rest of each sequence is padding.
  std::mt19937 rng(2026);
  std::uniform_int_distribution<int> len_dist(kSeq / 4, kSeq);
  std::vector<int32_t> lens(kBatch);
  for (int32_t& l : lens) l = len_dist(rng);

  size_t const elements = size_t{kBatch} * kSeq * kHeads * kDim;
  std::vector<__nv_bfloat16> hq(elements), hk(elements), hv(elements);
  std::vector<float> fq(elements), fk(elements), fv(elements);  // the same values, for the check
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t i = 0; i < elements; ++i) {
    hq[i] = __float2bfloat16(normal(rng));
    hk[i] = __float2bfloat16(normal(rng));
    hv[i] = __float2bfloat16(normal(rng));
    fq[i] = __bfloat162float(hq[i]);
    fk[i] = __bfloat162float(hk[i]);
    fv[i] = __bfloat162float(hv[i]);
  }

  void *dq, *dk, *dv, *dout;
  int32_t* dlens;
  CHECK_CUDA(cudaMalloc(&dq, elements * 2));
  CHECK_CUDA(cudaMalloc(&dk, elements * 2));
  CHECK_CUDA(cudaMalloc(&dv, elements * 2));
  CHECK_CUDA(cudaMalloc(&dout, elements * 2));
  CHECK_CUDA(cudaMalloc(&dlens, kBatch * sizeof(int32_t)));
  CHECK_CUDA(cudaMemcpy(dq, hq.data(), elements * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(dk, hk.data(), elements * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(dv, hv.data(), elements * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(dlens, lens.data(), kBatch * sizeof(int32_t), cudaMemcpyHostToDevice));

  sigattn::FwdParams p{};
  p.q = dq;
  p.k = dk;
  p.v = dv;
  p.o = dout;
  p.dtype = sigattn::DType::kBF16;
  p.batch = kBatch;
  p.num_heads = p.num_kv_heads = kHeads;
  p.head_dim = kDim;
  p.max_q_len = p.max_kv_len = kSeq;
  p.q_lens = p.kv_lens = dlens;
  p.q_stride = p.k_stride = p.v_stride = p.o_stride =
      sigattn::Strides{int64_t{kSeq} * kHeads * kDim, kHeads * kDim, kDim};
  p.bias_mode = sigattn::BiasMode::kNegLogKvLen;  // the recommended default

  // The workspace: any 16-byte-aligned device memory of workspace_bytes(p) bytes (cudaMalloc's
  // is), reusable across calls on one stream, not zeroed by the caller. 0 bytes: pass null.
  size_t const workspace_bytes = sigattn::workspace_bytes(p);
  void* workspace = nullptr;
  if (workspace_bytes > 0) CHECK_CUDA(cudaMalloc(&workspace, workspace_bytes));

  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));
  auto run = [&] {
    if (sigattn::Result r = sigattn::forward(p, workspace, stream); !r) {
      std::fprintf(stderr, "quickstart: sigattn::forward: %s\n", sigattn::to_string(r));
      std::exit(1);
    }
  };
  run();
  CHECK_CUDA(cudaStreamSynchronize(stream));

  // Time it: warm-up above, then the median of 20 runs.
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> ms(20);
  for (float& t : ms) {
    CHECK_CUDA(cudaEventRecord(start, stream));
    run();
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
  }
  std::sort(ms.begin(), ms.end());
  double real_pairs = 0;
  for (int32_t l : lens) real_pairs += double(l) * l;
  double tflops = 4.0 * kDim * kHeads * real_pairs / (ms[ms.size() / 2] * 1e-3) / 1e12;

  // Check a few rows against the fp64 reference: real rows at the start, middle and end of
  // each sequence, and one padded row, which must be exactly zero.
  std::vector<__nv_bfloat16> ho(elements);
  CHECK_CUDA(cudaMemcpy(ho.data(), dout, elements * 2, cudaMemcpyDeviceToHost));
  sigattn::reference::ProblemDesc d = sigattn::reference::describe(p, lens, lens);
  double err2 = 0, ref2 = 0;
  bool padding_zero = true;
  std::vector<double> row(kDim);
  for (int b = 0; b < kBatch; ++b) {
    for (int i : {0, lens[b] / 2, lens[b] - 1, kSeq - 1}) {
      int h = (b * 5 + i) % kHeads;
      sigattn::reference::forward_row(d, fq.data(), fk.data(), fv.data(), b, i, h, row.data());
      size_t base = sigattn::reference::offset(p.o_stride, b, i, h);
      for (int c = 0; c < kDim; ++c) {
        double x = __bfloat162float(ho[base + c]);
        if (i >= lens[b]) {
          padding_zero = padding_zero && x == 0.0;
          continue;
        }
        err2 += (x - row[c]) * (x - row[c]);
        ref2 += row[c] * row[c];
      }
    }
  }
  double rel = std::sqrt(err2 / ref2);

  std::printf("device: %s\n", prop.name);
  std::printf("batch %d x %d heads x D=%d, max length %d, lengths in [%d, %d]\n", kBatch, kHeads,
              kDim, kSeq, kSeq / 4, kSeq);
  std::printf("relative L2 error on checked rows: %.2e (bar for bf16: 3e-3)\n", rel);
  std::printf("padded rows exactly zero: %s\n", padding_zero ? "yes" : "NO");
  std::printf("forward: %.3f ms, %.1f TFLOP/s on real tokens (workspace %zu bytes)\n",
              ms[ms.size() / 2], tflops, workspace_bytes);

  cudaFree(dq);
  cudaFree(dk);
  cudaFree(dv);
  cudaFree(dout);
  cudaFree(dlens);
  cudaFree(workspace);
  cudaStreamDestroy(stream);
  bool ok = rel <= 3e-3 && padding_zero;
  if (!ok) std::fprintf(stderr, "quickstart: check FAILED\n");
  return ok ? 0 : 1;
}

#include "naive_reference.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

namespace sigattn::test {
namespace {

constexpr int kMaxDimPerLane = 4;  // head_dim <= 128

__device__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ float to_f(__half x) { return __half2float(x); }

__device__ int clamp_len(int32_t const* lens, int b, int max_len) {
  return lens == nullptr ? max_len : min(max(lens[b], 0), max_len);
}

struct Problem {
  int q_len;
  int kv_len;
  float bias;
  int key_end_offset;  // key j is visible to row i when j < kv_len and (!causal or j <= i + off)
  bool causal;
};

__device__ Problem read_problem(FwdParams const& p, int b) {
  Problem s;
  s.q_len = clamp_len(p.q_lens, b, p.max_q_len);
  s.kv_len = clamp_len(p.kv_lens, b, p.max_kv_len);
  s.causal = p.causal != Causal::kNone;
  s.key_end_offset = p.causal == Causal::kBottomRight ? s.kv_len - s.q_len : 0;
  if (p.bias_mode == BiasMode::kScalar)
    s.bias = p.bias;
  else if (p.bias_mode == BiasMode::kPerBatch)
    s.bias = p.bias_per_batch[b];
  else
    s.bias = s.kv_len > 0 ? -logf(static_cast<float>(s.kv_len)) : 0.0f;
  return s;
}

__device__ bool visible(Problem const& s, int i, int j) {
  return j < s.kv_len && i < s.q_len && (!s.causal || j <= i + s.key_end_offset);
}

__device__ float warp_sum(float x) {
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

__device__ float scale_of(FwdParams const& p) {
  return p.scale != 0.0f ? p.scale : rsqrtf(static_cast<float>(p.head_dim));
}

// One warp per (b, i, h) query row; lane l owns dims l, l + 32, ...
template <class T>
__global__ void forward_kernel(FwdParams p, float* o) {
  int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  int64_t rows = static_cast<int64_t>(p.batch) * p.max_q_len * p.num_heads;
  if (row >= rows) return;
  int h = static_cast<int>(row % p.num_heads);
  int i = static_cast<int>((row / p.num_heads) % p.max_q_len);
  int b = static_cast<int>(row / (static_cast<int64_t>(p.num_heads) * p.max_q_len));
  int g = h / (p.num_heads / p.num_kv_heads);
  int const dim = p.head_dim;
  Problem s = read_problem(p, b);
  float const scale = scale_of(p);

  float q[kMaxDimPerLane] = {};
  float acc[kMaxDimPerLane] = {};
  T const* qr = static_cast<T const*>(p.q) + b * p.q_stride.batch + i * p.q_stride.token +
                h * p.q_stride.head;
  if (i < s.q_len)
    for (int c = 0; c < kMaxDimPerLane; ++c)
      if (lane + 32 * c < dim) q[c] = to_f(qr[lane + 32 * c]);
  for (int j = 0; j < s.kv_len; ++j) {
    if (!visible(s, i, j)) continue;
    T const* kr = static_cast<T const*>(p.k) + b * p.k_stride.batch + j * p.k_stride.token +
                  g * p.k_stride.head;
    T const* vr = static_cast<T const*>(p.v) + b * p.v_stride.batch + j * p.v_stride.token +
                  g * p.v_stride.head;
    float dot = 0.0f;
    for (int c = 0; c < kMaxDimPerLane; ++c)
      if (lane + 32 * c < dim) dot = fmaf(q[c], to_f(kr[lane + 32 * c]), dot);
    dot = warp_sum(dot);
    float prob = 1.0f / (1.0f + expf(-(scale * dot + s.bias)));
    for (int c = 0; c < kMaxDimPerLane; ++c)
      if (lane + 32 * c < dim) acc[c] = fmaf(prob, to_f(vr[lane + 32 * c]), acc[c]);
  }
  for (int c = 0; c < kMaxDimPerLane; ++c)
    if (lane + 32 * c < dim) o[row * dim + lane + 32 * c] = acc[c];
}

// dQ and the per-query-head contributions to dK, dV. One warp per query row computes dQ; one warp
// per (b, j, hkv) key row computes dK and dV by walking the query rows of its group.
template <class T>
__global__ void backward_dq_kernel(BwdParams bp, float* dq) {
  FwdParams const& p = bp.fwd;
  int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  int64_t rows = static_cast<int64_t>(p.batch) * p.max_q_len * p.num_heads;
  if (row >= rows) return;
  int h = static_cast<int>(row % p.num_heads);
  int i = static_cast<int>((row / p.num_heads) % p.max_q_len);
  int b = static_cast<int>(row / (static_cast<int64_t>(p.num_heads) * p.max_q_len));
  int g = h / (p.num_heads / p.num_kv_heads);
  int const dim = p.head_dim;
  Problem s = read_problem(p, b);
  float const scale = scale_of(p);
  float q[kMaxDimPerLane] = {};
  float go[kMaxDimPerLane] = {};
  float acc[kMaxDimPerLane] = {};
  if (i < s.q_len) {
    T const* qr = static_cast<T const*>(p.q) + b * p.q_stride.batch + i * p.q_stride.token +
                  h * p.q_stride.head;
    T const* dor = static_cast<T const*>(bp.dout) + b * bp.dout_stride.batch +
                   i * bp.dout_stride.token + h * bp.dout_stride.head;
    for (int c = 0; c < kMaxDimPerLane; ++c)
      if (lane + 32 * c < dim) {
        q[c] = to_f(qr[lane + 32 * c]);
        go[c] = to_f(dor[lane + 32 * c]);
      }
  }
  for (int j = 0; j < s.kv_len; ++j) {
    if (!visible(s, i, j)) continue;
    T const* kr = static_cast<T const*>(p.k) + b * p.k_stride.batch + j * p.k_stride.token +
                  g * p.k_stride.head;
    T const* vr = static_cast<T const*>(p.v) + b * p.v_stride.batch + j * p.v_stride.token +
                  g * p.v_stride.head;
    float dot = 0.0f;
    float dp = 0.0f;
    for (int c = 0; c < kMaxDimPerLane; ++c)
      if (lane + 32 * c < dim) {
        dot = fmaf(q[c], to_f(kr[lane + 32 * c]), dot);
        dp = fmaf(go[c], to_f(vr[lane + 32 * c]), dp);
      }
    dot = warp_sum(dot);
    dp = warp_sum(dp);
    float prob = 1.0f / (1.0f + expf(-(scale * dot + s.bias)));
    float ds = prob * (1.0f - prob) * dp;
    for (int c = 0; c < kMaxDimPerLane; ++c)
      if (lane + 32 * c < dim) acc[c] = fmaf(scale * ds, to_f(kr[lane + 32 * c]), acc[c]);
  }
  for (int c = 0; c < kMaxDimPerLane; ++c)
    if (lane + 32 * c < dim) dq[row * dim + lane + 32 * c] = acc[c];
}

template <class T>
__global__ void backward_dkdv_kernel(BwdParams bp, float* dk, float* dv) {
  FwdParams const& p = bp.fwd;
  int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  int64_t rows = static_cast<int64_t>(p.batch) * p.max_kv_len * p.num_kv_heads;
  if (row >= rows) return;
  int g = static_cast<int>(row % p.num_kv_heads);
  int j = static_cast<int>((row / p.num_kv_heads) % p.max_kv_len);
  int b = static_cast<int>(row / (static_cast<int64_t>(p.num_kv_heads) * p.max_kv_len));
  int const group = p.num_heads / p.num_kv_heads;
  int const dim = p.head_dim;
  Problem s = read_problem(p, b);
  float const scale = scale_of(p);
  float k[kMaxDimPerLane] = {};
  float v[kMaxDimPerLane] = {};
  float acc_k[kMaxDimPerLane] = {};
  float acc_v[kMaxDimPerLane] = {};
  if (j < s.kv_len) {
    T const* kr = static_cast<T const*>(p.k) + b * p.k_stride.batch + j * p.k_stride.token +
                  g * p.k_stride.head;
    T const* vr = static_cast<T const*>(p.v) + b * p.v_stride.batch + j * p.v_stride.token +
                  g * p.v_stride.head;
    for (int c = 0; c < kMaxDimPerLane; ++c)
      if (lane + 32 * c < dim) {
        k[c] = to_f(kr[lane + 32 * c]);
        v[c] = to_f(vr[lane + 32 * c]);
      }
    for (int h = g * group; h < (g + 1) * group; ++h) {
      for (int i = 0; i < s.q_len; ++i) {
        if (!visible(s, i, j)) continue;
        T const* qr = static_cast<T const*>(p.q) + b * p.q_stride.batch + i * p.q_stride.token +
                      h * p.q_stride.head;
        T const* dor = static_cast<T const*>(bp.dout) + b * bp.dout_stride.batch +
                       i * bp.dout_stride.token + h * bp.dout_stride.head;
        float dot = 0.0f;
        float dp = 0.0f;
        for (int c = 0; c < kMaxDimPerLane; ++c)
          if (lane + 32 * c < dim) {
            dot = fmaf(to_f(qr[lane + 32 * c]), k[c], dot);
            dp = fmaf(to_f(dor[lane + 32 * c]), v[c], dp);
          }
        dot = warp_sum(dot);
        dp = warp_sum(dp);
        float prob = 1.0f / (1.0f + expf(-(scale * dot + s.bias)));
        float ds = prob * (1.0f - prob) * dp;
        for (int c = 0; c < kMaxDimPerLane; ++c)
          if (lane + 32 * c < dim) {
            acc_k[c] = fmaf(scale * ds, to_f(qr[lane + 32 * c]), acc_k[c]);
            acc_v[c] = fmaf(prob, to_f(dor[lane + 32 * c]), acc_v[c]);
          }
      }
    }
  }
  for (int c = 0; c < kMaxDimPerLane; ++c)
    if (lane + 32 * c < dim) {
      dk[row * dim + lane + 32 * c] = acc_k[c];
      dv[row * dim + lane + 32 * c] = acc_v[c];
    }
}

unsigned blocks_for_rows(int64_t rows) {
  constexpr int64_t kRowsPerBlock = 256 / 32;
  return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

}  // namespace

cudaError_t naive_forward(FwdParams const& p, float* o) {
  if (p.head_dim > 32 * kMaxDimPerLane) return cudaErrorInvalidValue;
  int64_t rows = static_cast<int64_t>(p.batch) * p.max_q_len * p.num_heads;
  if (rows == 0) return cudaSuccess;
  if (p.dtype == DType::kBF16)
    forward_kernel<__nv_bfloat16><<<blocks_for_rows(rows), 256>>>(p, o);
  else
    forward_kernel<__half><<<blocks_for_rows(rows), 256>>>(p, o);
  cudaError_t e = cudaGetLastError();
  return e != cudaSuccess ? e : cudaDeviceSynchronize();
}

cudaError_t naive_backward(BwdParams const& bp, float* dq, float* dk, float* dv) {
  FwdParams const& p = bp.fwd;
  if (p.head_dim > 32 * kMaxDimPerLane) return cudaErrorInvalidValue;
  int64_t q_rows = static_cast<int64_t>(p.batch) * p.max_q_len * p.num_heads;
  int64_t kv_rows = static_cast<int64_t>(p.batch) * p.max_kv_len * p.num_kv_heads;
  if (q_rows > 0) {
    if (p.dtype == DType::kBF16)
      backward_dq_kernel<__nv_bfloat16><<<blocks_for_rows(q_rows), 256>>>(bp, dq);
    else
      backward_dq_kernel<__half><<<blocks_for_rows(q_rows), 256>>>(bp, dq);
  }
  if (kv_rows > 0) {
    if (p.dtype == DType::kBF16)
      backward_dkdv_kernel<__nv_bfloat16><<<blocks_for_rows(kv_rows), 256>>>(bp, dk, dv);
    else
      backward_dkdv_kernel<__half><<<blocks_for_rows(kv_rows), 256>>>(bp, dk, dv);
  }
  cudaError_t e = cudaGetLastError();
  return e != cudaSuccess ? e : cudaDeviceSynchronize();
}

}  // namespace sigattn::test

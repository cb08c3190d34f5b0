// sigattn_bench: the baseline a user would write without the library.
//
// Sigmoid attention out of cuBLAS batched products and two elementwise kernels, materialising the
// whole padded score matrix of every (batch entry, head):
//
//   forward:  S = Q K^T                      cuBLAS, inputs bf16/fp16, fp32 compute, S stored in
//   the
//                                            input dtype (what `q @ k.transpose(-1, -2)` gives)
//             P = mask(sigmoid(scale*S + b)) one elementwise kernel in fp32, P written in the input
//                                            dtype over S; b = -log(kv_len); keys j >= kv_len,
//                                            queries i >= q_len and (causal) j > i get P = 0
//             O = P V                        cuBLAS
//   backward: P is kept from the forward (autograd would keep it), so it is not recomputed:
//             dV = P^T dO, dP = dO V^T       cuBLAS
//             dS = P (1 - P) dP              elementwise, fp32, written over dP in the input dtype
//             dQ = scale dS K, dK = scale dS^T Q   cuBLAS
//
// The products run over the padded shape (S x S per head, whatever the real lengths), as a batched
// call on padded tensors does. Tensors are [B, S, H, D] with H = Hq = Hkv, so one head's matrix has
// row stride H * D; every product is one cublasGemmBatchedEx over the B * H (batch entry, head)
// pairs through device pointer arrays. cuBLAS is column-major: a row-major [rows, D] head matrix
// with row stride H * D is the column-major D x rows matrix of leading dimension H * D, and the
// row-major [S, S] score matrix of ld S is its own transpose in column-major terms.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <library_types.h>

#include <cstdint>
#include <vector>

#include "bench_util.cuh"

namespace sigattn_bench {

/// Elements per thread in the elementwise kernels: one 16-byte vector (S must be a multiple of 8).
constexpr int kBaselineVec = 8;

/// P = sigmoid(scale * S + bias_b) where the key is real and visible, else 0; in place, fp32 math.
/// Scores are [B, H, S, S] (query rows, key columns); a chunk of 8 keys never crosses a row.
template <class Element>
__global__ void baseline_sigmoid_mask_kernel(Element* scores, int64_t num_chunks, int32_t max_len,
                                             int32_t num_heads, int32_t const* lens, float scale,
                                             bool causal) {
  int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t c = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; c < num_chunks; c += stride) {
    int64_t first = c * kBaselineVec;
    int64_t row = first / max_len;  // (b * H + h) * S + i
    int32_t j0 = static_cast<int32_t>(first - row * max_len);
    int32_t i = static_cast<int32_t>(row % max_len);
    int32_t b = static_cast<int32_t>(row / max_len / num_heads);
    int32_t len = min(max(lens[b], 0), max_len);
    float bias = -logf(static_cast<float>(max(len, 1)));
    int32_t key_end = i < len ? (causal ? min(len, i + 1) : len) : 0;

    alignas(16) Element v[kBaselineVec];
    *reinterpret_cast<uint4*>(v) = reinterpret_cast<uint4 const*>(scores)[c];
#pragma unroll
    for (int t = 0; t < kBaselineVec; ++t) {
      float x = scale * to_float(v[t]) + bias;
      float p = 1.0f / (1.0f + __expf(-x));
      v[t] = from_float<Element>(j0 + t < key_end ? p : 0.0f);
    }
    reinterpret_cast<uint4*>(scores)[c] = *reinterpret_cast<uint4*>(v);
  }
}

/// dS = P (1 - P) dP, written over dP. Masked P are 0, so masked dS are 0 without a mask.
template <class Element>
__global__ void baseline_sigmoid_grad_kernel(Element const* p, Element* dp, int64_t num_chunks) {
  int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t c = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; c < num_chunks; c += stride) {
    alignas(16) Element pv[kBaselineVec];
    alignas(16) Element gv[kBaselineVec];
    *reinterpret_cast<uint4*>(pv) = reinterpret_cast<uint4 const*>(p)[c];
    *reinterpret_cast<uint4*>(gv) = reinterpret_cast<uint4 const*>(dp)[c];
#pragma unroll
    for (int t = 0; t < kBaselineVec; ++t) {
      float pf = to_float(pv[t]);
      gv[t] = from_float<Element>(pf * (1.0f - pf) * to_float(gv[t]));
    }
    reinterpret_cast<uint4*>(dp)[c] = *reinterpret_cast<uint4*>(gv);
  }
}

/// Device pointers of one shape's [B, S, H, D] tensors (H = Hq = Hkv, contiguous).
struct Tensors {
  void* q = nullptr;
  void* k = nullptr;
  void* v = nullptr;
  void* o = nullptr;
  void* dout = nullptr;
  void* dq = nullptr;
  void* dk = nullptr;
  void* dv = nullptr;
};

/// The cuBLAS baseline for one shape at a time: prepare(), then forward() / backward(), release().
class Baseline {
 public:
  Baseline(cublasHandle_t handle, cudaStream_t stream, int sm_count)
      : handle_(handle), stream_(stream), sm_count_(sm_count) {}

  /// Sets up a shape: allocates the score buffer P and, when `want_backward`, dP (each B*H*S*S
  /// elements), and the pointer arrays. A buffer that does not fit leaves that direction
  /// unavailable (forward_fits() / backward_fits()) instead of failing.
  void prepare(bool bf16, int32_t batch, int32_t max_len, int32_t num_heads, int32_t head_dim,
               Tensors const& t, bool want_backward) {
    release();
    dtype_ = bf16 ? CUDA_R_16BF : CUDA_R_16F;
    batch_ = batch;
    max_len_ = max_len;
    num_heads_ = num_heads;
    head_dim_ = head_dim;
    size_t score_bytes = static_cast<size_t>(batch) * num_heads * max_len * max_len * 2;
    forward_fits_ = p_.try_allocate(score_bytes);
    backward_fits_ = forward_fits_ && want_backward && dp_.try_allocate(score_bytes);
    if (!forward_fits_) return;

    // Pointer arrays, one per operand, entry b * H + h.
    int64_t count = int64_t{batch} * num_heads;
    int64_t token_stride = int64_t{num_heads} * head_dim;
    int64_t batch_stride = int64_t{max_len} * token_stride;
    int64_t score_stride = int64_t{max_len} * max_len;
    void* tensor_base[kNumTensorOperands] = {t.q, t.k, t.v, t.o, t.dout, t.dq, t.dk, t.dv};
    std::vector<void*> host(static_cast<size_t>(kNumOperands * count), nullptr);
    for (int op = 0; op < kNumOperands; ++op) {
      for (int64_t bh = 0; bh < count; ++bh) {
        int64_t b = bh / num_heads;
        int64_t h = bh % num_heads;
        char* base = nullptr;
        int64_t offset = 0;
        if (op < kNumTensorOperands) {
          base = static_cast<char*>(tensor_base[op]);
          offset = b * batch_stride + h * head_dim;
        } else {
          base = static_cast<char*>(op == kP ? p_.get() : dp_.get());
          offset = bh * score_stride;
        }
        if (base != nullptr) host[op * count + bh] = base + 2 * offset;  // 2-byte elements
      }
    }
    ptrs_.allocate(host.size() * sizeof(void*));
    SIGATTN_BENCH_CHECK_CUDA(
        cudaMemcpyAsync(ptrs_.get(), host.data(), ptrs_.bytes(), cudaMemcpyHostToDevice, stream_));
    SIGATTN_BENCH_CHECK_CUDA(cudaStreamSynchronize(stream_));
  }

  bool forward_fits() const { return forward_fits_; }
  bool backward_fits() const { return backward_fits_; }

  /// Frees the score buffers and pointer arrays.
  void release() {
    p_.reset();
    dp_.reset();
    ptrs_.reset();
    forward_fits_ = false;
    backward_fits_ = false;
  }

  /// O = mask(sigmoid(scale Q K^T - log kv_len)) V; also leaves P for backward().
  void forward(int32_t const* lens, bool causal, float scale) {
    int32_t s = max_len_;
    int32_t hd = num_heads_ * head_dim_;
    // Row-major scores[i][j] = <q_i, k_j> is column-major (S_kv x S_q) K Q^T.
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, s, s, head_dim_, 1.0f, kK, hd, kQ, hd, kP, s);
    int64_t chunks = score_chunks();
    if (dtype_ == CUDA_R_16BF) {
      baseline_sigmoid_mask_kernel<<<blocks(chunks), 256, 0, stream_>>>(
          p_.as<__nv_bfloat16>(), chunks, s, num_heads_, lens, scale, causal);
    } else {
      baseline_sigmoid_mask_kernel<<<blocks(chunks), 256, 0, stream_>>>(
          p_.as<__half>(), chunks, s, num_heads_, lens, scale, causal);
    }
    SIGATTN_BENCH_CHECK_CUDA(cudaGetLastError());
    // O^T (D x S_q) = V^T P^T.
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, head_dim_, s, s, 1.0f, kV, hd, kP, s, kO, hd);
  }

  /// dQ, dK, dV from dO and the P of the last forward() (which must have run on these inputs).
  void backward(float scale) {
    int32_t s = max_len_;
    int32_t hd = num_heads_ * head_dim_;
    // dV^T (D x S_kv) = dO^T P.
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, head_dim_, s, s, 1.0f, kDO, hd, kP, s, kDV, hd);
    // Row-major dP[i][j] = <do_i, v_j>: column-major V dO^T.
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, s, s, head_dim_, 1.0f, kV, hd, kDO, hd, kDP, s);
    int64_t chunks = score_chunks();
    if (dtype_ == CUDA_R_16BF) {
      baseline_sigmoid_grad_kernel<<<blocks(chunks), 256, 0, stream_>>>(
          p_.as<__nv_bfloat16>(), dp_.as<__nv_bfloat16>(), chunks);
    } else {
      baseline_sigmoid_grad_kernel<<<blocks(chunks), 256, 0, stream_>>>(p_.as<__half>(),
                                                                        dp_.as<__half>(), chunks);
    }
    SIGATTN_BENCH_CHECK_CUDA(cudaGetLastError());
    // dQ^T (D x S_q) = scale K^T dS^T.
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, head_dim_, s, s, scale, kK, hd, kDP, s, kDQ, hd);
    // dK^T (D x S_kv) = scale Q^T dS.
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, head_dim_, s, s, scale, kQ, hd, kDP, s, kDK, hd);
  }

 private:
  // Operands, in the order of the pointer arrays; the first eight are the [B, S, H, D] tensors.
  enum Operand { kQ, kK, kV, kO, kDO, kDQ, kDK, kDV, kP, kDP, kNumOperands };
  static constexpr int kNumTensorOperands = kP;

  void* const* ptrs(Operand op) const {
    return ptrs_.as<void*>() + static_cast<int64_t>(op) * batch_ * num_heads_;
  }

  int64_t score_chunks() const {
    return int64_t{batch_} * num_heads_ * max_len_ * max_len_ / kBaselineVec;
  }

  unsigned blocks(int64_t chunks) const {
    return static_cast<unsigned>(std::min<int64_t>((chunks + 255) / 256, int64_t{sm_count_} * 8));
  }

  void gemm(cublasOperation_t trans_a, cublasOperation_t trans_b, int m, int n, int k, float alpha,
            Operand a, int lda, Operand b, int ldb, Operand c, int ldc) {
    float beta = 0.0f;
    SIGATTN_BENCH_CHECK_CUBLAS(cublasGemmBatchedEx(
        handle_, trans_a, trans_b, m, n, k, &alpha, const_cast<void const* const*>(ptrs(a)), dtype_,
        lda, const_cast<void const* const*>(ptrs(b)), dtype_, ldb, &beta, ptrs(c), dtype_, ldc,
        batch_ * num_heads_, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }

  cublasHandle_t handle_;
  cudaStream_t stream_;
  int sm_count_;
  cudaDataType dtype_ = CUDA_R_16BF;
  int32_t batch_ = 0;
  int32_t max_len_ = 0;
  int32_t num_heads_ = 0;
  int32_t head_dim_ = 0;
  bool forward_fits_ = false;
  bool backward_fits_ = false;
  DeviceBuffer p_;
  DeviceBuffer dp_;
  DeviceBuffer ptrs_;
};

}  // namespace sigattn_bench

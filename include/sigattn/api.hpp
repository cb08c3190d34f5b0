// sigattn: fused sigmoid attention for padded batches of variable-length sequences.
//
// Host-only declarations: parameter structs, status codes and the entry points. Plain C++17; no
// device code. Two ways to use the library, one per program:
//  - header-only: every translation unit includes <sigattn/sigattn.cuh> (inline definitions);
//  - compiled once: translation units include this header, and exactly one .cu file defines
//    SIGATTN_DEFINE_API before including <sigattn/sigattn.cuh>, emitting the definitions.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

// The version macros: CMake generates sigattn/version.hpp into the build and install trees; a copy
// of include/ used without CMake has none and takes the checked-in default (the same numbers).
#if __has_include("sigattn/version.hpp")
#include "sigattn/version.hpp"
#else
#include "sigattn/detail/version_default.hpp"
#endif

namespace sigattn {

/// Element type of Q, K, V, O and of the gradients. Accumulation is always fp32.
enum class DType : int32_t {
  kBF16 = 0,  ///< bfloat16 (`__nv_bfloat16`)
  kFP16 = 1,  ///< IEEE half (`__half`)
};

/// How the additive bias inside the sigmoid is chosen for sequence b.
enum class BiasMode : int32_t {
  kNegLogKvLen = 0,  ///< bias_b = -log(kv_len_b); the recommended default (and the zero-init value)
  kScalar = 1,       ///< bias_b = FwdParams::bias for every sequence
  kPerBatch = 2,     ///< bias_b = FwdParams::bias_per_batch[b] (fp32 device array of length batch)
};

/// Causal masking. Top-left keeps keys j <= i; bottom-right keeps j <= i + kv_len - q_len
/// (cross-attention and decoding, where the queries are the last q_len positions).
enum class Causal : int32_t {
  kNone = 0,
  kTopLeft = 1,
  kBottomRight = 2,
};

/// The sigmoid evaluated on fp32 scores.
enum class SigmoidMode : int32_t {
  /// Relative error <= 5e-4 wherever the exact value is a normal float (0 below x = -87.3): per
  /// score one ex2 and a reciprocal, on the FMA pipe or on MUFU (docs/design.md, Numerics).
  kAccurate = 0,
  /// 0.5 * tanh.approx(x / 2) + 0.5: faster, about 1% off near x = -10 and 0 below x = -12.
  kFast = 1,
};

/// Which kernel family runs. kAuto picks the fastest one registered for the running device (the
/// Hopper path on compute capability 9.0, the portable path elsewhere); the others force a path,
/// for comparisons and benchmarks, and return kErrorArchMismatch where it cannot run on the
/// device (kErrorNotSupported for kHopper in a build without SIGATTN_ENABLE_SM90A, which has no
/// Hopper rows).
enum class Path : int32_t {
  kAuto = 0,
  kPortable = 1,  ///< sm_80 and newer: mma.sync, ldmatrix, cp.async
  kHopper = 2,    ///< sm_90a: wgmma, TMA, warp specialisation
};

/// Outcome of a call. Every invalid call returns an error status and launches nothing.
enum class Status : int32_t {
  kSuccess = 0,
  kErrorInvalidArgument = 1,    ///< null pointer, negative size, Hq % Hkv != 0, bad stride, ...
  kErrorNotSupported = 2,       ///< no registered config for this head dim / dtype / path
  kErrorArchMismatch = 3,       ///< no matching config can run on the device (docs/api.md)
  kErrorMisalignedPointer = 4,  ///< a base pointer or stride not 16-byte aligned (lengths: 4)
  kErrorCuda = 5,               ///< a CUDA runtime call or launch failed; see Result::cuda
};

/// A status plus the CUDA error behind it: always set with kErrorCuda, and sometimes with
/// kErrorArchMismatch (the runtime's reason for refusing a kernel image); cudaSuccess otherwise.
struct Result {
  Status status = Status::kSuccess;
  cudaError_t cuda = cudaSuccess;
  /// True on success.
  constexpr explicit operator bool() const { return status == Status::kSuccess; }
};

/// Element strides of one [batch, token, head, dim] tensor; the dim stride is always 1.
struct Strides {
  int64_t batch = 0;  ///< elements between consecutive batch entries
  int64_t token = 0;  ///< elements between consecutive tokens of one sequence
  int64_t head = 0;   ///< elements between consecutive heads of one token
};

/// Parameters of the forward pass: O = sigmoid(scale * Q K^T + bias_b) V over the real keys.
///
/// Shapes: Q and O are [batch, max_q_len, num_heads, head_dim], K and V are
/// [batch, max_kv_len, num_kv_heads, head_dim], addressed through the element strides below (any
/// batch/token/head strides, for example [B,S,H,D] or [B,H,S,D]; the head-dim stride is 1).
/// Zero-initialise (`FwdParams p{};`) and set what you use: the zero values of the enums are the
/// defaults (bias -log(kv_len), non-causal, accurate sigmoid).
///
/// Padding is trailing: tokens [0, len) of each sequence are real. Whatever is stored in padded
/// rows of Q, K, V (NaN included) never reaches an output. Rows i >= q_len of O are written as
/// exact zeros. Future additions (packed layouts, accumulate-into-O with a key offset) will be new
/// fields whose zero value keeps today's behaviour.
struct FwdParams {
  const void* q = nullptr;  ///< device pointer, [B, Sq, Hq, D] through q_stride
  const void* k = nullptr;  ///< device pointer, [B, Skv, Hkv, D] through k_stride
  const void* v = nullptr;  ///< device pointer, [B, Skv, Hkv, D] through v_stride
  void* o = nullptr;        ///< device pointer, [B, Sq, Hq, D] through o_stride; fully written

  DType dtype = DType::kBF16;
  int32_t batch = 0;         ///< B
  int32_t num_heads = 0;     ///< Hq
  int32_t num_kv_heads = 0;  ///< Hkv; Hq % Hkv == 0 (query head h reads kv head h / (Hq / Hkv))
  int32_t head_dim = 0;      ///< D (64 or 128 today)
  int32_t max_q_len = 0;     ///< Sq, the padded query length
  int32_t max_kv_len = 0;    ///< Skv, the padded key/value length

  /// int32[batch] device arrays of real lengths, or null for "every sequence is full". The
  /// kernels clamp each value to [0, max_len], so a bad length can never cause an out-of-bounds
  /// access (it can only give a wrong answer for that sequence). At D = 64, with q_lens null a
  /// non-causal Hopper forward may run a shape whose query tiles pad max_q_len to fewer rows
  /// (docs/design.md, Dispatch), so null and an array of full lengths can differ in the last bits
  /// of O (at D = 128 that shape runs either way).
  const int32_t* q_lens = nullptr;
  const int32_t* kv_lens = nullptr;

  Strides q_stride;  ///< strides of Q, in elements; multiples of 8 elements (16 bytes)
  Strides k_stride;  ///< strides of K
  Strides v_stride;  ///< strides of V
  Strides o_stride;  ///< strides of O

  /// Multiplies Q K^T. 0 (the zero-init value) means 1/sqrt(head_dim).
  float scale = 0.0f;
  BiasMode bias_mode = BiasMode::kNegLogKvLen;
  float bias = 0.0f;                         ///< used with BiasMode::kScalar
  const float* bias_per_batch = nullptr;     ///< fp32[batch] device array, BiasMode::kPerBatch
  Causal causal = Causal::kNone;
  SigmoidMode sigmoid = SigmoidMode::kAccurate;
  Path path = Path::kAuto;
};

/// Parameters of the backward pass. `fwd` describes the forward exactly as it was run (its `o`
/// is not read: sigmoid attention needs neither O nor a log-sum-exp); the gradients use their own
/// strides. Rows of dQ at padded queries and of dK, dV at padded keys are written as exact zeros;
/// dO at padded query rows is ignored. With GQA, dK and dV sum over the query heads of a group.
struct BwdParams {
  FwdParams fwd;
  const void* dout = nullptr;  ///< dO, [B, Sq, Hq, D] through dout_stride
  void* dq = nullptr;          ///< dQ, [B, Sq, Hq, D] through dq_stride; fully written
  void* dk = nullptr;          ///< dK, [B, Skv, Hkv, D] through dk_stride; fully written
  void* dv = nullptr;          ///< dV, [B, Skv, Hkv, D] through dv_stride; fully written
  Strides dout_stride;
  Strides dq_stride;
  Strides dk_stride;
  Strides dv_stride;
  /// Bitwise-identical gradients run after run (no floating-point atomics), at a cost in speed
  /// documented in docs/performance.md.
  bool deterministic = false;
};

/// Human-readable name of a status ("success", "invalid argument", ...). Never null.
char const* to_string(Status status);
/// Human-readable description of a result, including the CUDA error name when there is one.
char const* to_string(Result result);

/// Would forward() accept these parameters on device `device_id`? Checks everything forward()
/// checks (pointers, sizes, strides, alignment, a registered config for the device's
/// architecture) and launches nothing. Does not read device memory. For a device other than the
/// current one the kernel images cannot be inspected; the backward's overload does not see the
/// workspace.
Result can_implement(FwdParams const& params, int device_id);
/// As above, for backward().
Result can_implement(BwdParams const& params, int device_id);

/// Bytes of device workspace forward() can use for these parameters: on the Hopper path, a
/// non-causal call cuts the tiles of its last one or two waves along the keys across all SMs and
/// adds their fp32 partial sums (docs/design.md), which needs a flag and a partial-sum slot per
/// SM (at D = 128 about 14.2 MB, sized for its 192-row tiles; at D = 64 about 9.4 MB, sized
/// for its 256-row tiles; 0 for causal calls, path kPortable, or a build without the Hopper
/// rows). It depends only on the head dim, dtype, causal mask and path, not on the lengths,
/// max_q_len or the batch, so one workspace serves every such call. The caller allocates it.
size_t workspace_bytes(FwdParams const& params);
/// Bytes of device workspace backward() needs: the fp32 dQ accumulator (B * Sq * Hq * D * 4) in
/// the default mode, 0 in the deterministic mode. The caller allocates it; it need not be zeroed
/// (backward() clears the rows it reads, on the stream); its contents afterwards are unspecified.
size_t workspace_bytes(BwdParams const& params);

/// Runs the forward on `stream` (asynchronous; nothing is synchronised, nothing allocated). Uses
/// the current CUDA device. A problem with no output (batch, num_heads or max_q_len of 0) is a
/// successful no-op; max_kv_len == 0 is not: O's real rows are written as zeros. On any invalid
/// input it returns the error and launches nothing. Preconditions it cannot check: the memory
/// behind each pointer covers its shape and strides, output rows do not overlap one another, and
/// outputs do not alias inputs.
Result forward(FwdParams const& params, cudaStream_t stream);

/// As above, with a workspace: null (the call then runs as forward(params, stream)), or
/// workspace_bytes(params) bytes of device memory, 16-byte aligned (kErrorMisalignedPointer
/// otherwise), that no other work uses while this call's kernels run. It need not be zeroed: the
/// call zeroes the flags it uses, on the stream, by a one-block kernel before its own (only when a
/// cut may pay; the forward is launched as that kernel's programmatic dependent and starts at
/// once). Results are the same either way up to the order of fp32 additions (the split
/// sums a tile's key ranges separately), and bitwise reproducible run to run on the same device
/// (the cut depends on the shape, the lengths, whether q_lens is null and the SM count only).
Result forward(FwdParams const& params, void* workspace, cudaStream_t stream);

/// Runs the backward on `stream`. `workspace` must hold workspace_bytes(params) bytes of device
/// memory (it may be null when that is 0), 16-byte aligned, and must not be used by other work
/// while this call's kernels run.
Result backward(BwdParams const& params, void* workspace, cudaStream_t stream);

}  // namespace sigattn

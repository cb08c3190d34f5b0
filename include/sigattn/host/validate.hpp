// Host-side validation of FwdParams / BwdParams: cheap, complete, and free of CUDA calls, so
// can_implement(), forward() and backward() can reject a call before touching the device.
//
// Checks, in this order; the first failing one decides the status:
//   1. negative batch, num_heads, num_kv_heads, head_dim, max_q_len or max_kv_len: invalid argument
//   2. num_kv_heads <= 0, or num_heads % num_kv_heads != 0: invalid argument
//   3. head_dim not 64 or 128: not supported
//   4. dtype not bf16 or fp16 (any other value, in range or not): not supported
//   5. max_q_len or max_kv_len above kMaxSeqLen (2^30), or batch * max length * num_heads *
//      head_dim above kMaxElements (2^60): not supported (the kernels' tile counts are int32 and
//      the dQ workspace's byte count must not wrap)
//   6. bias_mode, causal, sigmoid or path outside its enum: invalid argument
//   7. scale not finite, or bias not finite with BiasMode::kScalar, or either one becoming
//      infinite once the kernels multiply it by log2(e) (|x| above about 2.4e38): invalid argument
//   -- a problem with nothing to write (is_empty) is valid from here on: steps 8-11 look at
//      memory that such a call never touches --
//   8. a null tensor that has at least one element, or a null bias_per_batch with kPerBatch:
//      invalid argument
//   9. a tensor base pointer not 16-byte aligned, or q_lens, kv_lens, bias_per_batch not 4-byte
//      aligned: misaligned pointer
//  10. a batch/token/head stride not a multiple of 16 bytes (8 elements): misaligned pointer
//  11. a negative stride: invalid argument
// Tensors with no elements (K and V when max_kv_len == 0, for example) are not checked in 8-11: a
// null pointer is what frameworks hand over for empty tensors, and nothing is read through them.
// num_kv_heads must be positive even in an empty problem (step 2: it divides num_heads).
//
// Not checked (preconditions the caller must meet): strides that make distinct (token, head)
// rows overlap, outputs that alias inputs, device memory that is too small, and length or bias
// arrays holding garbage (the kernels clamp lengths to [0, max_len]). The innermost (head-dim)
// stride is 1 by construction: Strides has no field for it. The device architecture is checked
// by the dispatcher, after these checks.
#pragma once

#include <cmath>
#include <cstdint>

#include "sigattn/api.hpp"

namespace sigattn {
namespace detail {

/// True when a forward call has no output element to write: no batch entries, no query heads or
/// no query rows. max_kv_len == 0 is NOT empty: O must still be written as zeros.
inline bool is_empty(FwdParams const& p) {
  return p.batch <= 0 || p.num_heads <= 0 || p.max_q_len <= 0;
}

/// True when a backward call has no output element to write: dQ is empty (as for the forward)
/// and dK, dV are empty (no kv rows). A call with queries but no keys must still zero dQ, and one
/// with keys but no queries (max_q_len == 0 or num_heads == 0) must still zero dK and dV.
inline bool is_empty(BwdParams const& p) {
  bool const no_kv = p.fwd.batch <= 0 || p.fwd.num_kv_heads <= 0 || p.fwd.max_kv_len <= 0;
  return is_empty(p.fwd) && no_kv;
}

/// The scale actually applied to Q K^T: FwdParams::scale, or 1/sqrt(head_dim) when it is 0.
inline float effective_scale(FwdParams const& p) {
  if (p.scale != 0.0f) return p.scale;
  return p.head_dim > 0 ? 1.0f / std::sqrt(static_cast<float>(p.head_dim)) : 1.0f;
}

namespace validate_impl {

constexpr Result fail(Status s) { return Result{s, cudaSuccess}; }

/// Bytes of one element of `dtype` (0 for an unknown value).
inline int64_t element_bytes(DType dtype) {
  return (dtype == DType::kBF16 || dtype == DType::kFP16) ? 2 : 0;
}

inline bool aligned(void const* ptr, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(ptr) % bytes == 0;
}

inline bool strides_aligned(Strides const& s, int64_t elems) {
  return s.batch % elems == 0 && s.token % elems == 0 && s.head % elems == 0;
}

inline bool strides_nonnegative(Strides const& s) {
  return s.batch >= 0 && s.token >= 0 && s.head >= 0;
}

/// One tensor operand of a call; `used` is false when it has no elements.
struct Operand {
  void const* ptr;
  Strides stride;
  bool used;
};

/// The longest sequence (max_q_len, max_kv_len) and the most elements of one tensor a call may
/// describe (step 5 of the list at the top of this file).
constexpr int kMaxSeqLen = 1 << 30;
constexpr double kMaxElements = 1152921504606846976.0;  // 2^60
/// The largest factor the kernels apply to scale and bias (SigmoidAccurate::kPrescale).
constexpr float kMaxPrescale = 1.4426950408889634f;

/// Steps 1-7 (everything but memory) of the list at the top of this file.
inline Result check_shape_and_scalars(FwdParams const& p) {
  if (p.batch < 0 || p.num_heads < 0 || p.num_kv_heads < 0 || p.head_dim < 0 || p.max_q_len < 0 ||
      p.max_kv_len < 0)
    return fail(Status::kErrorInvalidArgument);
  if (p.num_kv_heads <= 0 || p.num_heads % p.num_kv_heads != 0)
    return fail(Status::kErrorInvalidArgument);
  if (p.head_dim != 64 && p.head_dim != 128) return fail(Status::kErrorNotSupported);
  if (element_bytes(p.dtype) == 0) return fail(Status::kErrorNotSupported);
  if (p.max_q_len > kMaxSeqLen || p.max_kv_len > kMaxSeqLen)
    return fail(Status::kErrorNotSupported);
  // (In double: the int64 product of four int32 values can overflow.)
  double const rows = p.max_q_len > p.max_kv_len ? p.max_q_len : p.max_kv_len;
  if (static_cast<double>(p.batch) * rows * p.num_heads * p.head_dim > kMaxElements)
    return fail(Status::kErrorNotSupported);
  // The largest enumerator of each enum in api.hpp; update these when one gains a value.
  auto const bias_mode = static_cast<int32_t>(p.bias_mode);
  auto const causal = static_cast<int32_t>(p.causal);
  auto const sigmoid = static_cast<int32_t>(p.sigmoid);
  auto const path = static_cast<int32_t>(p.path);
  if (bias_mode < 0 || bias_mode > 2 || causal < 0 || causal > 2 || sigmoid < 0 || sigmoid > 1 ||
      path < 0 || path > 2)
    return fail(Status::kErrorInvalidArgument);
  if (!std::isfinite(p.scale * kMaxPrescale)) return fail(Status::kErrorInvalidArgument);
  if (p.bias_mode == BiasMode::kScalar && !std::isfinite(p.bias * kMaxPrescale))
    return fail(Status::kErrorInvalidArgument);
  return {};
}

/// Steps 8-11 for the operands of one call (the call is known not to be empty).
template <int N>
Result check_memory(FwdParams const& p, Operand const (&ops)[N]) {
  for (Operand const& op : ops)
    if (op.used && op.ptr == nullptr) return fail(Status::kErrorInvalidArgument);
  if (p.bias_mode == BiasMode::kPerBatch && p.bias_per_batch == nullptr)
    return fail(Status::kErrorInvalidArgument);
  for (Operand const& op : ops)
    if (op.used && !aligned(op.ptr, 16)) return fail(Status::kErrorMisalignedPointer);
  if (!aligned(p.q_lens, 4) || !aligned(p.kv_lens, 4) || !aligned(p.bias_per_batch, 4))
    return fail(Status::kErrorMisalignedPointer);
  int64_t const elems_per_16_bytes = 16 / element_bytes(p.dtype);
  for (Operand const& op : ops)
    if (op.used && !strides_aligned(op.stride, elems_per_16_bytes))
      return fail(Status::kErrorMisalignedPointer);
  for (Operand const& op : ops)
    if (op.used && !strides_nonnegative(op.stride)) return fail(Status::kErrorInvalidArgument);
  return {};
}

}  // namespace validate_impl

/// Every host check of a forward call (see the list at the top of this file). Success with
/// is_empty(p) true means "valid, nothing to do".
inline Result validate(FwdParams const& p) {
  using namespace validate_impl;
  if (Result r = check_shape_and_scalars(p); !r) return r;
  if (is_empty(p)) return {};
  bool const has_kv = p.max_kv_len > 0;  // batch, heads and kv heads are positive here
  Operand const ops[] = {{p.q, p.q_stride, true},
                         {p.k, p.k_stride, has_kv},
                         {p.v, p.v_stride, has_kv},
                         {p.o, p.o_stride, true}};
  return check_memory(p, ops);
}

/// Every host check of a backward call: those of the forward described by `p.fwd` (whose `o` is
/// not read, so it may be null), plus dout, dq, dk and dv.
inline Result validate(BwdParams const& p) {
  using namespace validate_impl;
  FwdParams const& f = p.fwd;
  if (Result r = check_shape_and_scalars(f); !r) return r;
  if (is_empty(p)) return {};
  bool const has_q = f.num_heads > 0 && f.max_q_len > 0;  // batch > 0 here
  bool const has_kv = f.max_kv_len > 0;
  Operand const ops[] = {{f.q, f.q_stride, has_q},   {f.k, f.k_stride, has_kv},
                         {f.v, f.v_stride, has_kv},  {p.dout, p.dout_stride, has_q},
                         {p.dq, p.dq_stride, has_q}, {p.dk, p.dk_stride, has_kv},
                         {p.dv, p.dv_stride, has_kv}};
  return check_memory(f, ops);
}

}  // namespace detail
}  // namespace sigattn

// PyTorch operators on top of sigattn's host API: sigattn::fwd and sigattn::bwd.
//
// Tensors are logically [B, S, H, D] (Q, O, dO, dQ: [B, Sq, Hq, D]; K, V, dK, dV:
// [B, Skv, Hkv, D]); any batch, token and head strides reach the library as they are (a
// [B, H, S, D] tensor seen through .transpose(1, 2) is not copied). The head dim must have stride
// 1: an input whose head-dim stride is not 1 is copied (.contiguous()), and so is a broadcast
// input (stride 0 over more than one element); no other layout is.
// Strides that are not multiples of 16 bytes, and base pointers that are not 16-byte aligned, are
// passed on unchanged and the library rejects them ("pointer or stride not aligned to 16 bytes").
// Outputs (O, dQ, dK, dV) are new contiguous [B, S, H, D] tensors; the fake (meta)
// implementations in sigattn_torch/_ops.py promise exactly that.
//
// Errors: checks that only the binding can make (rank, devices, matching shapes, length arrays)
// and every non-success sigattn::Result raise a c10::Error whose text starts with
// "sigattn: <status text>", the library's to_string(), so Python sees the library's words.
//
// This file includes only <sigattn/api.hpp>; the definitions and the kernels are compiled once,
// in sigattn_kernels.cu.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include "sigattn/api.hpp"

namespace sigattn_torch {
namespace {

using at::Tensor;

// Raises "sigattn: <status text> (<what>)": the status text is the library's.
[[noreturn]] void fail(sigattn::Status status, std::string const& what) {
  TORCH_CHECK(false, "sigattn: ", sigattn::to_string(status), " (", what, ")");
}

void check_result(sigattn::Result result, char const* op) {
  if (!result) TORCH_CHECK(false, "sigattn: ", sigattn::to_string(result), " (in ", op, ")");
}

// "[1, 16, 2, 64]". Built with std::to_string rather than c10::str(t.sizes()): on the H200 test
// machine (extension built by g++ from /opt/gcc) c10::str of a shape segfaulted inside the copy
// of std::ostream::_M_insert<long> that ended up in this extension (gdb backtrace), most likely a
// mismatch between that compiler's libstdc++ and the one loaded with torch. Strings and C strings
// passed to TORCH_CHECK were unaffected.
std::string shape_str(Tensor const& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (d > 0) s += ", ";
    s += std::to_string(t.size(d));
  }
  return s + "]";
}

// Torch dtype -> library dtype. Any other dtype becomes an out-of-range DType value, which the
// library's validation answers with kErrorNotSupported ("configuration not supported"): the
// error comes from the library, as for an unsupported head dim.
sigattn::DType to_dtype(at::ScalarType t) {
  if (t == at::kBFloat16) return sigattn::DType::kBF16;
  if (t == at::kHalf) return sigattn::DType::kFP16;
  return static_cast<sigattn::DType>(-1);
}

// The layouts the binding copies (.contiguous()) rather than passes on: a head dim whose stride
// is not 1, and a broadcast dimension (stride 0 over more than one element, as expand() makes),
// which the library's TMA path cannot address. Every other layout is passed as it is.
Tensor library_layout(Tensor const& t) {
  if (t.dim() != 4) return t;
  bool copy = t.size(3) > 1 && t.stride(3) != 1;
  for (int d = 0; d < 3; ++d) copy = copy || (t.size(d) > 1 && t.stride(d) == 0);
  return copy ? t.contiguous() : t;
}

// {batch, token, head} strides of a 4-D tensor in elements. A dimension of extent 1 is never
// stepped over, so its stride is reported as 0 (PyTorch leaves arbitrary values there, for
// example after unsqueeze or slicing, which would otherwise fail the alignment check for nothing).
sigattn::Strides strides_of(Tensor const& t) {
  auto s = [&](int d) -> int64_t { return t.size(d) == 1 ? 0 : t.stride(d); };
  return sigattn::Strides{s(0), s(1), s(2)};
}

// On a CUDA device, and on q's.
void check_device(Tensor const& t, char const* name, Tensor const& q) {
  if (!t.is_cuda())
    fail(sigattn::Status::kErrorInvalidArgument,
         std::string(name) + " is on " + t.device().str() + ", expected a CUDA device");
  if (t.device() != q.device())
    fail(sigattn::Status::kErrorInvalidArgument,
         std::string(name) + " is on " + t.device().str() + " but q is on " + q.device().str());
}

void check_tensor(Tensor const& t, char const* name, Tensor const& q) {
  if (t.dim() != 4)
    fail(sigattn::Status::kErrorInvalidArgument,
         std::string(name) + " must be 4-D [B, S, H, D], got " + std::to_string(t.dim()) + "-D");
  check_device(t, name, q);
  if (t.scalar_type() != q.scalar_type())
    fail(sigattn::Status::kErrorInvalidArgument,
         std::string(name) + " is " + std::string(c10::toString(t.scalar_type())) + " but q is " +
             std::string(c10::toString(q.scalar_type())));
}

void check_same_shape(Tensor const& a, char const* a_name, Tensor const& b, char const* b_name) {
  if (a.sizes() != b.sizes())
    fail(sigattn::Status::kErrorInvalidArgument, std::string(a_name) + " has shape " +
                                                     shape_str(a) + " but " + b_name +
                                                     " has shape " + shape_str(b));
}

// An optional int32[B] / float32[B] array on q's device, contiguous.
void check_array(std::optional<Tensor> const& t, char const* name, at::ScalarType dtype,
                 int64_t batch, Tensor const& q) {
  if (!t.has_value()) return;
  Tensor const& a = *t;
  check_device(a, name, q);
  if (a.scalar_type() != dtype)
    fail(sigattn::Status::kErrorInvalidArgument, std::string(name) + " must be " +
                                                     std::string(c10::toString(dtype)) + ", got " +
                                                     std::string(c10::toString(a.scalar_type())));
  if (a.dim() != 1 || a.size(0) != batch || (batch > 1 && a.stride(0) != 1))
    fail(sigattn::Status::kErrorInvalidArgument,
         std::string(name) + " must be a contiguous 1-D array of " + std::to_string(batch) +
             " elements, got shape " + shape_str(a));
}

int32_t to_int32(int64_t v, char const* name) {
  if (v > INT32_MAX)
    fail(sigattn::Status::kErrorInvalidArgument,
         std::string(name) + " = " + std::to_string(v) + " does not fit in int32");
  return static_cast<int32_t>(v);
}

// Fills FwdParams from q, k, v (already checked and with unit head-dim stride); `o` may be null
// (the backward does not read it).
sigattn::FwdParams make_fwd_params(Tensor const& q, Tensor const& k, Tensor const& v,
                                   std::optional<Tensor> const& q_lens,
                                   std::optional<Tensor> const& kv_lens, int64_t causal,
                                   double scale, int64_t bias_mode, double bias,
                                   std::optional<Tensor> const& bias_per_batch) {
  check_tensor(k, "k", q);
  check_tensor(v, "v", q);
  check_same_shape(k, "k", v, "v");
  if (k.size(0) != q.size(0) || k.size(3) != q.size(3))
    fail(sigattn::Status::kErrorInvalidArgument,
         "q has shape " + shape_str(q) + " but k and v have shape " + shape_str(k) +
             " (batch and head dim must match)");
  int64_t const batch = q.size(0);
  check_array(q_lens, "q_lens", at::kInt, batch, q);
  check_array(kv_lens, "kv_lens", at::kInt, batch, q);
  check_array(bias_per_batch, "bias_per_batch", at::kFloat, batch, q);

  sigattn::FwdParams p{};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.dtype = to_dtype(q.scalar_type());
  p.batch = to_int32(batch, "batch");
  p.max_q_len = to_int32(q.size(1), "q length");
  p.num_heads = to_int32(q.size(2), "q heads");
  p.head_dim = to_int32(q.size(3), "head dim");
  p.max_kv_len = to_int32(k.size(1), "kv length");
  p.num_kv_heads = to_int32(k.size(2), "kv heads");
  p.q_lens = q_lens ? q_lens->data_ptr<int32_t>() : nullptr;
  p.kv_lens = kv_lens ? kv_lens->data_ptr<int32_t>() : nullptr;
  p.q_stride = strides_of(q);
  p.k_stride = strides_of(k);
  p.v_stride = strides_of(v);
  p.scale = static_cast<float>(scale);
  // Out-of-range enum values are passed on: the library answers "invalid argument".
  p.causal = static_cast<sigattn::Causal>(causal);
  p.bias_mode = static_cast<sigattn::BiasMode>(bias_mode);
  p.bias = static_cast<float>(bias);
  p.bias_per_batch = bias_per_batch ? bias_per_batch->data_ptr<float>() : nullptr;
  return p;
}

Tensor fwd_cuda(Tensor const& q_in, Tensor const& k_in, Tensor const& v_in,
                std::optional<Tensor> const& q_lens, std::optional<Tensor> const& kv_lens,
                int64_t causal, double scale, int64_t bias_mode, double bias,
                std::optional<Tensor> const& bias_per_batch) {
  check_tensor(q_in, "q", q_in);
  c10::cuda::CUDAGuard guard(q_in.device());
  Tensor q = library_layout(q_in);
  Tensor k = library_layout(k_in);
  Tensor v = library_layout(v_in);
  sigattn::FwdParams p =
      make_fwd_params(q, k, v, q_lens, kv_lens, causal, scale, bias_mode, bias, bias_per_batch);

  Tensor o = at::empty(q.sizes(), q.options().memory_format(at::MemoryFormat::Contiguous));
  p.o = o.data_ptr();
  p.o_stride = strides_of(o);
  // The split tail's workspace (Hopper, non-causal), from the caching allocator.
  size_t const bytes = sigattn::workspace_bytes(p);
  Tensor workspace;
  if (bytes > 0) workspace = at::empty({static_cast<int64_t>(bytes)}, q.options().dtype(at::kByte));
  void* ws = bytes > 0 ? workspace.data_ptr() : nullptr;
  check_result(sigattn::forward(p, ws, at::cuda::getCurrentCUDAStream().stream()), "sigattn::fwd");
  return o;
}

std::tuple<Tensor, Tensor, Tensor> bwd_cuda(Tensor const& dout_in, Tensor const& q_in,
                                            Tensor const& k_in, Tensor const& v_in,
                                            std::optional<Tensor> const& q_lens,
                                            std::optional<Tensor> const& kv_lens, int64_t causal,
                                            double scale, int64_t bias_mode, double bias,
                                            std::optional<Tensor> const& bias_per_batch,
                                            bool deterministic) {
  check_tensor(q_in, "q", q_in);
  check_tensor(dout_in, "dout", q_in);
  check_same_shape(dout_in, "dout", q_in, "q");
  c10::cuda::CUDAGuard guard(q_in.device());
  Tensor dout = library_layout(dout_in);
  Tensor q = library_layout(q_in);
  Tensor k = library_layout(k_in);
  Tensor v = library_layout(v_in);

  sigattn::BwdParams bp{};
  bp.fwd =
      make_fwd_params(q, k, v, q_lens, kv_lens, causal, scale, bias_mode, bias, bias_per_batch);
  auto contiguous = q.options().memory_format(at::MemoryFormat::Contiguous);
  Tensor dq = at::empty(q.sizes(), contiguous);
  Tensor dk = at::empty(k.sizes(), contiguous);
  Tensor dv = at::empty(v.sizes(), contiguous);
  bp.dout = dout.data_ptr();
  bp.dq = dq.data_ptr();
  bp.dk = dk.data_ptr();
  bp.dv = dv.data_ptr();
  bp.dout_stride = strides_of(dout);
  bp.dq_stride = strides_of(dq);
  bp.dk_stride = strides_of(dk);
  bp.dv_stride = strides_of(dv);
  bp.deterministic = deterministic;

  // Workspace from the caching allocator (its blocks are at least 512-byte aligned). It is only
  // used by this call's kernels on the current stream, so it can go back to the allocator when
  // this function returns: the allocator reuses it in stream order.
  size_t const bytes = sigattn::workspace_bytes(bp);
  Tensor workspace;
  if (bytes > 0) workspace = at::empty({static_cast<int64_t>(bytes)}, q.options().dtype(at::kByte));
  void* ws = bytes > 0 ? workspace.data_ptr() : nullptr;
  check_result(sigattn::backward(bp, ws, at::cuda::getCurrentCUDAStream().stream()),
               "sigattn::bwd");
  return {dq, dk, dv};
}

Tensor fwd_cpu(Tensor const& q, Tensor const&, Tensor const&, std::optional<Tensor> const&,
               std::optional<Tensor> const&, int64_t, double, int64_t, double,
               std::optional<Tensor> const&) {
  fail(sigattn::Status::kErrorInvalidArgument,
       "q is on " + q.device().str() + ": sigattn runs on CUDA devices only");
}

std::tuple<Tensor, Tensor, Tensor> bwd_cpu(Tensor const&, Tensor const& q, Tensor const&,
                                           Tensor const&, std::optional<Tensor> const&,
                                           std::optional<Tensor> const&, int64_t, double, int64_t,
                                           double, std::optional<Tensor> const&, bool) {
  fail(sigattn::Status::kErrorInvalidArgument,
       "q is on " + q.device().str() + ": sigattn runs on CUDA devices only");
}

}  // namespace
}  // namespace sigattn_torch

// The schemas. `causal`: 0 none, 1 top-left, 2 bottom-right (sigattn::Causal). `bias_mode`:
// 0 -log(kv_len), 1 the scalar `bias`, 2 `bias_per_batch` (sigattn::BiasMode). `scale` is the
// factor on Q K^T (0 means 1/sqrt(D)). Lengths are int32[B], bias_per_batch float32[B], on q's
// device; None means full lengths / no per-batch bias.
TORCH_LIBRARY(sigattn, m) {
  // The fake (meta) implementations and autograd are registered from Python, in this module;
  // torch checks that the module that registers them is the one named here.
  m.set_python_module("sigattn_torch._ops");
  m.def(
      "fwd(Tensor q, Tensor k, Tensor v, Tensor? q_lens, Tensor? kv_lens, int causal, "
      "float scale, int bias_mode, float bias, Tensor? bias_per_batch) -> Tensor");
  m.def(
      "bwd(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor? q_lens, Tensor? kv_lens, "
      "int causal, float scale, int bias_mode, float bias, Tensor? bias_per_batch, "
      "bool deterministic=False) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(sigattn, CUDA, m) {
  m.impl("fwd", &sigattn_torch::fwd_cuda);
  m.impl("bwd", &sigattn_torch::bwd_cuda);
}

// CPU tensors: the library runs on CUDA devices only. These say so in the library's words rather
// than leaving PyTorch's "could not run with arguments from the 'CPU' backend".
TORCH_LIBRARY_IMPL(sigattn, CPU, m) {
  m.impl("fwd", &sigattn_torch::fwd_cpu);
  m.impl("bwd", &sigattn_torch::bwd_cpu);
}

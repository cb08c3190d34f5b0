// Umbrella header for nvcc users: the API and every definition.
//
// Header-only use: include this header wherever the library is called (definitions are inline).
// Compiled-once use: include <sigattn/api.hpp> everywhere and this header in exactly one .cu file,
// after `#define SIGATTN_DEFINE_API`. A program uses one mode or the other, never both.
#pragma once

#include <cstdio>

#include "sigattn/api.hpp"
#include "sigattn/host/dispatch.cuh"
#include "sigattn/host/launch.cuh"
#include "sigattn/host/registry.hpp"
#include "sigattn/host/validate.hpp"

#if defined(SIGATTN_DEFINE_API)
#define SIGATTN_API
#else
#define SIGATTN_API inline
#endif

namespace sigattn {

SIGATTN_API char const* to_string(Status status) {
  switch (status) {
    case Status::kSuccess:
      return "success";
    case Status::kErrorInvalidArgument:
      return "invalid argument";
    case Status::kErrorNotSupported:
      return "configuration not supported";
    case Status::kErrorArchMismatch:
      return "device architecture not supported by this build";
    case Status::kErrorMisalignedPointer:
      return "pointer or stride not aligned to 16 bytes";
    case Status::kErrorCuda:
      return "CUDA error";
  }
  return "unknown status";
}

/// The text lives in a thread-local buffer until this thread's next call.
SIGATTN_API char const* to_string(Result result) {
  if (result.status != Status::kErrorCuda && result.cuda == cudaSuccess)
    return to_string(result.status);
  thread_local char buffer[160];
  std::snprintf(buffer, sizeof(buffer), "%s: %s (%s)", to_string(result.status),
                cudaGetErrorName(result.cuda), cudaGetErrorString(result.cuda));
  return buffer;
}

namespace detail {

/// Shared by can_implement and forward, after validation of a non-empty problem: the registry row
/// for the device, then (unless dry_run) the launch.
inline Result run_forward(FwdParams const& p, void* workspace, int device, cudaStream_t stream,
                          bool dry_run) {
  int cc = 0;
  if (Result r = device_cc(device, &cc); !r) return r;
  auto launch = [&](Path path) -> Result {
    int row = -1;
    if (Result r = select_config(Direction::kForward, p.head_dim, p.dtype, p.max_q_len,
                                 p.causal != Causal::kNone, path, cc, &row, p.q_lens == nullptr);
        !r)
      return r;
    return visit_row(static_cast<size_t>(row), [&](auto index) -> Result {
      constexpr size_t kRow = decltype(index)::value;
      if constexpr (kKernelConfigs[kRow].direction == Direction::kForward) {
        return launch_fwd_row<kRow>(p, workspace, device, stream, dry_run);
      } else {
        return Result{Status::kErrorNotSupported, cudaSuccess};
      }
    });
  };
  Result r = launch(p.path);
  // The Hopper path refuses what its tensor maps cannot express (a zero stride of a dimension
  // longer than 1, for example); the automatic choice then falls back to the portable path.
  if (p.path == Path::kAuto && r.status == Status::kErrorNotSupported)
    return launch(Path::kPortable);
  return r;
}

/// backward()'s workspace, after validation of a non-empty problem: present and 16-byte aligned
/// wherever the call needs one (checked before any CUDA call, like the parameters).
inline Result check_workspace(BwdParams const& p, void const* workspace) {
  if (p.deterministic || dq_accum_bytes(p.fwd) == 0) return Result{};
  if (workspace == nullptr) return Result{Status::kErrorInvalidArgument, cudaSuccess};
  if (reinterpret_cast<uintptr_t>(workspace) % 16 != 0)
    return Result{Status::kErrorMisalignedPointer, cudaSuccess};
  return Result{};
}

/// Shared by can_implement and backward, after validation of a non-empty problem (and, for
/// backward, of its workspace).
inline Result run_backward(BwdParams const& p, void* workspace, int device, cudaStream_t stream,
                           bool dry_run) {
  int cc = 0;
  if (Result r = device_cc(device, &cc); !r) return r;
  FwdParams const& f = p.fwd;
  auto launch = [&](Path path) -> Result {
    int row = -1;
    if (Result r = select_config(Direction::kBackward, f.head_dim, f.dtype, f.max_q_len,
                                 f.causal != Causal::kNone, path, cc, &row, f.q_lens == nullptr);
        !r)
      return r;
    return visit_row(static_cast<size_t>(row), [&](auto index) -> Result {
      constexpr size_t kRow = decltype(index)::value;
      if constexpr (kKernelConfigs[kRow].direction == Direction::kBackward) {
        return launch_bwd_row<kRow>(p, workspace, device, stream, dry_run);
      } else {
        return Result{Status::kErrorNotSupported, cudaSuccess};
      }
    });
  };
  Result r = launch(f.path);
  // As in run_forward: what the Hopper path refuses falls back to the portable path.
  if (f.path == Path::kAuto && r.status == Status::kErrorNotSupported)
    return launch(Path::kPortable);
  return r;
}

inline Result current_device(int* device) {
  cudaError_t e = cudaGetDevice(device);
  return e == cudaSuccess ? Result{} : Result{Status::kErrorCuda, e};
}

}  // namespace detail

SIGATTN_API Result can_implement(FwdParams const& params, int device_id) {
  if (Result r = detail::validate(params); !r) return r;
  if (detail::is_empty(params)) return Result{};
  return detail::run_forward(params, nullptr, device_id, nullptr, /*dry_run=*/true);
}

SIGATTN_API Result can_implement(BwdParams const& params, int device_id) {
  if (Result r = detail::validate(params); !r) return r;
  if (detail::is_empty(params)) return Result{};
  return detail::run_backward(params, nullptr, device_id, nullptr, /*dry_run=*/true);
}

SIGATTN_API size_t workspace_bytes(FwdParams const& params) {
  return detail::is_empty(params) ? 0 : detail::fwd_workspace_bytes(params);
}

SIGATTN_API size_t workspace_bytes(BwdParams const& params) {
  return params.deterministic ? 0 : detail::dq_accum_bytes(params.fwd);
}

SIGATTN_API Result forward(FwdParams const& params, void* workspace, cudaStream_t stream) {
  if (Result r = detail::validate(params); !r) return r;
  if (detail::is_empty(params)) return Result{};
  if (reinterpret_cast<uintptr_t>(workspace) % 16 != 0)
    return Result{Status::kErrorMisalignedPointer, cudaSuccess};
  int device = 0;
  if (Result r = detail::current_device(&device); !r) return r;
  // (A workspace smaller than workspace_bytes(params) would be a caller's error; none is needed.)
  if (workspace_bytes(params) == 0) workspace = nullptr;
  return detail::run_forward(params, workspace, device, stream, /*dry_run=*/false);
}

SIGATTN_API Result forward(FwdParams const& params, cudaStream_t stream) {
  return forward(params, nullptr, stream);
}

SIGATTN_API Result backward(BwdParams const& params, void* workspace, cudaStream_t stream) {
  if (Result r = detail::validate(params); !r) return r;
  if (detail::is_empty(params)) return Result{};
  if (Result r = detail::check_workspace(params, workspace); !r) return r;
  int device = 0;
  if (Result r = detail::current_device(&device); !r) return r;
  return detail::run_backward(params, workspace, device, stream, /*dry_run=*/false);
}

}  // namespace sigattn

#undef SIGATTN_API

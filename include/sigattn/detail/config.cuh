// Compiler and architecture macros shared by every device header. Internal: never included by
// users directly.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#define SIGATTN_DEVICE __device__ __forceinline__
#define SIGATTN_HOST_DEVICE __host__ __device__ __forceinline__

// True inside device compilation for sm_80 or newer (the portable path's instructions).
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 800)
#define SIGATTN_ARCH_SM80_PLUS 1
#else
#define SIGATTN_ARCH_SM80_PLUS 0
#endif

// True inside device compilation for the arch-specific sm_90a target (wgmma, setmaxnreg).
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SIGATTN_ARCH_SM90A 1
#else
#define SIGATTN_ARCH_SM90A 0
#endif

#if defined(__CUDACC__) || defined(__clang__)
#define SIGATTN_PRAGMA_UNROLL _Pragma("unroll")
#define SIGATTN_PRAGMA_NO_UNROLL _Pragma("unroll 1")
#else
#define SIGATTN_PRAGMA_UNROLL
#define SIGATTN_PRAGMA_NO_UNROLL
#endif

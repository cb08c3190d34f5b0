// The one translation unit of the extension that compiles sigattn's kernels.
//
// STYLE.md section 6, "compiled once": this file defines SIGATTN_DEFINE_API before including
// <sigattn/sigattn.cuh>, which emits the non-inline definitions of forward(), backward(),
// workspace_bytes(), can_implement() and to_string() (and instantiates every registry row's
// kernels). sigattn_ops.cpp, the PyTorch side, includes only <sigattn/api.hpp>, so the Torch
// headers and the kernels are compiled by separate jobs, in parallel, and neither twice.
//
// torch.utils.cpp_extension passes -D__CUDA_NO_HALF_OPERATORS__ (and friends) to every nvcc job.
// This file includes no Torch header, so those switches serve nothing here; they are removed so
// the library's headers see cuda_fp16.h / cuda_bf16.h as every other sigattn program does.
#undef __CUDA_NO_HALF_OPERATORS__
#undef __CUDA_NO_HALF_CONVERSIONS__
#undef __CUDA_NO_HALF2_OPERATORS__
#undef __CUDA_NO_BFLOAT16_CONVERSIONS__
#undef __CUDA_NO_BFLOAT16_OPERATORS__
#undef __CUDA_NO_BFLOAT162_OPERATORS__

#define SIGATTN_DEFINE_API
#include <sigattn/sigattn.cuh>

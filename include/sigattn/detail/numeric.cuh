// Element types and fp32 <-> 16-bit conversions. Internal.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "sigattn/detail/config.cuh"

namespace sigattn::detail {

/// Packs two fp32 values into one 32-bit register of two 16-bit elements, `lo` in the low half
/// (the element with the smaller column index in an mma fragment). Round to nearest even.
template <class Element>
SIGATTN_DEVICE uint32_t pack2(float lo, float hi);

template <>
SIGATTN_DEVICE uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

template <>
SIGATTN_DEVICE uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

/// Converts one element to fp32.
SIGATTN_HOST_DEVICE float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
SIGATTN_HOST_DEVICE float to_float(__half x) { return __half2float(x); }

/// Tag type carrying an element type through generic lambdas.
template <class Element>
struct TypeTag {
  using type = Element;
};

}  // namespace sigattn::detail

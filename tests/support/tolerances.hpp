// Accuracy bars of the test suite (SPEC section 2) in one place, plus host rounding to bf16 and
// fp16 (round to nearest, ties to even; NaN stays NaN, overflow goes to Inf, fp16 subnormals
// kept) written on the bit patterns, so host code needs neither cuda_bf16.h nor cuda_fp16.h.
// The 16-bit patterns are those of __nv_bfloat16 and __half: a uint16_t buffer filled with them
// can be copied to the device as either type.
#pragma once

#include <cstdint>
#include <cstring>

#include "sigattn/api.hpp"

namespace sigattn {
namespace test {

/// Relative L2 error bar, ||x - ref|| / ||ref|| over real rows against the fp64 reference on the
/// same rounded inputs (N(0,1) inputs, bias -log(kv_len)), for O, dQ, dK and dV at any length.
constexpr double kRelL2BF16 = 3e-3;
constexpr double kRelL2FP16 = 1e-3;

/// The bar for `dtype`.
constexpr double rel_l2_tolerance(DType dtype) {
  return dtype == DType::kFP16 ? kRelL2FP16 : kRelL2BF16;
}

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// float -> bf16 bit pattern, round to nearest even; NaN becomes a quiet NaN of the same sign.
inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);  // carries into the exponent (up to Inf) when it must
  return static_cast<uint16_t>(u >> 16);
}

/// bf16 bit pattern -> float (exact).
inline float bf16_bits_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

/// float -> fp16 bit pattern, round to nearest even, subnormals kept, overflow to Inf.
inline uint16_t float_to_fp16_bits(float f) {
  uint32_t const u = float_bits(f);
  uint32_t const sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to Inf
  if (a < 0x38800000u) {
    // Below 2^-14 (fp16 subnormals): adding 0.5f puts the value where the float ulp is 2^-24,
    // the fp16 subnormal step, so the FPU's own round-to-nearest-even does the rounding.
    float const shifted = bits_float(a) + 0.5f;
    return static_cast<uint16_t>(sign | (float_bits(shifted) - 0x3f000000u));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even.
  a += 0xc8000fffu + ((a >> 13) & 1u);
  return static_cast<uint16_t>(sign | (a >> 13));
}

/// fp16 bit pattern -> float (exact).
inline float fp16_bits_to_float(uint16_t h) {
  uint32_t const sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t const exp = (h >> 10) & 0x1fu;
  uint32_t const mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    float const mag = static_cast<float>(mant) * bits_float(0x33800000u);
    return bits_float(sign | float_bits(mag));
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

/// f rounded to the nearest bf16, as a float.
inline float round_bf16(float f) { return bf16_bits_to_float(float_to_bf16_bits(f)); }
/// f rounded to the nearest fp16, as a float.
inline float round_fp16(float f) { return fp16_bits_to_float(float_to_fp16_bits(f)); }

/// float -> bit pattern of `dtype`.
inline uint16_t to_bits(DType dtype, float f) {
  return dtype == DType::kFP16 ? float_to_fp16_bits(f) : float_to_bf16_bits(f);
}
/// bit pattern of `dtype` -> float.
inline float from_bits(DType dtype, uint16_t h) {
  return dtype == DType::kFP16 ? fp16_bits_to_float(h) : bf16_bits_to_float(h);
}
/// f rounded to `dtype`, as a float.
inline float round_to(DType dtype, float f) { return from_bits(dtype, to_bits(dtype, f)); }

}  // namespace test
}  // namespace sigattn

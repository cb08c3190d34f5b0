// The logistic function on fp32 values, in two flavours. Each takes its argument pre-multiplied
// by `kPrescale`, so that callers fold that constant into the FMA that forms the argument
// (t = s * (scale * kPrescale) + bias * kPrescale) and pay nothing for it.
#pragma once

#include "sigattn/detail/config.cuh"

namespace sigattn::tile {

SIGATTN_DEVICE float ex2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

SIGATTN_DEVICE float rcp_approx(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

SIGATTN_DEVICE float tanh_approx(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/// Where the accurate sigmoid takes its reciprocal: on the FMA pipe (one MUFU operation per value,
/// eight instructions after the argument's FMA, or seven in the short form) or on MUFU (two MUFU
/// operations, three instructions). A kernel can split each tile's values between an FMA-pipe
/// form and the MUFU one at compile time (apply_split) to trade FMA-pipe and ALU instructions for
/// MUFU operations (16 per clock per SM); docs/tuning.md says which forms and share each kernel
/// takes and what was measured.
enum class Reciprocal { kFma, kFmaShort, kMufu };

/// Accurate sigmoid of x, given t = x * log2(e).
/// - Reciprocal::kFma, relative error about 1e-4: with u = 2^-|t| in (0, 1], sigmoid(x) = r for
///   x >= 0 and u * r otherwise, with r = 1 / (1 + u). Forming u * r instead of 1 - r keeps the
///   relative accuracy for strongly negative x (the common case with bias = -log n). The
///   reciprocal of d = 1 + u in [1, 2] is a quadratic start whose residual 1 - d * r0 is the
///   Chebyshev polynomial T3(2d - 3) / 99 (so |1 - d * r0| <= 1/99), then one Newton step, which
///   squares the residual (<= 1.1e-4) and leaves r <= 1 / d, so the result never exceeds 1.
/// - Reciprocal::kFmaShort, relative error at most 3.6e-4 (SPEC's bar is 5e-4): the same u and
///   sign handling, with r a quartic in u with r(0) = 1 exactly, the minimax of the relative
///   error under that constraint (3.55e-4), four FMAs and no add: one instruction fewer. It
///   decreases on [0, 1], so the result never exceeds 1 and is exactly 1 where the score
///   saturates. Its error is within the largest rounding error of P to the 16-bit operand of the
///   P V product (2^-8 relative for bf16, 2^-11 = 4.9e-4 for fp16); the forward D=64 takes it
///   (docs/tuning.md).
/// - Reciprocal::kMufu, relative error a few ulp: 1 / (1 + 2^-t) directly, ex2.approx, an add and
///   rcp.approx (about 1 ulp over the whole range). No sign split is needed: for strongly negative
///   x, 1 + 2^-t is large and exact to rounding, and its reciprocal keeps the relative accuracy.
///   Below x = -87.3 (t < -126) the reciprocal is subnormal and .ftz returns 0, where the FMA
///   path's u flushes too; 2^-t = +Inf gives 0 as well. rcp.approx(1) is 1, so the result never
///   exceeds 1 either.
struct SigmoidAccurate {
  static constexpr float kPrescale = 1.4426950408889634f;  // log2(e)

  template <Reciprocal Unit = Reciprocal::kFma>
  SIGATTN_DEVICE static float apply(float t) {
    if constexpr (Unit == Reciprocal::kMufu) {
      return rcp_approx(1.0f + ex2_approx(-t));
    } else {
      float const u = ex2_approx(-fabsf(t));
      float r;
      if constexpr (Unit == Reciprocal::kFmaShort) {
        r = fmaf(fmaf(fmaf(fmaf(0.16043876f, u, -0.55147392f), u, 0.88001561f), u, -0.98880309f),
                 u, 1.0f);
      } else {
        float const d = 1.0f + u;
        r = fmaf(fmaf(32.0f / 99.0f, d, -144.0f / 99.0f), d, 210.0f / 99.0f);
        float const e = fmaf(-d, r, 1.0f);
        r = fmaf(r, e, r);
      }
      return times_if_negative(t, u, r);
    }
  }

  /// r for t >= 0 (and NaN), u * r for t < 0: a compare and a predicated multiply. Written as
  /// `(t >= 0 ? 1 : u) * r`, the same values cost a select as well (FSETP, FSEL, FMUL: one more
  /// instruction per score, about a tenth of this function, in a loop that is bound by
  /// instruction issue at D = 64).
  SIGATTN_DEVICE static float times_if_negative(float t, float u, float r) {
    float out;
    asm("{\n"
        "  .reg .pred neg;\n"
        "  setp.lt.f32 neg, %1, 0f00000000;\n"
        "  mov.f32 %0, %2;\n"
        "  @neg mul.rn.f32 %0, %3, %2;\n"
        "}"
        : "=f"(out)
        : "f"(t), "f"(r), "f"(u));
    return out;
  }
};

/// Fast sigmoid: 0.5 * tanh(x / 2) + 0.5 on tanh.approx. One MUFU operation and one FMA, but
/// about 1% off near x = -10 and exactly 0 below x = -12 (tanh.approx rounds to -1 there).
struct SigmoidFast {
  static constexpr float kPrescale = 0.5f;

  template <Reciprocal = Reciprocal::kFma>  // (no reciprocal here)
  SIGATTN_DEVICE static float apply(float t) {
    return fmaf(0.5f, tanh_approx(t), 0.5f);
  }
};

/// The sigmoid of element `i` of a thread's accumulator fragment, where `MufuEighths` of every 8
/// consecutive elements take the MUFU reciprocal and the rest the FMA-pipe form `FmaForm`. `i`
/// must be a compile-time constant after unrolling (it is in every caller), so the choice costs
/// nothing.
template <class Sigmoid, int MufuEighths, Reciprocal FmaForm = Reciprocal::kFma>
SIGATTN_DEVICE float apply_split(int i, float t) {
  static_assert(MufuEighths >= 0 && MufuEighths <= 8, "MufuEighths is a count out of 8");
  static_assert(FmaForm != Reciprocal::kMufu, "FmaForm is one of the FMA-pipe forms");
  if ((i & 7) < MufuEighths) return Sigmoid::template apply<Reciprocal::kMufu>(t);
  return Sigmoid::template apply<FmaForm>(t);
}

}  // namespace sigattn::tile
